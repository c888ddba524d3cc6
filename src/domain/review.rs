//! The review of suspicious ballots: how they group into clusters, what a decision does to a
//! ballot's status, and the tally the chain alone gives (ballot entries, then decisions).
//!
//! A ballot is `counted`, `quarantined` (held apart from the public counts) or
//! `invalidated`. Decisions move it: `hold` counted → quarantined (the system's, when a
//! cluster is found), `release` quarantined → counted, `invalidate` counted or quarantined →
//! invalidated, for good.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Hold,
    Release,
    Invalidate,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Hold => "hold",
            Action::Release => "release",
            Action::Invalidate => "invalidate",
        }
    }

    /// The statuses a ballot can leave by this decision.
    pub fn from_statuses(self) -> &'static [&'static str] {
        match self {
            Action::Hold => &["counted"],
            Action::Release => &["quarantined"],
            Action::Invalidate => &["counted", "quarantined"],
        }
    }

    pub fn to_status(self) -> &'static str {
        match self {
            Action::Hold => "quarantined",
            Action::Release => "counted",
            Action::Invalidate => "invalidated",
        }
    }

    /// How a ballot's votes move in the public counts: +1, -1 or 0.
    pub fn count_change(self, from: &str) -> i64 {
        match (from == "counted", self.to_status() == "counted") {
            (true, false) => -1,
            (false, true) => 1,
            _ => 0,
        }
    }
}

/// What ballots of a cluster share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClusterBy {
    Device,
    Ip,
    Network,
    /// The very same candidates, in the same order (identical ballots).
    Ballot,
}

impl ClusterBy {
    pub fn as_str(self) -> &'static str {
        match self {
            ClusterBy::Device => "device",
            ClusterBy::Ip => "ip",
            ClusterBy::Network => "network",
            ClusterBy::Ballot => "ballot",
        }
    }
}

/// A ballot as the review sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewBallot {
    pub seq: i64,
    pub voter_id: String,
    pub cast_at: DateTime<Utc>,
    pub status: String,
    pub flags: Vec<String>,
    pub candidate_ids: Vec<i64>,
    pub device_hash: Option<String>,
    pub ip_hash: Option<String>,
    pub network_hash: Option<String>,
}

impl ReviewBallot {
    /// The ballot's key for a grouping (`None`: it has none, e.g. no device id was sent).
    pub fn key(&self, by: ClusterBy) -> Option<String> {
        match by {
            ClusterBy::Device => self.device_hash.clone(),
            ClusterBy::Ip => self.ip_hash.clone(),
            ClusterBy::Network => self.network_hash.clone(),
            ClusterBy::Ballot => Some(ballot_key(&self.candidate_ids)),
        }
    }
}

/// The key of identical ballots: their candidates in order.
pub fn ballot_key(candidate_ids: &[i64]) -> String {
    let ids: Vec<String> = candidate_ids.iter().map(i64::to_string).collect();
    ids.join(",")
}

/// Ballots sharing a key within one time window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    pub by: ClusterBy,
    pub key: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub ballots: u64,
    pub voters: u64,
    /// Ballots by status.
    pub statuses: BTreeMap<String, u64>,
    /// Ballots carrying each flag.
    pub flags: BTreeMap<String, u64>,
    /// Votes per candidate in the cluster's ballots, whatever their status.
    pub votes: BTreeMap<i64, u64>,
}

/// Groups ballots by `by` and by fixed windows of `window_secs` (aligned to the epoch, so
/// the same ballots always form the same clusters). Largest first; clusters of one ballot
/// are left out: there is nothing to compare.
pub fn clusters(ballots: &[ReviewBallot], by: ClusterBy, window_secs: i64) -> Vec<Cluster> {
    let window = window_secs.max(1);
    let mut groups: BTreeMap<(String, i64), Vec<&ReviewBallot>> = BTreeMap::new();
    for b in ballots {
        if let Some(key) = b.key(by) {
            let slot = b.cast_at.timestamp().div_euclid(window);
            groups.entry((key, slot)).or_default().push(b);
        }
    }
    let mut out: Vec<Cluster> = groups
        .into_iter()
        .filter(|(_, members)| members.len() > 1)
        .map(|((key, slot), members)| {
            let at = |t: i64| DateTime::from_timestamp(t, 0).unwrap_or_default();
            let mut c = Cluster {
                by,
                key,
                from: at(slot * window),
                to: at((slot + 1) * window),
                ballots: members.len() as u64,
                voters: 0,
                statuses: BTreeMap::new(),
                flags: BTreeMap::new(),
                votes: BTreeMap::new(),
            };
            let mut voters = BTreeSet::new();
            for b in members {
                voters.insert(b.voter_id.as_str());
                *c.statuses.entry(b.status.clone()).or_default() += 1;
                for f in &b.flags {
                    *c.flags.entry(f.clone()).or_default() += 1;
                }
                for id in &b.candidate_ids {
                    *c.votes.entry(*id).or_default() += 1;
                }
            }
            c.voters = voters.len() as u64;
            c
        })
        .collect();
    out.sort_by(|a, b| {
        b.ballots
            .cmp(&a.ballots)
            .then(a.from.cmp(&b.from))
            .then(a.key.cmp(&b.key))
    });
    out
}

/// The public counts a chain gives: each ballot entry as recorded, then each decision.
/// Whoever replays the same entries gets the same counts.
#[derive(Debug, Default)]
pub struct ChainTally {
    /// By seq: the ballot's status and candidates.
    ballots: HashMap<i64, (Status, Vec<i64>)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Counted,
    Quarantined,
    Invalidated,
}

