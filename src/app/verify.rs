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

use std::collections::{HashMap, HashSet};

use sha2::{Digest, Sha256};

use crate::domain::audit::{self, ChainBreak, ChainChecker, EntryRef, to_hex};
use crate::domain::campaign::Kind;
use crate::domain::rating::RaterGroup;
use crate::domain::record::{BodyHead, Snapshot, kinds};
use crate::domain::results::{self, Counts, Results, Stage};
use crate::domain::review::ChainTally;
use crate::domain::score::Level;
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
    /// Every draft and final result the chain froze, each recomputed and found equal.
    pub results: Vec<CheckedResults>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.problem.is_none()
    }

    pub fn rate(&self) -> f64 {
        self.entries as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Results frozen in the chain, each recomputed from the entries before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedResults {
    pub seq: i64,
    pub results: Results,
    pub snapshot_hash: String,
}

/// Feeds entries through the checker and the replay; stops at the first break.
#[derive(Default)]
struct Verifier {
    checker: ChainChecker,
    replay: Snapshot,
    tally: ChainTally,
    /// Expert totals per candidate, and which (expert, candidate) pairs scored.
    expert_totals: HashMap<i64, Vec<i64>>,
    scored: HashSet<(i64, i64)>,
    /// An evaluation's ratings per target and rater group.
    ratings: BTreeMap<(i64, RaterGroup), Counts>,
    results: Vec<CheckedResults>,
    /// The seq of `results.published`: nothing may follow it.
    sealed_at: Option<i64>,
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
        if let Some(sealed) = self.sealed_at {
            self.problem = Some(ChainBreak {
                seq,
                reason: format!("an entry after the results were published at seq {sealed}"),
            });
            return false;
        }
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
            .and_then(|()| self.count(seq, prev_hash, &head))
        {
            self.problem = Some(ChainBreak { seq, reason });
            return false;
        }
        true
    }

    /// Feeds ballots and decisions to the tally.
    fn count(&mut self, seq: i64, prev_hash: &str, head: &BodyHead<'_>) -> Result<(), String> {
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
        if head.kind == "rating" {
            let target = head
                .target_id
                .as_deref()
                .and_then(|t| t.parse::<i64>().ok())
                .ok_or("a rating without its target")?;
            let group = head
                .group
                .as_deref()
                .and_then(RaterGroup::parse)
                .ok_or("a rating without a known rater group")?;
            let level = head
                .level
                .as_deref()
                .and_then(Level::parse)
                .ok_or("a rating without a known level")?;
            self.ratings
                .entry((target, group))
                .or_default()
                .add(level, 1);
        }
        if head.kind == kinds::EXPERT_SCORED {
            let s = head
                .score
                .as_ref()
                .ok_or("an expert's score without its points")?;
            if s.points.values().any(|p| *p < 0) {
                return Err("an expert's points must not be negative".into());
            }
            if s.points.values().sum::<i64>() != s.total {
                return Err(format!(
                    "the score's total {} is not the sum of its points",
                    s.total
                ));
            }
            if !self.scored.insert((s.expert_id, s.candidate_id)) {
                return Err(format!(
                    "expert {} scored candidate {} a second time",
                    s.expert_id, s.candidate_id
                ));
            }
            self.expert_totals
                .entry(s.candidate_id)
                .or_default()
                .push(s.total);
        }
        if head.kind == kinds::RESULTS_DRAFT || head.kind == kinds::RESULTS_PUBLISHED {
            self.check_results(seq, prev_hash, head)?;
            if head.kind == kinds::RESULTS_PUBLISHED {
                self.sealed_at = Some(seq);
            }
        }
        Ok(())
    }

    /// Recomputes the results from the entries so far and compares them, and their hash and
    /// head, with what the entry froze.
    fn check_results(
        &mut self,
        seq: i64,
        prev_hash: &str,
        head: &BodyHead<'_>,
    ) -> Result<(), String> {
        let raw = head.results.ok_or("a results entry without results")?;
        let at = head
            .audit_head
            .as_ref()
            .ok_or("a results entry without the audit head")?;
        if at.seq != seq - 1 || at.hash != prev_hash {
            return Err(format!(
                "the results say they were frozen at head {} ({}), but the entry follows seq {} ({prev_hash})",
                at.seq,
                at.hash,
                seq - 1
            ));
        }
        let digest = to_hex(&Sha256::digest(raw.get().as_bytes()).into());
        if head.snapshot_hash.as_deref() != Some(digest.as_str()) {
            return Err(format!(
                "the snapshot hash {:?} is not the hash of the results ({digest})",
                head.snapshot_hash
            ));
        }
        let stage = if head.kind == kinds::RESULTS_PUBLISHED {
            Stage::Final
        } else {
            Stage::Draft
        };
        let (campaign, _) = self
            .replay
            .campaign
            .as_ref()
            .ok_or("results before the campaign")?;
        let recomputed = if campaign.kind == Kind::Evaluation {
            results::compute_evaluation(
                stage,
                &results::EvaluationInputs {
                    campaign,
                    targets: self.replay.targets.values().map(|(t, _)| t).collect(),
                    ratings: &self.ratings,
                },
            )
        } else {
            let votes = self.tally.votes();
            results::compute(
                stage,
                &results::Inputs {
                    campaign,
                    categories: self.replay.categories.values().map(|(c, _)| c).collect(),
                    candidates: self.replay.candidates.values().map(|(c, _)| c).collect(),
                    votes: &votes,
                    expert_totals: &self.expert_totals,
                },
            )
        };
        let text = audit::canonical(&serde_json::to_value(&recomputed).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
        if text != raw.get() {
            let recorded: Results = serde_json::from_str(raw.get())
                .map_err(|e| format!("the results do not read as results: {e}"))?;
            return Err(results::first_difference(&recorded, &recomputed)
                .unwrap_or_else(|| "the results differ from the recount in form".into()));
        }
        self.results.push(CheckedResults {
            seq,
            results: recomputed,
            snapshot_hash: digest,
        });
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
                if v.problem.is_none() {
                    v.problem = frozen_difference(store, campaign_id, &v.results).await?;
                }
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
        results: v.results,
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

/// Whether the results the database serves are the ones the chain froze (the latest draft
/// and the final results).
async fn frozen_difference(
    store: &dyn Store,
    campaign_id: i64,
    chain: &[CheckedResults],
) -> Result<Option<ChainBreak>, StoreError> {
    for stage in [Stage::Draft, Stage::Final] {
        let db = store.frozen_results(campaign_id, stage).await?;
        let recorded = chain.iter().rev().find(|r| r.results.stage == stage);
        let problem = match (db, recorded) {
            (None, None) => None,
            (Some(db), Some(c))
                if db.seq == c.seq
                    && db.snapshot_hash == c.snapshot_hash
                    && db.results == c.results =>
            {
                None
            }
            (Some(db), Some(c)) => Some(ChainBreak {
                seq: c.seq,
                reason: format!(
                    "the {} results in the database (seq {}, hash {}) differ from those the chain froze: {}",
                    stage.as_str(),
                    db.seq,
                    db.snapshot_hash,
                    results::first_difference(&db.results, &c.results)
                        .unwrap_or_else(|| "the hash or seq".into())
                ),
            }),
            (Some(db), None) => Some(ChainBreak {
                seq: db.seq,
                reason: format!(
                    "the database holds {} results the chain never froze",
                    stage.as_str()
                ),
            }),
            (None, Some(c)) => Some(ChainBreak {
                seq: c.seq,
                reason: format!(
                    "the {} results the chain froze are missing from the database",
                    stage.as_str()
                ),
            }),
        };
        if problem.is_some() {
            return Ok(problem);
        }
    }
    Ok(None)
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
        results: v.results,
    })
}
