//! Risk flags of a ballot, from cheap signals gathered on the hot path. A flag is only a
//! mark: the campaign's `fraud_policy` decides whether flagged ballots are counted (`record`)
//! or held apart until an organizer reviews them (`quarantine`), and `rules.risk.hold` which
//! flags hold. Thresholds are the campaign's (`rules.risk`).

use super::campaign::{FraudPolicy, MAX_CHALLENGE_BITS, RiskThresholds};

pub use super::campaign::RiskFlag as Flag;

impl Flag {
    pub fn as_str(self) -> &'static str {
        match self {
            Flag::SharedDevice => "shared_device",
            Flag::SharedIp => "shared_ip",
            Flag::SharedNetwork => "shared_network",
            Flag::IdenticalBurst => "identical_burst",
            Flag::NewAccount => "new_account",
            Flag::CandidateSurge => "candidate_surge",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        ALL.into_iter().find(|f| f.as_str() == s)
    }
}

pub const ALL: [Flag; 6] = [
    Flag::SharedDevice,
    Flag::SharedIp,
    Flag::SharedNetwork,
    Flag::IdenticalBurst,
    Flag::NewAccount,
    Flag::CandidateSurge,
];

/// Votes for one candidate of the ballot and for all candidates: in the last two minutes
/// (`recent…`, this ballot included) and in the ten minutes before (`before…`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pace {
    pub recent: u64,
    pub recent_all: u64,
    pub before: u64,
    pub before_all: u64,
}

/// What the hot path measured for one ballot. Voter counts are distinct voters in the
/// campaign's window, this one included; `None`: not known (no device id was sent, say).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Signals {
    pub voters_on_device: Option<u64>,
    pub voters_on_ip: Option<u64>,
    pub voters_on_network: Option<u64>,
    /// Voters who cast this very set of candidates in the burst window (sets of two or more).
    pub voters_with_same_set: Option<u64>,
    /// Seconds since the voter's first login.
    pub account_age_secs: Option<i64>,
    /// One per candidate of the ballot.
    pub pace: Vec<Pace>,
}

/// The count-based signals with their limits, in flag order.
fn counted(s: &Signals, t: &RiskThresholds) -> [(Option<u64>, u32, Flag); 4] {
    [
        (s.voters_on_device, t.voters_per_device, Flag::SharedDevice),
        (s.voters_on_ip, t.voters_per_ip, Flag::SharedIp),
        (
            s.voters_on_network,
            t.voters_per_network,
            Flag::SharedNetwork,
        ),
        (
            s.voters_with_same_set,
            t.identical_ballots,
            Flag::IdenticalBurst,
        ),
    ]
}

pub fn flags(s: &Signals, t: &RiskThresholds) -> Vec<Flag> {
    if !t.enabled {
        return Vec::new();
    }
    let mut flags: Vec<Flag> = counted(s, t)
        .into_iter()
        .filter(|(seen, limit, _)| seen.is_some_and(|n| n > u64::from(*limit)))
        .map(|(_, _, flag)| flag)
        .collect();
    if t.min_account_age_secs > 0
        && s.account_age_secs
            .is_some_and(|age| age < i64::from(t.min_account_age_secs))
    {
        flags.push(Flag::NewAccount);
    }
    if s.pace.iter().any(|p| surging(p, t)) {
        flags.push(Flag::CandidateSurge);
    }
    flags
}

/// The count-based signals this ballot pushed just over their limit: the first ballot past
/// the line, when the earlier ballots of the cluster are held back too. Only flags that hold.
pub fn crossed(s: &Signals, t: &RiskThresholds) -> Vec<Flag> {
    if !t.enabled {
        return Vec::new();
    }
    counted(s, t)
        .into_iter()
        .filter(|(seen, limit, flag)| *seen == Some(u64::from(*limit) + 1) && t.hold.contains(flag))
        .map(|(_, _, flag)| flag)
        .collect()
}