impl Status {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "counted" => Some(Status::Counted),
            "quarantined" => Some(Status::Quarantined),
            "invalidated" => Some(Status::Invalidated),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Status::Counted => "counted",
            Status::Quarantined => "quarantined",
            Status::Invalidated => "invalidated",
        }
    }
}

impl ChainTally {
    pub fn ballot(
        &mut self,
        seq: i64,
        status: &str,
        candidate_ids: Vec<i64>,
    ) -> Result<(), String> {
        let status = Status::parse(status)
            .ok_or_else(|| format!("ballot has an unknown status {status:?}"))?;
        self.ballots.insert(seq, (status, candidate_ids));
        Ok(())
    }

    /// Applies a decision to the ballots it names; each must be one the decision can move.
    pub fn decision(&mut self, action: Action, seqs: &[i64]) -> Result<(), String> {
        for seq in seqs {
            let (status, _) = self.ballots.get_mut(seq).ok_or_else(|| {
                format!("the decision names seq {seq}, which is no earlier ballot")
            })?;
            if !action.from_statuses().contains(&status.as_str()) {
                return Err(format!(
                    "the decision would {} ballot {seq}, which is {}",
                    action.as_str(),
                    status.as_str()
                ));
            }
            *status = Status::parse(action.to_status()).unwrap_or(Status::Invalidated);
        }
        Ok(())
    }

    /// Counted votes per candidate.
    pub fn votes(&self) -> BTreeMap<i64, i64> {
        let mut votes = BTreeMap::new();
        for (status, ids) in self.ballots.values() {
            if *status == Status::Counted {
                for id in ids {
                    *votes.entry(*id).or_default() += 1;
                }
            }
        }
        votes
    }

    /// Every ballot's status by seq.
    pub fn statuses(&self) -> BTreeMap<i64, &'static str> {
        self.ballots
            .iter()
            .map(|(seq, (status, _))| (*seq, status.as_str()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ballot(seq: i64, minute: i64, net: &str, voter: &str, ids: &[i64]) -> ReviewBallot {
        ReviewBallot {
            seq,
            voter_id: voter.into(),
            cast_at: DateTime::from_timestamp(1_800_001_200 + minute * 60, 0).unwrap(),
            status: "quarantined".into(),
            flags: vec!["shared_network".into()],
            candidate_ids: ids.to_vec(),
            device_hash: None,
            ip_hash: Some(format!("ip-{voter}")),
            network_hash: Some(net.into()),
        }
    }

    #[test]
    fn ballots_cluster_by_key_and_window_with_counts_per_candidate() {
        // 1_800_001_200 is 20 minutes into an hour; windows of an hour.
        let ballots = vec![
            ballot(1, 0, "n1", "a", &[7]),
            ballot(2, 1, "n1", "b", &[7, 8]),
            ballot(3, 2, "n1", "b", &[7]),
            ballot(4, 3, "n2", "c", &[9]),
            ballot(5, 45, "n1", "d", &[7]), // the next hour
            ballot(6, 46, "n1", "e", &[8]),
        ];
        let found = clusters(&ballots, ClusterBy::Network, 3600);
        assert_eq!(found.len(), 2);
        let first = &found[0];
        assert_eq!(
            (first.key.as_str(), first.ballots, first.voters),
            ("n1", 3, 2)
        );
        assert_eq!(first.votes, BTreeMap::from([(7, 3), (8, 1)]));
        assert_eq!(first.statuses["quarantined"], 3);
        assert_eq!(first.flags["shared_network"], 3);
        assert_eq!(first.to - first.from, chrono::Duration::hours(1));
        assert_eq!(found[1].ballots, 2);
        assert!(found[1].from > first.from);
        // Identical ballots: the same candidates in the same order.
        let same = clusters(&ballots, ClusterBy::Ballot, 86_400);
        assert_eq!(same[0].key, "7");
        assert_eq!(same[0].ballots, 3);
        assert!(clusters(&ballots, ClusterBy::Device, 3600).is_empty());
    }

    #[test]
    fn decisions_move_only_the_statuses_they_may() {
        assert_eq!(Action::Hold.count_change("counted"), -1);
        assert_eq!(Action::Release.count_change("quarantined"), 1);
        assert_eq!(Action::Invalidate.count_change("counted"), -1);
        assert_eq!(Action::Invalidate.count_change("quarantined"), 0);
        assert!(!Action::Release.from_statuses().contains(&"invalidated"));
        assert!(!Action::Invalidate.from_statuses().contains(&"invalidated"));
    }

    #[test]
    fn the_chain_tally_follows_ballots_then_decisions() {
        let mut t = ChainTally::default();
        t.ballot(2, "counted", vec![7, 8]).unwrap();
        t.ballot(3, "quarantined", vec![7]).unwrap();
        t.ballot(4, "counted", vec![8]).unwrap();
        assert_eq!(t.votes(), BTreeMap::from([(7, 1), (8, 2)]));
        t.decision(Action::Release, &[3]).unwrap();
        assert_eq!(t.votes(), BTreeMap::from([(7, 2), (8, 2)]));
        t.decision(Action::Invalidate, &[2]).unwrap();
        t.decision(Action::Hold, &[4]).unwrap();
        assert_eq!(t.votes(), BTreeMap::from([(7, 1)]));
        assert_eq!(t.statuses()[&2], "invalidated");
        // An invalidated ballot stays so; an unknown seq is an error.
        assert!(t.decision(Action::Release, &[2]).is_err());
        assert!(t.decision(Action::Hold, &[99]).is_err());
        assert!(t.ballot(5, "lost", vec![]).is_err());
    }
}
