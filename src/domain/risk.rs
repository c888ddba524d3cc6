//! Risk flags of a ballot, from cheap signals gathered on the hot path. A flag is only a
//! mark: the campaign's `fraud_policy` decides whether flagged ballots are counted (`record`)
//! or held apart until an organizer reviews them (`quarantine`).

use super::campaign::FraudPolicy;

/// Distinct voters seen on one device within `WINDOW_SECS` above which its ballots are
/// flagged. (Per-campaign thresholds come with the other signals.)
pub const VOTERS_PER_DEVICE: u64 = 3;
pub const WINDOW_SECS: u64 = 600;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    /// More voters than `VOTERS_PER_DEVICE` on the ballot's device lately.
    SharedDevice,
}

impl Flag {
    pub fn as_str(self) -> &'static str {
        match self {
            Flag::SharedDevice => "shared_device",
        }
    }
}

/// What the hot path measured for one ballot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Signals {
    /// Distinct voters on the ballot's device in the window, this one included (`None`: the
    /// client sent no device id).
    pub voters_on_device: Option<u64>,
}

pub fn flags(s: &Signals) -> Vec<Flag> {
    let mut flags = Vec::new();
    if s.voters_on_device.is_some_and(|n| n > VOTERS_PER_DEVICE) {
        flags.push(Flag::SharedDevice);
    }
    flags
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
    fn a_device_shared_by_more_voters_than_allowed_is_flagged() {
        let on = |n| Signals {
            voters_on_device: Some(n),
        };
        assert!(flags(&on(3)).is_empty());
        assert_eq!(flags(&on(4)), [Flag::SharedDevice]);
        assert!(flags(&Signals::default()).is_empty());
    }

    #[test]
    fn only_the_quarantine_policy_holds_flagged_ballots() {
        let flagged = [Flag::SharedDevice];
        assert_eq!(status(FraudPolicy::Record, &flagged), "counted");
        assert_eq!(status(FraudPolicy::Quarantine, &flagged), "quarantined");
        assert_eq!(status(FraudPolicy::Quarantine, &[]), "counted");
    }
}
