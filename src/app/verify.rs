//! `minyi verify`: re-reads a campaign's chain (from the database, or from an exported JSON
//! Lines file with no database at all), checks every link, replays the state the entries
//! record and, from the database, compares it with the tables. It names the first bad seq.

use std::io::BufRead;
use std::time::{Duration, Instant};

use crate::domain::audit::{ChainBreak, ChainChecker, Entry, to_hex};
use crate::domain::record::Snapshot;
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
    problem: Option<ChainBreak>,
}

impl Verifier {
    fn feed(&mut self, e: &Entry) -> bool {
        if let Err(b) = self.checker.check(e) {
            self.problem = Some(b);
            return false;
        }
        if let Err(reason) = self.replay.apply(e.seq, &e.body) {
            self.problem = Some(ChainBreak { seq: e.seq, reason });
            return false;
        }
        true
    }
}

pub async fn from_store(store: &dyn Store, campaign_id: i64) -> Result<Report, StoreError> {
    let started = Instant::now();
    let mut v = Verifier::default();
    let mut after = 0;
    'pages: loop {
        let page = store.audit_entries(campaign_id, after, PAGE).await?;
        let Some(last) = page.last().map(|e| e.seq) else {
            break;
        };
        for e in &page {
            if !v.feed(e) {
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
            }
        }
    }
    Ok(Report {
        entries: v.checker.checked(),
        elapsed: started.elapsed(),
        head_hash: to_hex(&v.checker.head()),
        problem: v.problem,
        state_compared,
    })
}

/// Verifies an export (one JSON entry per line).
pub fn from_reader(reader: impl BufRead) -> std::io::Result<Report> {
    let started = Instant::now();
    let mut v = Verifier::default();
    for (i, line) in reader.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let entry: Entry = match serde_json::from_str(&line) {
            Ok(e) => e,
            Err(e) => {
                v.problem = Some(ChainBreak {
                    seq: v.checker.checked() + 1,
                    reason: format!("line {}: not an entry: {e}", i + 1),
                });
                break;
            }
        };
        if !v.feed(&entry) {
            break;
        }
    }
    Ok(Report {
        entries: v.checker.checked(),
        elapsed: started.elapsed(),
        head_hash: to_hex(&v.checker.head()),
        problem: v.problem,
        state_compared: false,
    })
}
