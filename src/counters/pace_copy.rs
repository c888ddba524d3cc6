//! An instance's copy of a campaign's pace sums (see observe_fn.lua), so that most ballots
//! read their candidates' pace here instead of in Redis: in the ballot's Redis step the pace
//! was one command, a key and five arguments more, about 3 µs of Redis's 25 a ballot (of the
//! 17 that all the checks cost it).
//!
//! Each committed batch's count (count_pace.lua) answers with the sums it left: every field
//! when the copy is older than `REFRESH` (or missing), else only the totals and the fields of
//! its own candidates. So the copy holds this instance's own committed votes at once and
//! other instances' within `REFRESH`; a ballot uses it only while its whole read is younger
//! than `FRESH` and of the ballot's minute, and otherwise reads in Redis as before (the first
//! ballots of a minute, a quiet campaign, a clock behind). The pace counts committed ballots
//! only in any case: the copy lags Redis by at most the time since its last whole read.
//!
//! The sums carry a version (`#`), raised by every count, so that a late answer never
//! overwrites a newer one: answers are ordered by (minute, version). Pure: no I/O, the clock
//! is the caller's.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::domain::risk::Pace;

/// How old a copy's last whole read may be for a ballot to use it.
pub const FRESH: Duration = Duration::from_millis(250);
/// How often a batch reads the sums back whole rather than its own candidates' fields.
pub const REFRESH: Duration = Duration::from_millis(50);

#[derive(Debug, Clone, PartialEq)]
pub struct PaceCopy {
    minute: i64,
    version: i64,
    whole_at: Instant,
    recent_all: u64,
    before_all: u64,
    /// Candidate → (votes recent, votes before); a candidate absent has none.
    candidates: HashMap<i64, (u64, u64)>,
}

/// What count_pace.lua answered, parsed: the sums' minute and version and the fields it read.
#[derive(Debug, Default)]
pub struct Answer {
    minute: Option<i64>,
    version: i64,
    recent_all: u64,
    before_all: u64,
    candidates: Vec<(i64, u64, u64)>,
}

impl Answer {
    /// From the answer's field/value pairs (`@`, `#`, `r:*`, `b:*`, `r:<id>`, `b:<id>`).
    /// `None` when a field is not one of those (a script that does not match this code).
    pub fn parse(pairs: &[(String, i64)]) -> Option<Self> {
        let mut a = Answer::default();
        let mut by_id: HashMap<i64, (u64, u64)> = HashMap::new();
        for (field, value) in pairs {
            let n = u64::try_from(*value).ok()?;
            match field.as_str() {
                "@" => a.minute = Some(*value),
                "#" => a.version = *value,
                "r:*" => a.recent_all = n,
                "b:*" => a.before_all = n,
                f => {
                    let (window, id) = f.split_once(':')?;
                    let votes = by_id.entry(id.parse().ok()?).or_default();
                    match window {
                        "r" => votes.0 = n,
                        "b" => votes.1 = n,
                        _ => return None,
                    }
                }
            }
        }
        a.candidates = by_id.into_iter().map(|(id, (r, b))| (id, r, b)).collect();
        Some(a)
    }
}

/// Whether the next count should read the sums back whole.
pub fn wants_whole(copy: Option<&PaceCopy>, now: Instant) -> bool {
    copy.is_none_or(|c| now.duration_since(c.whole_at) >= REFRESH)
}

/// `copy` after a count's answer (`whole`: every field was read). An answer without a minute
/// (no sums in Redis, or too many fields to read back) leaves no copy; an answer older than
/// the copy changes nothing; a partial answer of a later minute drops the copy (its other
/// candidates' fields are of the old minute), so that the next count reads whole.
pub fn merge(copy: &mut Option<PaceCopy>, answer: Answer, whole: bool, now: Instant) {
    let Some(minute) = answer.minute else {
        *copy = None;
        return;
    };
    let newer = copy
        .as_ref()
        .is_none_or(|c| (minute, answer.version) > (c.minute, c.version));
    if whole {
        if newer {
            *copy = Some(PaceCopy {
                minute,
                version: answer.version,
                whole_at: now,
                recent_all: answer.recent_all,
                before_all: answer.before_all,
                candidates: answer
                    .candidates
                    .into_iter()
                    .map(|(id, r, b)| (id, (r, b)))
                    .collect(),
            });
        }
        return;
    }
    match copy {
        Some(c) if newer && c.minute == minute => {
            c.version = answer.version;
            c.recent_all = answer.recent_all;
            c.before_all = answer.before_all;
            for (id, r, b) in answer.candidates {
                c.candidates.insert(id, (r, b));
            }
        }
        Some(_) if newer => *copy = None,
        _ => {}
    }
}

