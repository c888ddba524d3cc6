//! Ratings of evaluation targets (units and departments): the three levels, the rater
//! groups and their channels, the rating period, and the rules an evaluation campaign sets.

use chrono::{DateTime, Datelike, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

pub use super::score::Level;
use super::score::{AnnualWeights, LevelPoints};

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Satisfied => "satisfied",
            Level::BasicallySatisfied => "basically_satisfied",
            Level::Unsatisfied => "unsatisfied",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Level::Satisfied,
            Level::BasicallySatisfied,
            Level::Unsatisfied,
        ]
        .into_iter()
        .find(|l| l.as_str() == s)
    }
}

/// Who rates, as the seeds group them; each group has its weight in the campaign's score.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum RaterGroup {
    /// 群众评议: citizens in the mini-program.
    Public,
    /// 服务对象: people served, reached by an SMS survey after their visit.
    ServiceObject,
    /// 党员互评: party members, from staff accounts of that kind.
    PartyMember,
    /// 领导点评: leaders, from staff accounts of that kind.
    Leader,
    /// 行风监督员: supervisors, from staff accounts of that kind.
    Supervisor,
}

impl RaterGroup {
    pub const ALL: [RaterGroup; 5] = [
        RaterGroup::Public,
        RaterGroup::ServiceObject,
        RaterGroup::PartyMember,
        RaterGroup::Leader,
        RaterGroup::Supervisor,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RaterGroup::Public => "public",
            RaterGroup::ServiceObject => "service_object",
            RaterGroup::PartyMember => "party_member",
            RaterGroup::Leader => "leader",
            RaterGroup::Supervisor => "supervisor",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.as_str() == s)
    }

    /// The groups whose raters are staff accounts.
    pub fn is_staff(self) -> bool {
        matches!(
            self,
            RaterGroup::PartyMember | RaterGroup::Leader | RaterGroup::Supervisor
        )
    }

    /// How a rating of this group reaches the service.
    pub fn channel(self) -> &'static str {
        match self {
            RaterGroup::Public => "mini_program",
            RaterGroup::ServiceObject => "sms",
            _ => "staff",
        }
    }
}

/// How often a voter may rate a target again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    Month,
    Quarter,
    Year,
}

/// The period a moment falls in, in the campaign's time zone: `2026-11`, `2026-Q4`, `2026`.
pub fn period_of(at: DateTime<Utc>, tz: Tz, period: Period) -> String {
    let local = at.with_timezone(&tz);
    match period {
        Period::Month => format!("{}-{:02}", local.year(), local.month()),
        Period::Quarter => format!("{}-Q{}", local.year(), (local.month() - 1) / 3 + 1),
        Period::Year => local.year().to_string(),
    }
}

/// A group's weight in the campaign's weighted score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupWeight {
    pub group: RaterGroup,
    pub weight: u32,
}

/// What an evaluation campaign rates by: its period, its groups' weights, the points of each
/// level, and the components of the annual score.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct EvaluationRules {
    pub period: Period,
    pub groups: Vec<GroupWeight>,
    pub level_points: LevelPoints,
    pub annual: AnnualWeights,
}

impl Default for EvaluationRules {
    fn default() -> Self {
        let w = |group, weight| GroupWeight { group, weight };
        Self {
            period: Period::Month,
            groups: vec![
                w(RaterGroup::Public, 40),
                w(RaterGroup::ServiceObject, 30),
                w(RaterGroup::PartyMember, 10),
                w(RaterGroup::Leader, 10),
                w(RaterGroup::Supervisor, 10),
            ],
            level_points: LevelPoints::default(),
            annual: AnnualWeights::default(),
        }
    }
}

/// The longest comment kept, in characters.
pub const MAX_COMMENT_CHARS: usize = 500;

/// A comment as kept: trimmed, at most `MAX_COMMENT_CHARS`.
pub fn comment(text: Option<&str>) -> Result<String, &'static str> {
    let text = text.unwrap_or_default().trim();
    if text.chars().count() > MAX_COMMENT_CHARS {
        return Err("意见不能超过500字");
    }
    Ok(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_follow_the_campaign_time_zone() {
        let shanghai: Tz = "Asia/Shanghai".parse().unwrap();
        // 2026-09-30 16:30 UTC is already 1 October in Shanghai.
        let at = DateTime::parse_from_rfc3339("2026-09-30T16:30:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(period_of(at, shanghai, Period::Month), "2026-10");
        assert_eq!(period_of(at, shanghai, Period::Quarter), "2026-Q4");
        assert_eq!(period_of(at, chrono_tz::UTC, Period::Quarter), "2026-Q3");
        assert_eq!(period_of(at, shanghai, Period::Year), "2026");
    }

    #[test]
    fn names_round_trip_and_groups_know_their_channel() {
        for g in RaterGroup::ALL {
            assert_eq!(RaterGroup::parse(g.as_str()), Some(g));
        }
        assert_eq!(
            Level::parse("basically_satisfied"),
            Some(Level::BasicallySatisfied)
        );
        assert_eq!(Level::parse("满意"), None);
        assert_eq!(RaterGroup::ServiceObject.channel(), "sms");
        assert!(RaterGroup::Supervisor.is_staff() && !RaterGroup::Public.is_staff());
    }

    #[test]
    fn comments_are_trimmed_and_bounded() {
        assert_eq!(comment(Some("  挂号排队太久 ")), Ok("挂号排队太久".into()));
        assert_eq!(comment(None), Ok(String::new()));
        assert!(comment(Some(&"长".repeat(501))).is_err());
    }
}
