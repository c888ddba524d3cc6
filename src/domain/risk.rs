//! Risk flags of a ballot, from cheap signals gathered on the hot path. A flag is only a
//! mark: the campaign's `fraud_policy` decides whether flagged ballots are counted (`record`)
//! or held apart until an organizer reviews them (`quarantine`). Thresholds are the
//! campaign's (`rules.risk`).

use super::campaign::{FraudPolicy, RiskThresholds};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    /// More voters than allowed on the ballot's device lately.
    SharedDevice,
    /// More voters than allowed from the ballot's address lately.
    SharedIp,
    /// More voters than allowed from the ballot's network (/24 or /64) lately.
    SharedNetwork,
}

impl Flag {
    pub fn as_str(self) -> &'static str {
        match self {
            Flag::SharedDevice => "shared_device",
            Flag::SharedIp => "shared_ip",
            Flag::SharedNetwork => "shared_network",
        }
    }
}

/// What the hot path measured for one ballot: distinct voters in the campaign's window, this
/// one included (`None`: not known, e.g. no device id was sent).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Signals {
    pub voters_on_device: Option<u64>,
    pub voters_on_ip: Option<u64>,
    pub voters_on_network: Option<u64>,
}

pub fn flags(s: &Signals, t: &RiskThresholds) -> Vec<Flag> {
    let over = |seen: Option<u64>, limit: u32| seen.is_some_and(|n| n > u64::from(limit));
    [
        (
            over(s.voters_on_device, t.voters_per_device),
            Flag::SharedDevice,
        ),
        (over(s.voters_on_ip, t.voters_per_ip), Flag::SharedIp),
        (
            over(s.voters_on_network, t.voters_per_network),
            Flag::SharedNetwork,
        ),
    ]
    .into_iter()
    .filter_map(|(hit, flag)| hit.then_some(flag))
    .collect()
}

/// The status a ballot is recorded with.
pub fn status(policy: FraudPolicy, flags: &[Flag]) -> &'static str {
    match policy {
        FraudPolicy::Quarantine if !flags.is_empty() => "quarantined",
        _ => "counted",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_signal_flags_only_above_its_threshold() {
        let t = RiskThresholds::default();
        let s = |device, ip, network| Signals {
            voters_on_device: device,
            voters_on_ip: ip,
            voters_on_network: network,
        };
        assert!(flags(&s(Some(3), Some(20), Some(50)), &t).is_empty());
        assert_eq!(flags(&s(Some(4), None, None), &t), [Flag::SharedDevice]);
        assert_eq!(flags(&s(None, Some(21), Some(21)), &t), [Flag::SharedIp]);
        assert_eq!(
            flags(&s(Some(9), Some(300), Some(300)), &t),
            [Flag::SharedDevice, Flag::SharedIp, Flag::SharedNetwork]
        );
        assert!(flags(&Signals::default(), &t).is_empty());
        let strict = RiskThresholds {
            voters_per_ip: 1,
            ..t
        };
        assert_eq!(flags(&s(None, Some(2), None), &strict), [Flag::SharedIp]);
    }

    #[test]
    fn only_the_quarantine_policy_holds_flagged_ballots() {
        let flagged = [Flag::SharedDevice];
        assert_eq!(status(FraudPolicy::Record, &flagged), "counted");
        assert_eq!(status(FraudPolicy::Quarantine, &flagged), "quarantined");
        assert_eq!(status(FraudPolicy::Quarantine, &[]), "counted");
    }
}