/// The pace of a ballot for `candidates` at `minute`, its own votes added to the recent
/// window (as observe_fn.lua answers); `None` when the copy cannot serve it.
pub fn read(copy: &PaceCopy, minute: i64, candidates: &[i64], now: Instant) -> Option<Vec<Pace>> {
    if copy.minute != minute || now.duration_since(copy.whole_at) >= FRESH {
        return None;
    }
    let recent_all = copy.recent_all + candidates.len() as u64;
    Some(
        candidates
            .iter()
            .map(|id| {
                let (recent, before) = copy.candidates.get(id).copied().unwrap_or_default();
                Pace {
                    recent: recent + 1,
                    recent_all,
                    before,
                    before_all: copy.before_all,
                }
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(fields: &[(&str, i64)]) -> Answer {
        let pairs: Vec<(String, i64)> = fields.iter().map(|(f, v)| (f.to_string(), *v)).collect();
        Answer::parse(&pairs).expect("a valid answer")
    }

    fn pace(recent: u64, recent_all: u64, before: u64, before_all: u64) -> Pace {
        Pace {
            recent,
            recent_all,
            before,
            before_all,
        }
    }

    const WHOLE: &[(&str, i64)] = &[
        ("@", 100),
        ("#", 4),
        ("r:*", 10),
        ("b:*", 30),
        ("r:1", 6),
        ("b:1", 20),
        ("r:2", 4),
        ("b:2", 10),
    ];

    #[test]
    fn a_ballot_reads_the_whole_copy_with_its_own_votes_added() {
        let t = Instant::now();
        let mut copy = None;
        merge(&mut copy, answer(WHOLE), true, t);
        let c = copy.as_ref().unwrap();
        assert_eq!(
            read(c, 100, &[1, 3], t),
            Some(vec![pace(7, 12, 20, 30), pace(1, 12, 0, 30)])
        );
        // Another minute, or a whole read too old: Redis answers instead.
        assert_eq!(read(c, 101, &[1], t), None);
        assert_eq!(read(c, 99, &[1], t), None);
        assert_eq!(read(c, 100, &[1], t + FRESH), None);
        assert!(read(c, 100, &[1], t + FRESH - Duration::from_millis(1)).is_some());
    }

    #[test]
    fn a_batch_updates_its_own_candidates_and_the_totals_and_a_late_answer_nothing() {
        let t = Instant::now();
        let mut copy = None;
        merge(&mut copy, answer(WHOLE), true, t);
        let later = &[
            ("@", 100),
            ("#", 6),
            ("r:*", 13),
            ("b:*", 30),
            ("r:2", 7),
            ("b:2", 10),
        ];
        merge(&mut copy, answer(later), false, t);
        // Candidate 2 and the totals from the batch; candidate 1 as the whole read left it.
        let c = copy.clone().unwrap();
        assert_eq!(
            read(&c, 100, &[1, 2], t),
            Some(vec![pace(7, 15, 20, 30), pace(8, 15, 10, 30)])
        );
        // An answer older than the copy (version 5) arriving late changes nothing, whole or not.
        let late = &[
            ("@", 100),
            ("#", 5),
            ("r:*", 12),
            ("b:*", 30),
            ("r:2", 6),
            ("b:2", 10),
        ];
        merge(&mut copy, answer(late), false, t);
        merge(&mut copy, answer(late), true, t + REFRESH);
        assert_eq!(copy, Some(c));
    }

    #[test]
    fn a_new_minute_or_no_sums_drops_the_copy_until_a_whole_read() {
        let t = Instant::now();
        let mut copy = None;
        assert!(wants_whole(copy.as_ref(), t));
        merge(&mut copy, answer(WHOLE), true, t);
        assert!(!wants_whole(copy.as_ref(), t + REFRESH / 2));
        assert!(wants_whole(copy.as_ref(), t + REFRESH));
        // The sums were made afresh for minute 101: a partial answer cannot stand for them.
        let next = &[
            ("@", 101),
            ("#", 1),
            ("r:*", 3),
            ("b:*", 0),
            ("r:1", 3),
            ("b:1", 0),
        ];
        merge(&mut copy, answer(next), false, t);
        assert_eq!(copy, None);
        merge(&mut copy, answer(next), true, t);
        assert_eq!(
            read(copy.as_ref().unwrap(), 101, &[1], t),
            Some(vec![pace(4, 4, 0, 0)])
        );
        // No sums in Redis (expired, or too many fields to read back): no copy.
        merge(&mut copy, answer(&[]), false, t);
        assert_eq!(copy, None);
    }

    #[test]
    fn an_answer_with_a_field_it_does_not_know_is_refused() {
        for bad in [("x:1", 1), ("r:one", 1), ("r:1", -1), ("q", 1)] {
            let pairs = vec![(bad.0.to_string(), bad.1)];
            assert!(Answer::parse(&pairs).is_none(), "{bad:?}");
        }
    }
}
