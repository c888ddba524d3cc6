//! Campaigns: kinds, phases with their windows, and the rules citizens vote under.
//!
//! `current_phase` is derived from the windows and the clock, never stored, so that a change
//! of a window takes effect at once and there is no state to drift.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Selection,
    Evaluation,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Selection => "selection",
            Kind::Evaluation => "evaluation",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [Kind::Selection, Kind::Evaluation]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Nomination,
    Voting,
    Review,
    Publicity,
    Published,
}

/// One phase's window, `[starts_at, ends_at)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PhaseWindow {
    pub phase: Phase,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
}

/// Where a campaign stands: a draft (not visible to citizens), or open, in the phase whose
/// window holds now (or between phases).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CurrentPhase {
    Draft,
    NotStarted,
    Nomination,
    Voting,
    Review,
    Publicity,
    Published,
    Between,
    Ended,
}

pub fn current_phase(is_draft: bool, phases: &[PhaseWindow], now: DateTime<Utc>) -> CurrentPhase {
    if is_draft {
        return CurrentPhase::Draft;
    }
    if let Some(w) = phases
        .iter()
        .find(|w| w.starts_at <= now && now < w.ends_at)
    {
        return match w.phase {
            Phase::Nomination => CurrentPhase::Nomination,
            Phase::Voting => CurrentPhase::Voting,
            Phase::Review => CurrentPhase::Review,
            Phase::Publicity => CurrentPhase::Publicity,
            Phase::Published => CurrentPhase::Published,
        };
    }
    match (
        phases.iter().map(|w| w.starts_at).min(),
        phases.iter().map(|w| w.ends_at).max(),
    ) {
        (Some(first), _) if now < first => CurrentPhase::NotStarted,
        (_, Some(last)) if now >= last => CurrentPhase::Ended,
        (None, None) => CurrentPhase::NotStarted,
        _ => CurrentPhase::Between,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ShowCounts {
    Live,
    RankOnly,
    Hidden,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FraudPolicy {
    Record,
    Quarantine,
}

/// The rules a campaign's citizens vote under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    pub votes_per_day: u32,
    pub votes_per_candidate_per_day: u32,
    pub max_candidates_per_ballot: u32,
    pub votes_per_campaign: Option<u32>,
    pub show_counts: ShowCounts,
    #[serde(default = "default_fraud_policy")]
    pub fraud_policy: FraudPolicy,
    #[serde(default)]
    pub challenge_bits: u8,
}

fn default_fraud_policy() -> FraudPolicy {
    FraudPolicy::Record
}

impl Default for Rules {
    fn default() -> Self {
        Self {
            votes_per_day: 10,
            votes_per_candidate_per_day: 1,
            max_candidates_per_ballot: 10,
            votes_per_campaign: None,
            show_counts: ShowCounts::Live,
            fraud_policy: FraudPolicy::Record,
            challenge_bits: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 6, day, 0, 0, 0).unwrap()
    }

    fn windows() -> Vec<PhaseWindow> {
        vec![
            PhaseWindow {
                phase: Phase::Nomination,
                starts_at: at(1),
                ends_at: at(5),
            },
            PhaseWindow {
                phase: Phase::Voting,
                starts_at: at(6),
                ends_at: at(10),
            },
        ]
    }

    #[test]
    fn the_current_phase_follows_the_windows_and_the_clock() {
        let w = windows();
        assert_eq!(current_phase(true, &w, at(7)), CurrentPhase::Draft);
        assert_eq!(current_phase(false, &w, at(1)), CurrentPhase::Nomination);
        assert_eq!(current_phase(false, &w, at(5)), CurrentPhase::Between);
        assert_eq!(current_phase(false, &w, at(6)), CurrentPhase::Voting);
        assert_eq!(current_phase(false, &w, at(10)), CurrentPhase::Ended);
        assert_eq!(
            current_phase(false, &w, at(1) - chrono::Duration::seconds(1)),
            CurrentPhase::NotStarted
        );
    }

    #[test]
    fn rules_default_the_fraud_policy_and_refuse_unknown_fields() {
        let r: Rules = serde_json::from_str(
            r#"{"votes_per_day":5,"votes_per_candidate_per_day":1,"max_candidates_per_ballot":3,"votes_per_campaign":null,"show_counts":"rank_only"}"#,
        )
        .unwrap();
        assert_eq!(r.fraud_policy, FraudPolicy::Record);
        assert_eq!(r.challenge_bits, 0);
        assert!(serde_json::from_str::<Rules>(r#"{"votes":1}"#).is_err());
    }
}
