//! An instance's copy of a campaign's pace sums (see observe_fn.lua), so that most ballots
//! read their candidates' pace here instead of in Redis: in the ballot's Redis step the pace
//! was one command, a key and five arguments more (`counter_step`: Redis's CPU a ballot with
//! all checks 24.8 µs with it, 20.0 with the copy).
//!
//! Each committed batch's count (count_pace.lua) answers with the sums it left: every field
//! when the copy is older than `REFRESH` (or missing), else only the totals and the fields of
//! its own candidates. So the copy holds this instance's own committed votes at once and
//! other instances' within `REFRESH`; a ballot uses it only while its whole read is younger
//! than `FRESH` and of the ballot's minute, and otherwise reads in Redis as before (the first
//! ballots of a minute, a quiet campaign, a clock behind). The pace counts committed ballots
//! only in any case: the copy lags Redis by at most the time since its last whole read.
//!
//! The sums carry a version (`#`), raised by every count, and each value of the copy keeps
//! the version it was read at, so that a late answer (two batches of a lane are in flight at
//! once) never overwrites a newer value, and its own fields still count where they are newer.
//! Should the sums vanish within a minute (Redis lost them) and be made afresh, their
//! version starts again below the copy's: the copy then takes nothing more for that minute
//! and ballots read in Redis once its last whole read is `FRESH` old. Pure: no I/O, the
//! clock is the caller's.

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
    /// The version of the last whole read, and when it was asked for.
    whole_version: i64,
    whole_at: Instant,
    /// (votes recent, votes before, the version they were read at).
    totals: (u64, u64, i64),
    /// Candidate → its votes recent and before, and their version; a candidate absent has
    /// none (as of the last whole read).
    candidates: HashMap<i64, (u64, u64, i64)>,
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

/// `copy` after a count's answer (`whole`: every field was read; `asked_at`: when the count
/// was sent, so that the copy's age is never understated). An answer without a minute (no
/// sums in Redis, or too many fields to read back) leaves no copy; one of an earlier minute
/// changes nothing; a whole answer of a later minute replaces the copy, a partial one drops
/// it (the other candidates' values are of the old minute) so that the next count reads
/// whole. Within the minute each value takes the answer's where the answer is newer.
pub fn merge(copy: &mut Option<PaceCopy>, answer: Answer, whole: bool, asked_at: Instant) {
    let Some(minute) = answer.minute else {
        *copy = None;
        return;
    };
    let v = answer.version;
    let fresh = PaceCopy {
        minute,
        whole_version: v,
        whole_at: asked_at,
        totals: (answer.recent_all, answer.before_all, v),
        candidates: HashMap::new(),
    };
    let c = match copy {
        Some(c) if c.minute == minute => c,
        Some(c) if c.minute > minute => return,
        _ if whole => copy.insert(fresh),
        _ => {
            *copy = None;
            return;
        }
    };
    if v > c.totals.2 {
        c.totals = (answer.recent_all, answer.before_all, v);
    }
    for (id, r, b) in &answer.candidates {
        let value = c.candidates.entry(*id).or_insert((0, 0, i64::MIN));
        if v > value.2 {
            *value = (*r, *b, v);
        }
    }
    if whole && v >= c.whole_version {
        // Candidates the whole read did not name had no votes at its version.
        let named: std::collections::HashSet<i64> =
            answer.candidates.iter().map(|(id, ..)| *id).collect();
        for (id, value) in c.candidates.iter_mut() {
            if !named.contains(id) && v > value.2 {
                *value = (0, 0, v);
            }
        }
        c.whole_version = v;
        c.whole_at = asked_at;
    }
}

/// The pace of a ballot for `candidates` at `minute`, its own votes added to the recent
/// window (as observe_fn.lua answers); `None` when the copy cannot serve it.
pub fn read(copy: &PaceCopy, minute: i64, candidates: &[i64], now: Instant) -> Option<Vec<Pace>> {
    if copy.minute != minute || now.duration_since(copy.whole_at) >= FRESH {
        return None;
    }
    let (recent_all, before_all, _) = copy.totals;
    let recent_all = recent_all + candidates.len() as u64;
    Some(
        candidates
            .iter()
            .map(|id| {
                let (recent, before, _) = copy.candidates.get(id).copied().unwrap_or_default();
                Pace {
                    recent: recent + 1,
                    recent_all,
                    before,
                    before_all,
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

    /// An answer of minute 100 at `version`: the totals, then (candidate, recent, before).
    fn at_100(version: i64, totals: (i64, i64), candidates: &[(i64, i64, i64)]) -> Answer {
        let mut fields = vec![
            ("@".to_string(), 100),
            ("#".to_string(), version),
            ("r:*".to_string(), totals.0),
            ("b:*".to_string(), totals.1),
        ];
        for (id, r, b) in candidates {
            fields.push((format!("r:{id}"), *r));
            fields.push((format!("b:{id}"), *b));
        }
        Answer::parse(&fields).expect("a valid answer")
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
        merge(&mut copy, at_100(6, (13, 30), &[(2, 7, 10)]), false, t);
        // Candidate 2 and the totals from the batch; candidate 1 as the whole read left it.
        let c = copy.clone().unwrap();
        assert_eq!(
            read(&c, 100, &[1, 2], t),
            Some(vec![pace(7, 15, 20, 30), pace(8, 15, 10, 30)])
        );
        // An answer older than the copy's values (version 5) arriving late changes none of
        // them.
        merge(&mut copy, at_100(5, (12, 30), &[(2, 6, 10)]), false, t);
        assert_eq!(copy, Some(c));
    }

    /// Two batches of one lane in flight: the first counted (version 5, candidate 1) answers
    /// after the second (version 6, candidate 2). Each candidate keeps its newest value, so
    /// the instance's own votes are all in the copy.
    #[test]
    fn answers_out_of_order_keep_each_candidates_newest_value() {
        let t = Instant::now();
        let mut copy = None;
        merge(&mut copy, answer(WHOLE), true, t);
        merge(&mut copy, at_100(6, (12, 30), &[(2, 5, 10)]), false, t);
        merge(&mut copy, at_100(5, (11, 30), &[(1, 7, 20)]), false, t);
        assert_eq!(
            read(copy.as_ref().unwrap(), 100, &[1, 2], t),
            Some(vec![pace(8, 14, 20, 30), pace(6, 14, 10, 30)])
        );
        // A whole read sent before the second batch but answered after it: the values it
        // names newer than the copy's count, the others stay; the copy's age is its own.
        let whole_late = at_100(5, (11, 30), &[(1, 7, 20), (2, 4, 10), (9, 1, 0)]);
        let asked = t + REFRESH;
        merge(&mut copy, whole_late, true, asked);
        let c = copy.as_ref().unwrap();
        assert_eq!(
            read(c, 100, &[1, 2, 9], asked),
            Some(vec![
                pace(8, 15, 20, 30),
                pace(6, 15, 10, 30),
                pace(2, 15, 0, 30)
            ])
        );
        assert!(read(c, 100, &[1], asked + FRESH).is_none());
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