/// A candidate's recent share of the votes is more than `surge_factor` times its share
/// before, on at least `surge_min_votes` recent votes for it and as many before in all (too
/// little history says nothing). Integers only: `recent / recent_all > factor × (before + 1)
/// / before_all`, the `+ 1` so that a candidate with no votes before can surge too.
pub fn surging(p: &Pace, t: &RiskThresholds) -> bool {
    let min = u64::from(t.surge_min_votes);
    if p.recent < min || p.before_all < min || p.recent_all == 0 {
        return false;
    }
    u128::from(p.recent) * u128::from(p.before_all)
        > u128::from(t.surge_factor) * u128::from(p.before + 1) * u128::from(p.recent_all)
}

/// Whether the flags hold the ballot under the campaign's policy.
pub fn holds(policy: FraudPolicy, flags: &[Flag], t: &RiskThresholds) -> bool {
    policy == FraudPolicy::Quarantine && flags.iter().any(|f| t.hold.contains(f))
}

/// The status a ballot is recorded with.
pub fn status(policy: FraudPolicy, flags: &[Flag], t: &RiskThresholds) -> &'static str {
    if holds(policy, flags, t) {
        "quarantined"
    } else {
        "counted"
    }
}

/// The proof-of-work bits a ballot needs: the campaign's, raised for flagged ballots. A
/// campaign that asks for no proof asks none of anyone, and a young account alone is no
/// reason to make an honest newcomer wait.
pub fn required_bits(campaign_bits: u8, flags: &[Flag], t: &RiskThresholds) -> u8 {
    if campaign_bits == 0 || flags.iter().all(|f| *f == Flag::NewAccount) {
        return campaign_bits;
    }
    campaign_bits
        .saturating_add(t.raise_bits)
        .min(MAX_CHALLENGE_BITS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(device: Option<u64>, ip: Option<u64>, network: Option<u64>) -> Signals {
        Signals {
            voters_on_device: device,
            voters_on_ip: ip,
            voters_on_network: network,
            ..Signals::default()
        }
    }

    #[test]
    fn each_signal_flags_only_above_its_threshold() {
        let t = RiskThresholds::default();
        assert!(flags(&counts(Some(3), Some(20), Some(50)), &t).is_empty());
        assert_eq!(
            flags(&counts(Some(4), None, None), &t),
            [Flag::SharedDevice]
        );
        assert_eq!(
            flags(&counts(None, Some(21), Some(21)), &t),
            [Flag::SharedIp]
        );
        assert_eq!(
            flags(&counts(Some(9), Some(300), Some(300)), &t),
            [Flag::SharedDevice, Flag::SharedIp, Flag::SharedNetwork]
        );
        assert!(flags(&Signals::default(), &t).is_empty());
        let strict = RiskThresholds {
            voters_per_ip: 1,
            ..t.clone()
        };
        assert_eq!(
            flags(&counts(None, Some(2), None), &strict),
            [Flag::SharedIp]
        );
        let same = |n| Signals {
            voters_with_same_set: Some(n),
            ..Signals::default()
        };
        assert!(flags(&same(20), &t).is_empty());
        assert_eq!(flags(&same(21), &t), [Flag::IdenticalBurst]);
        let off = RiskThresholds {
            enabled: false,
            ..t
        };
        assert!(flags(&counts(Some(9), Some(300), Some(300)), &off).is_empty());
    }

    #[test]
    fn a_young_account_is_flagged_until_it_is_old_enough() {
        let t = RiskThresholds::default();
        let aged = |secs| Signals {
            account_age_secs: Some(secs),
            ..Signals::default()
        };
        assert_eq!(flags(&aged(0), &t), [Flag::NewAccount]);
        assert_eq!(flags(&aged(599), &t), [Flag::NewAccount]);
        assert!(flags(&aged(600), &t).is_empty());
        let never = RiskThresholds {
            min_account_age_secs: 0,
            ..t
        };
        assert!(flags(&aged(0), &never).is_empty());
    }

    #[test]
    fn a_surge_is_a_share_far_above_the_candidates_own_recent_share() {
        let t = RiskThresholds::default(); // factor 5, at least 30 votes
        // 10% of the votes before, 50% now: 5 times, not more.
        let even = Pace {
            recent: 50,
            recent_all: 100,
            before: 100,
            before_all: 1000,
        };
        assert!(!surging(&even, &t));
        // 10% before, 60% now.
        assert!(surging(&Pace { recent: 60, ..even }, &t));
        // From nothing to 30 of 40: a surge; 29 votes are too few to tell.
        let from_nothing = Pace {
            recent: 30,
            recent_all: 40,
            before: 0,
            before_all: 500,
        };
        assert!(surging(&from_nothing, &t));
        assert!(!surging(
            &Pace {
                recent: 29,
                ..from_nothing
            },
            &t
        ));
        // No history (the campaign just opened): nothing to compare with.
        assert!(!surging(
            &Pace {
                before_all: 10,
                ..from_nothing
            },
            &t
        ));
        // The whole campaign speeding up keeps every share: no surge.
        let rush = Pace {
            recent: 400,
            recent_all: 4000,
            before: 100,
            before_all: 1000,
        };
        assert!(!surging(&rush, &t));
        let s = Signals {
            pace: vec![even, from_nothing],
            ..Signals::default()
        };
        assert_eq!(flags(&s, &t), [Flag::CandidateSurge]);
    }

    #[test]
    fn only_the_quarantine_policy_holds_and_only_with_a_holding_flag() {
        let t = RiskThresholds::default();
        let flagged = [Flag::SharedDevice];
        assert_eq!(status(FraudPolicy::Record, &flagged, &t), "counted");
        assert_eq!(status(FraudPolicy::Quarantine, &flagged, &t), "quarantined");
        assert_eq!(status(FraudPolicy::Quarantine, &[], &t), "counted");
        let soft = [Flag::NewAccount, Flag::CandidateSurge];
        assert_eq!(status(FraudPolicy::Quarantine, &soft, &t), "counted");
        let strict = RiskThresholds {
            hold: vec![Flag::NewAccount],
            ..t
        };
        assert_eq!(
            status(FraudPolicy::Quarantine, &soft, &strict),
            "quarantined"
        );
    }

    #[test]
    fn only_the_ballot_that_crosses_a_holding_limit_reports_the_crossing() {
        let t = RiskThresholds::default();
        assert_eq!(
            crossed(&counts(None, Some(21), Some(21)), &t),
            [Flag::SharedIp]
        );
        assert!(crossed(&counts(None, Some(22), None), &t).is_empty());
        assert_eq!(
            crossed(&counts(Some(4), None, Some(51)), &t),
            [Flag::SharedDevice, Flag::SharedNetwork]
        );
        let not_held = RiskThresholds {
            hold: vec![Flag::SharedDevice],
            ..t
        };
        assert!(crossed(&counts(None, Some(21), None), &not_held).is_empty());
    }

    #[test]
    fn flagged_ballots_need_more_work_only_where_work_is_asked() {
        let t = RiskThresholds::default();
        assert_eq!(required_bits(0, &[Flag::SharedIp], &t), 0);
        assert_eq!(required_bits(12, &[], &t), 12);
        assert_eq!(required_bits(12, &[Flag::NewAccount], &t), 12);
        assert_eq!(
            required_bits(12, &[Flag::NewAccount, Flag::CandidateSurge], &t),
            16
        );
        assert_eq!(required_bits(22, &[Flag::SharedIp], &t), 24);
    }

    #[test]
    fn flag_names_round_trip() {
        for f in ALL {
            assert_eq!(Flag::parse(f.as_str()), Some(f));
            assert_eq!(
                serde_json::to_value(f).unwrap(),
                serde_json::Value::from(f.as_str())
            );
        }
        assert_eq!(Flag::parse("nope"), None);
    }
}
