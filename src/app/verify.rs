//! `minyi verify`: re-reads a campaign's chain (from the database, or from an exported JSON
//! Lines file with no database at all), checks every link, replays the state the entries
//! record and recounts the votes from the ballot entries and the review decisions; from the
//! database, it compares both with the tables. It names the first bad seq.
//!
//! Bodies are checked as the text that was stored or exported (see `ChainChecker::check`)
//! and read only for their kind and recorded state, so a million entries take seconds.

use std::borrow::Cow;
use std::io::BufRead;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::value::RawValue;

use std::collections::BTreeMap;

use crate::domain::audit::{ChainBreak, ChainChecker, EntryRef, to_hex};
use crate::domain::record::{BodyHead, Snapshot};
use crate::domain::review::ChainTally;
use crate::store::{Store, StoreError};

const PAGE: u32 = 10_000;

#[derive(Debug)]
pub struct Report {
    pub entries: i64,
    pub elapsed: Duration,
    pub head_hash: String,
    /// The first thing that does not hold, if any.
    pub problem: Option<ChainBreak>,
    /// Whether the database's tables were compared with the replayed state.
    pub state_compared: bool,
    /// Counted votes per candidate, recounted from the entries alone.
    pub votes: BTreeMap<i64, i64>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.problem.is_none()
    }

    pub fn rate(&self) -> f64 {
        self.entries as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Feeds entries through the checker and the replay; stops at the first break.
#[derive(Default)]
struct Verifier {
    checker: ChainChecker,
    replay: Snapshot,
    tally: ChainTally,
    problem: Option<ChainBreak>,
}

impl Verifier {
    /// Checks one entry given as text; false once something does not hold.
    fn feed(&mut self, seq: i64, kind: &str, body: &str, prev_hash: &str, hash: &str) -> bool {
        let head: BodyHead<'_> = match serde_json::from_str(body) {
            Ok(h) => h,
            Err(e) => {
                self.problem = Some(ChainBreak {
                    seq,
                    reason: format!("body is not an entry body: {e}"),
                });
                return false;
            }
        };
        let entry = EntryRef {
            seq,
            kind,
            body_kind: &head.kind,
            body,
            prev_hash,
            hash,
        };
        if let Err(b) = self.checker.check(&entry) {
            self.problem = Some(b);
            return false;
        }
        if let Err(reason) = self
            .replay
            .apply_head(seq, &head)
            .and_then(|()| self.count(seq, &head))
        {
            self.problem = Some(ChainBreak { seq, reason });
            return false;
        }
        true
    }

    /// Feeds ballots and decisions to the tally.
    fn count(&mut self, seq: i64, head: &BodyHead<'_>) -> Result<(), String> {
        if head.kind == "ballot" {
            let status = head.status.as_deref().ok_or("a ballot without a status")?;
            let ids = head
                .candidate_ids
                .as_deref()
                .ok_or("a ballot without candidates")?
                .iter()
                .map(|id| {
                    id.parse::<i64>()
                        .map_err(|_| format!("candidate id {id:?}"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            self.tally.ballot(seq, status, ids)?;
        }
        if let Some(d) = &head.decision {
            self.tally.decision(d.action, &d.ballots)?;
        }
        Ok(())
    }
}

pub async fn from_store(store: &dyn Store, campaign_id: i64) -> Result<Report, StoreError> {
    let started = Instant::now();
    let mut v = Verifier::default();
    let mut after = 0;
    'pages: loop {
        let page = store.audit_entries_raw(campaign_id, after, PAGE).await?;
        let Some(last) = page.last().map(|e| e.seq) else {
            break;
        };
        for e in &page {
            if !v.feed(e.seq, &e.kind, &e.body, &e.prev_hash, &e.hash) {
                break 'pages;
            }
        }
        after = last;
    }
    let mut state_compared = false;
    if v.problem.is_none() {
        let (head_seq, head_hash) = store.audit_head(campaign_id).await?;
        if head_seq != v.checker.checked() || head_hash != to_hex(&v.checker.head()) {
            v.problem = Some(ChainBreak {
                seq: v.checker.checked() + 1,
                reason: format!(
                    "the head says seq {head_seq} ({head_hash}) but the entries end at seq {} (entries missing at the end?)",
                    v.checker.checked()
                ),
            });
        } else {
            let db = store.snapshot(campaign_id).await?;
            state_compared = true;
            if let Some((seq, reason)) = v.replay.first_difference(&db) {
                v.problem = Some(ChainBreak { seq, reason });
            } else {
                let statuses = store.ballot_statuses(campaign_id).await?;
                let ledger = store.ledger_votes(campaign_id).await?;
                v.problem = tally_difference(&v.tally, &statuses, &ledger.votes);
            }
        }
    }
    Ok(Report {
        entries: v.checker.checked(),
        elapsed: started.elapsed(),
        head_hash: to_hex(&v.checker.head()),
        problem: v.problem,
        state_compared,
        votes: v.tally.votes(),
    })
}

/// The first way the ledger disagrees with the chain's recount: a ballot whose status was
/// changed behind the chain's back (named by its seq), a ballot missing from either side, or
/// a count that differs.
fn tally_difference(
    chain: &ChainTally,
    ledger_statuses: &BTreeMap<i64, String>,
    ledger_votes: &std::collections::HashMap<i64, i64>,
) -> Option<ChainBreak> {
    let recorded = chain.statuses();
    for (seq, status) in &recorded {
        match ledger_statuses.get(seq) {
            Some(s) if s == status => {}
            Some(s) => {
                return Some(ChainBreak {
                    seq: *seq,
                    reason: format!(
                        "ballot {seq} is {s} in the database, but {status} by the chain"
                    ),
                });
            }
            None => {
                return Some(ChainBreak {
                    seq: *seq,
                    reason: format!("ballot {seq} is missing from the database"),
                });
            }
        }
    }
    if let Some(seq) = ledger_statuses.keys().find(|s| !recorded.contains_key(s)) {
        return Some(ChainBreak {
            seq: 0,
            reason: format!("ballot {seq} is in the database but has no entry in the chain"),
        });
    }
    let votes = chain.votes();
    let mut candidates: Vec<&i64> = votes.keys().chain(ledger_votes.keys()).collect();
    candidates.sort_unstable();
    candidates.dedup();
    for c in candidates {
        let (a, b) = (
            votes.get(c).copied().unwrap_or(0),
            ledger_votes.get(c).copied().unwrap_or(0),
        );
        if a != b {
            return Some(ChainBreak {
                seq: 0,
                reason: format!("candidate {c}: the chain counts {a} votes, the database {b}"),
            });
        }
    }
    None
}

/// One line of an export, borrowed from the line's text.
#[derive(Deserialize)]
struct Line<'a> {
    seq: i64,
    #[serde(borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    body: &'a RawValue,
    #[serde(borrow)]
    prev_hash: Cow<'a, str>,
    #[serde(borrow)]
    hash: Cow<'a, str>,
}

/// Verifies an export (one JSON entry per line).
pub fn from_reader(mut reader: impl BufRead) -> std::io::Result<Report> {
    let started = Instant::now();
    let mut v = Verifier::default();
    let mut line = String::new();
    let mut number = 0;
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            break;
        }
        number += 1;
        if line.trim().is_empty() {
            continue;
        }
        let entry: Line<'_> = match serde_json::from_str(&line) {
            Ok(e) => e,
            Err(e) => {
                v.problem = Some(ChainBreak {
                    seq: v.checker.checked() + 1,
                    reason: format!("line {number}: not an entry: {e}"),
                });
                break;
            }
        };
        if !v.feed(
            entry.seq,
            &entry.kind,
            entry.body.get(),
            &entry.prev_hash,
            &entry.hash,
        ) {
            break;
        }
    }
    Ok(Report {
        entries: v.checker.checked(),
        elapsed: started.elapsed(),
        head_hash: to_hex(&v.checker.head()),
        problem: v.problem,
        state_compared: false,
        votes: v.tally.votes(),
    })
}
