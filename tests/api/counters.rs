//! The counter store's two implementations behave the same, under a real race.

use std::sync::Arc;
use std::time::Duration;

use minyi::counters::{
    BallotOutcome, BallotStep, Counters, DAY_LIMIT_FIELD, MemoryCounters, Observation, Observed,
    PaceProbe, PaceVotes, QuotaOutcome, QuotaRequest, Rebuild, RedisCounters, Throttle, day_key,
};
use minyi::domain::rate::RateSpec;
use minyi::domain::risk::Pace;

use crate::helpers::*;

fn stores() -> Vec<Arc<dyn Counters>> {
    vec![
        Arc::new(MemoryCounters::default()),
        Arc::new(RedisCounters::new(&redis_url(), &unique("t")).unwrap()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_hundred_racing_increments_count_exactly_five_hundred() {
    for counters in stores() {
        let tasks: Vec<_> = (0..500)
            .map(|_| {
                let c = counters.clone();
                tokio::spawn(
                    async move { c.incr("race", 1, Duration::from_secs(60)).await.unwrap() },
                )
            })
            .collect();
        let mut seen: Vec<i64> = futures_util::future::join_all(tasks)
            .await
            .into_iter()
            .map(|r| r.unwrap())
            .collect();
        seen.sort();
        assert_eq!(
            seen,
            (1..=500).collect::<Vec<_>>(),
            "{}: every value once",
            counters.backend()
        );
        assert_eq!(
            counters.get("race").await.unwrap(),
            500,
            "{}",
            counters.backend()
        );
        assert_eq!(counters.get("absent").await.unwrap(), 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_counter_expires_after_its_ttl() {
    for counters in stores() {
        assert_eq!(
            counters
                .incr("short", 3, Duration::from_secs(1))
                .await
                .unwrap(),
            3
        );
        // A later increment does not extend the first expiry.
        assert_eq!(
            counters
                .incr("short", 2, Duration::from_secs(60))
                .await
                .unwrap(),
            5
        );
        tokio::time::sleep(Duration::from_millis(2100)).await;
        assert_eq!(
            counters.get("short").await.unwrap(),
            0,
            "{}",
            counters.backend()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefixes_keep_two_deployments_apart() {
    let a = RedisCounters::new(&redis_url(), &unique("t")).unwrap();
    let b = RedisCounters::new(&redis_url(), &unique("t")).unwrap();
    a.incr("k", 7, Duration::from_secs(60)).await.unwrap();
    assert_eq!(b.get("k").await.unwrap(), 0);
    assert_eq!(a.get("k").await.unwrap(), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_redis_is_an_error_not_a_hang() {
    let c = RedisCounters::new("redis://127.0.0.1:1", "t").unwrap();
    let started = std::time::Instant::now();
    assert!(c.ping().await.is_err());
    assert!(c.incr("k", 1, Duration::from_secs(1)).await.is_err());
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// Redis forgets its scripts when it restarts: the next call loads its script again and
/// answers as if nothing happened. (Every script call of the service does so, which is also
/// why the other tests sharing this Redis do not mind the flush.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ballot_step_loads_its_script_again_after_redis_forgot_it() {
    let c = RedisCounters::new(&redis_url(), &unique("t")).unwrap();
    c.rebuild(7, &Rebuild::default(), false).await.unwrap();
    let (_, outcome) = done(take_ballot(&c, "a", None).await);
    assert_eq!(outcome, QuotaOutcome::Taken { remaining_today: 1 });
    let mut admin = redis::Client::open(redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut admin)
        .await
        .unwrap();
    let (seen, outcome) = done(take_ballot(&c, "a", None).await);
    assert_eq!(outcome, QuotaOutcome::Taken { remaining_today: 0 });
    assert_eq!(seen.sizes, [1]);
}

/// One ballot's risk step at `minute`: its voter joins one address set; the candidates'
/// paces come back. Then the ballot is counted for the pace, as its batch's commit does.
async fn observe_at(
    counters: &dyn Counters,
    minute: i64,
    voter: &str,
    candidates: &[i64],
    step: Step,
) -> (Vec<u64>, Vec<Pace>) {
    let sets = [("{c9}~ip:x".to_string(), Duration::from_secs(600))];
    let observation = Observation {
        sets: &sets,
        member: voter,
        pace: Some(PaceProbe {
            prefix: "{c9}~pace".into(),
            minute,
            candidates,
        }),
    };
    let o = match step {
        Step::Observe => counters.observe(&observation).await.unwrap(),
        Step::Ballot => {
            // The same through the ballot's one step, with shared limits before the
            // signals (one with a key of its own, the voter's in its day) and the quotas
            // after them (their answers share one reply).
            let quota = QuotaRequest {
                campaign_id: 9,
                voter,
                day: chrono::NaiveDate::from_ymd_opt(2026, 5, 1).unwrap(),
                candidates,
                votes_per_day: 100,
                votes_per_candidate_per_day: 100,
                votes_per_campaign: Some(100),
            };
            let spec = RateSpec::parse("1000/min").unwrap().unwrap();
            let step = BallotStep {
                limits: vec![
                    Throttle {
                        key: format!("{{c9}}~rl:ballot:ip:{voter}"),
                        field: None,
                        spec,
                    },
                    Throttle {
                        key: day_key(&quota),
                        field: Some(DAY_LIMIT_FIELD),
                        spec,
                    },
                ],
                observation: Some(&observation),
                quota: &quota,
            };
            let (seen, outcome) = done(counters.take_ballot(&step).await.unwrap());
            assert!(matches!(outcome, QuotaOutcome::Taken { .. }), "{outcome:?}");
            seen
        }
    };
    let votes = PaceVotes::from([(minute, candidates.iter().map(|c| (*c, 1)).collect())]);
    counters.count_pace("{c9}~pace", &votes).await.unwrap();
    (o.sizes, o.pace)
}

/// How a ballot's signals are measured: the risk step alone, or the ballot's one step.
#[derive(Clone, Copy, Debug)]
enum Step {
    Observe,
    Ballot,
}

fn pace(recent: u64, recent_all: u64, before: u64, before_all: u64) -> Pace {
    Pace {
        recent,
        recent_all,
        before,
        before_all,
    }
}

/// Redis keeps the two windows' totals apart from the minute buckets (see observe_fn.lua);
/// they must say what adding up the buckets says, as the memory store does: at the first
/// ballot of a minute, after it, from a clock behind, and after a quiet spell; through the
/// risk step alone and through the ballot's one step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_stores_measure_the_same_pace_whatever_the_minute() {
    for (counters, step) in [Step::Observe, Step::Ballot]
        .into_iter()
        .flat_map(|step| stores().into_iter().map(move |c| (c, step)))
    {
        let c = counters.as_ref();
        let name = format!("{} {step:?}", c.backend());
        c.rebuild(9, &Rebuild::default(), false).await.unwrap();
        let observe_at = |minute: i64, voter: &'static str, candidates: &'static [i64]| {
            observe_at(c, minute, voter, candidates, step)
        };
        // Minute 1000: two ballots.
        let got = observe_at(1000, "v1", &[5, 6]).await;
        assert_eq!(got, (vec![1], vec![pace(1, 2, 0, 0); 2]), "{name}");
        let got = observe_at(1000, "v2", &[5]).await;
        assert_eq!(got, (vec![2], vec![pace(2, 3, 0, 0)]), "{name}");
        // Minute 1003: minute 1000 is now "before".
        let got = observe_at(1003, "v3", &[6]).await;
        assert_eq!(got, (vec![3], vec![pace(1, 1, 1, 3)]), "{name}");
        // A clock two minutes behind: its own windows (1001–1000 recent).
        let got = observe_at(1001, "v3", &[6]).await;
        assert_eq!(got, (vec![3], vec![pace(2, 4, 0, 0)]), "{name}");
        // Back at 1003, the late ballot counts in "before".
        let got = observe_at(1003, "v4", &[5, 6]).await;
        assert_eq!(
            got,
            (vec![4], vec![pace(1, 3, 2, 4), pace(2, 3, 2, 4)]),
            "{name}"
        );
        // After a quiet spell nothing of the old minutes is left in the windows.
        let got = observe_at(1020, "v5", &[5]).await;
        assert_eq!(got.1, [pace(1, 1, 0, 0)], "{name}");
        let got = observe_at(1021, "v6", &[5]).await;
        assert_eq!(got.1, [pace(2, 2, 0, 0)], "{name}");
        let got = observe_at(1023, "v7", &[6]).await;
        assert_eq!(got.1, [pace(1, 1, 0, 2)], "{name}");
        // The oldest minute of "before" is eleven minutes back: 1020 at 1031, not at 1032.
        let got = observe_at(1031, "v8", &[5]).await;
        assert_eq!(got.1, [pace(1, 1, 2, 3)], "{name}");
        let got = observe_at(1032, "v9", &[5]).await;
        assert_eq!(got.1, [pace(2, 2, 1, 2)], "{name}");
    }
}

/// The pace of candidates 1, 2 and 3 as a ballot for all three reads it at `minute`.
async fn read_pace(counters: &dyn Counters, prefix: &str, minute: i64) -> Vec<Pace> {
    counters
        .observe(&Observation {
            sets: &[],
            member: "v",
            pace: Some(PaceProbe {
                prefix: prefix.into(),
                minute,
                candidates: &[1, 2, 3],
            }),
        })
        .await
        .unwrap()
        .pace
}

/// Three hundred batches count their votes at once, in two minutes, while ballots read the
/// pace at those minutes (some rebuilding the sums for the later one): then a ballot reads
/// exactly what they counted, from the sums and (at the next minute) from the buckets added
/// up afresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_batches_count_the_pace_exactly() {
    for counters in stores() {
        let name = counters.backend();
        let c = counters.as_ref();
        // The sums are of minute 2000 from here on.
        assert_eq!(
            read_pace(c, "{c8}~pace", 2000).await,
            vec![pace(1, 3, 0, 0); 3],
            "{name}"
        );
        let tasks: Vec<_> = (0..400i64)
            .map(|i| {
                let c = counters.clone();
                tokio::spawn(async move {
                    if i % 4 == 3 {
                        // A reader, at this minute or the next.
                        read_pace(c.as_ref(), "{c8}~pace", 2000 + i % 8 / 4).await;
                        return;
                    }
                    // A batch: one vote for candidate n mod 3 + 1, in minute 2000 or 1999.
                    let n = i - i / 4;
                    let votes = PaceVotes::from([(2000 - n % 2, [(n % 3 + 1, 1)].into())]);
                    c.count_pace("{c8}~pace", &votes).await.unwrap()
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        // Both minutes are recent at 2000: 100 votes each, 300 in all, and the reader's own.
        assert_eq!(
            read_pace(c, "{c8}~pace", 2000).await,
            vec![pace(101, 303, 0, 0); 3],
            "{name}"
        );
        // At 2001, minute 1999 is "before": 50 votes each of its 150, 50 of 150 recent.
        assert_eq!(
            read_pace(c, "{c8}~pace", 2001).await,
            vec![pace(51, 153, 50, 150); 3],
            "{name}"
        );
    }
}

/// A batch's minutes against the sums' windows: the oldest minute of "before" (eleven back)
/// is in them, twelve back is not, and a minute after the sums' waits for its own ballots;
/// the sums and the buckets added up afresh say the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_counts_only_the_minutes_inside_the_windows() {
    for counters in stores() {
        let name = counters.backend();
        let c = counters.as_ref();
        read_pace(c, "{c10}~pace", 2000).await;
        let votes = PaceVotes::from([
            (2001, [(2, 3)].into()),
            (2000, [(1, 2)].into()),
            (1999, [(2, 1)].into()),
            (1989, [(1, 7)].into()),
            (1988, [(1, 5)].into()),
        ]);
        c.count_pace("{c10}~pace", &votes).await.unwrap();
        let at_2000 = vec![pace(3, 6, 7, 7), pace(2, 6, 0, 7), pace(1, 6, 0, 7)];
        assert_eq!(read_pace(c, "{c10}~pace", 2000).await, at_2000, "{name}");
        let at_2001 = vec![pace(3, 8, 0, 1), pace(4, 8, 1, 1), pace(1, 8, 0, 1)];
        assert_eq!(read_pace(c, "{c10}~pace", 2001).await, at_2001, "{name}");
        // A clock a minute behind, now that the sums are of 2001: from its own buckets.
        assert_eq!(read_pace(c, "{c10}~pace", 2000).await, at_2000, "{name}");
    }
}

/// The sums of a campaign with thousands of candidates voted for in the windows are rebuilt
/// whole (they are written in parts: one command could not take them all).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pace_of_five_thousand_candidates_is_rebuilt_whole() {
    for counters in stores() {
        let name = counters.backend();
        let c = counters.as_ref();
        let votes = PaceVotes::from([(5000, (1..=5000).map(|id| (id, 1)).collect())]);
        c.count_pace("{c11}~pace", &votes).await.unwrap();
        assert_eq!(
            read_pace(c, "{c11}~pace", 5001).await,
            vec![pace(2, 5003, 0, 0); 3],
            "{name}"
        );
    }
}

/// One ballot of `voter` for candidate 3 of campaign 7 in one step: signals, quotas (two
/// votes a day), and the voter's shared limit of `limit` a minute, kept in its day, if any.
async fn take_ballot(counters: &dyn Counters, voter: &str, limit: Option<&str>) -> BallotOutcome {
    let sets = [("{c7}~dev:d".to_string(), Duration::from_secs(600))];
    let o = Observation {
        sets: &sets,
        member: voter,
        pace: Some(PaceProbe {
            prefix: "{c7}~pace".into(),
            minute: 500,
            candidates: &[3],
        }),
    };
    let q = quota_of(voter);
    let step = BallotStep {
        limits: limit
            .map(|spec| voter_limit(voter, spec))
            .into_iter()
            .collect(),
        observation: Some(&o),
        quota: &q,
    };
    counters.take_ballot(&step).await.unwrap()
}

/// The quotas of `voter`'s ballot for candidate 3 of campaign 7 on 2026-05-01: two votes a
/// day.
fn quota_of(voter: &str) -> QuotaRequest<'_> {
    QuotaRequest {
        campaign_id: 7,
        voter,
        day: chrono::NaiveDate::from_ymd_opt(2026, 5, 1).unwrap(),
        candidates: &[3],
        votes_per_day: 2,
        votes_per_candidate_per_day: 5,
        votes_per_campaign: None,
    }
}

/// `voter`'s ballot limit of `spec` in campaign 7, kept in its day of 2026-05-01.
fn voter_limit(voter: &str, spec: &str) -> Throttle {
    Throttle {
        key: format!("{{c7}}:day:2026-05-01:{voter}"),
        field: Some(DAY_LIMIT_FIELD),
        spec: RateSpec::parse(spec).unwrap().unwrap(),
    }
}

fn done(outcome: BallotOutcome) -> (Observed, QuotaOutcome) {
    match outcome {
        BallotOutcome::Done(observed, quota) => (observed, quota),
        other => panic!("not done: {other:?}"),
    }
}

/// Signals and quotas in one step answer as the two steps do: the signals are recorded even
/// when the quota is refused or not yet built.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ballot_in_one_step_is_its_signals_then_its_quotas() {
    for counters in stores() {
        let c = counters.as_ref();
        let name = c.backend();
        let (seen, outcome) = done(take_ballot(c, "a", None).await);
        assert_eq!(outcome, QuotaOutcome::NotReady, "{name}");
        assert_eq!(seen.sizes, [1], "{name}");
        c.rebuild(7, &Rebuild::default(), false).await.unwrap();
        let (seen, outcome) = done(take_ballot(c, "b", None).await);
        assert_eq!(
            outcome,
            QuotaOutcome::Taken { remaining_today: 1 },
            "{name}"
        );
        // The pace counts committed ballots only, and the ballot itself: none is committed.
        assert_eq!((seen.sizes, seen.pace), (vec![2], vec![pace(1, 1, 0, 0)]));
        // Two committed (as a batch's commit counts them): the next ballot sees them.
        let committed = PaceVotes::from([(500, [(3, 2)].into())]);
        c.count_pace("{c7}~pace", &committed).await.unwrap();
        take_ballot(c, "b", None).await;
        let (seen, outcome) = done(take_ballot(c, "b", None).await);
        assert_eq!(outcome, QuotaOutcome::DailyExhausted, "{name}");
        assert_eq!(seen.pace, [pace(3, 3, 0, 0)], "{name}");
    }
}

/// In Redis the voter's shared limit comes first in the step: a ballot it refuses leaves no
/// trace, neither in the signals nor in the quotas. (The memory store has no shared limit:
/// one instance, whose own limiter is the only one.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ballot_over_the_shared_limit_leaves_no_trace() {
    let c = RedisCounters::new(&redis_url(), &unique("t")).unwrap();
    c.rebuild(7, &Rebuild::default(), false).await.unwrap();
    let (seen, outcome) = done(take_ballot(&c, "v", Some("1/min")).await);
    assert_eq!(outcome, QuotaOutcome::Taken { remaining_today: 1 });
    assert_eq!(seen.sizes, [1]);
    match take_ballot(&c, "v", Some("1/min")).await {
        BallotOutcome::Throttled(wait) => {
            assert!(wait > Duration::from_secs(50) && wait <= Duration::from_secs(60));
        }
        other => panic!("not throttled: {other:?}"),
    }
    // Without the limit, another voter's ballot finds one vote taken and two voters on the
    // device (the throttled ballot added none); nothing is committed, so the pace is its own.
    let (seen, outcome) = done(take_ballot(&c, "w", None).await);
    assert_eq!((seen.sizes, seen.pace), (vec![2], vec![pace(1, 1, 0, 0)]));
    assert_eq!(outcome, QuotaOutcome::Taken { remaining_today: 1 });
    let (_, outcome) = done(take_ballot(&c, "v", None).await);
    assert_eq!(outcome, QuotaOutcome::Taken { remaining_today: 0 });
}

/// Redis counters under a fresh prefix with campaign 7 built, the prefix, and a connection
/// to look at what they leave.
async fn campaign_7_in_redis() -> (RedisCounters, String, redis::aio::MultiplexedConnection) {
    let prefix = unique("t");
    let c = RedisCounters::new(&redis_url(), &prefix).unwrap();
    c.rebuild(7, &Rebuild::default(), false).await.unwrap();
    let client = redis::Client::open(redis_url()).unwrap();
    let conn = client.get_multiplexed_async_connection().await.unwrap();
    (c, prefix, conn)
}

/// What the ballot step leaves in Redis: the voter's day hash holds the day's total, each
/// candidate's votes and the voter limit's theoretical arrival time (written at once from
/// what the step read), with the expiry the day's first ballot gave it; no key of the
/// limit's own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ballot_step_leaves_its_quotas_and_its_limit_in_redis() {
    use redis::AsyncCommands;
    let (c, prefix, mut conn) = campaign_7_in_redis().await;
    let day = format!("{prefix}:{{c7}}:day:2026-05-01:v");
    let mut tats = Vec::new();
    for expected in ["1", "2"] {
        done(take_ballot(&c, "v", Some("2/min")).await);
        let mut fields: std::collections::HashMap<String, String> =
            conn.hgetall(&day).await.unwrap();
        let tat: i64 = fields.remove("~rl").unwrap().parse().unwrap();
        let want = [("_", expected), ("3", expected)];
        let want = want.map(|(f, n)| (f.to_string(), n.to_string())).into();
        assert_eq!(fields, want);
        let ttl: i64 = conn.ttl(&day).await.unwrap();
        assert!(
            ttl > 2 * 24 * 3600 - 60 && ttl <= 2 * 24 * 3600,
            "day ttl {ttl}"
        );
        tats.push(tat);
    }
    // Two a minute: each ballot moves the TAT by 30 s.
    assert_eq!(tats[1] - tats[0], 30_000);
    let own: bool = conn
        .exists(format!("{prefix}:{{c7}}~rl:voter:v"))
        .await
        .unwrap();
    assert!(!own, "the limit has no key of its own");
    assert!(matches!(
        take_ballot(&c, "v", Some("2/min")).await,
        BallotOutcome::Throttled(_)
    ));
    let total: i64 = conn.get(format!("{prefix}:{{c7}}:total:v")).await.unwrap();
    assert_eq!(total, 2, "the throttled ballot took nothing");
    let tat: i64 = conn.hget(&day, "~rl").await.unwrap();
    assert_eq!(tat, tats[1], "nor moved the limit");
    // A day given back whole: its next ballot is the day's first again and gives the hash
    // its expiry anew (taken away here to see it come back).
    let q = quota_of("v");
    c.give_back(&q).await.unwrap();
    c.give_back(&q).await.unwrap();
    let _: bool = conn.persist(&day).await.unwrap();
    done(take_ballot(&c, "v", None).await);
    let fields: std::collections::HashMap<String, String> = conn.hgetall(&day).await.unwrap();
    assert_eq!((fields["_"].as_str(), fields["3"].as_str()), ("1", "1"));
    let ttl: i64 = conn.ttl(&day).await.unwrap();
    assert!(ttl > 2 * 24 * 3600 - 60, "day ttl {ttl}");
}

/// A voter's limit kept in its day is one limit, whether checked alone (a ballot refused
/// before its step) or in the step, and a ballot the quotas refuse still spends a request
/// of it (as a limit with a key of its own did). Checked alone, it makes the day with its
/// expiry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_voters_limit_kept_in_its_day_counts_every_request_once() {
    use redis::AsyncCommands;
    let (c, prefix, mut conn) = campaign_7_in_redis().await;
    let day = format!("{prefix}:{{c7}}:day:2026-05-01:w");
    let limit = voter_limit("w", "4/min");
    // Alone: the day is made, holding the limit only, with its expiry.
    assert_eq!(c.throttle(&limit).await.unwrap(), None);
    let fields: Vec<String> = conn.hkeys(&day).await.unwrap();
    assert_eq!(fields, ["~rl"]);
    let ttl: i64 = conn.ttl(&day).await.unwrap();
    assert!(ttl > 2 * 24 * 3600 - 60, "day ttl {ttl}");
    // Two ballots taken (two a day), a third refused by the quota: four requests in all.
    for want in [
        QuotaOutcome::Taken { remaining_today: 1 },
        QuotaOutcome::Taken { remaining_today: 0 },
        QuotaOutcome::DailyExhausted,
    ] {
        let (_, outcome) = done(take_ballot(&c, "w", Some("4/min")).await);
        assert_eq!(outcome, want);
    }
    let tat: i64 = conn.hget(&day, "~rl").await.unwrap();
    // The fifth, in the step or alone, waits: about 15 s (4 a minute) for one more.
    let BallotOutcome::Throttled(wait) = take_ballot(&c, "w", Some("4/min")).await else {
        panic!("the fifth request in a minute is throttled");
    };
    assert!(
        wait > Duration::from_secs(5) && wait <= Duration::from_secs(15),
        "{wait:?}"
    );
    assert!(c.throttle(&limit).await.unwrap().is_some());
    let after: i64 = conn.hget(&day, "~rl").await.unwrap();
    assert_eq!(after, tat, "a refused request moves nothing");
    // The memory store leaves shared limits to the service's own limiter.
    let memory = MemoryCounters::default();
    assert_eq!(memory.throttle(&limit).await.unwrap(), None);
}

/// A day made by a ballot step whose quotas are refused (here: not rebuilt yet) holds the
/// voter's limit only, with the day's expiry; giving back quotas to such a day (a ledger
/// write that failed after Redis lost the day) changes nothing, where it once made negative
/// counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_holding_only_the_limit_has_an_expiry_and_nothing_to_give_back() {
    use redis::AsyncCommands;
    let prefix = unique("t");
    let c = RedisCounters::new(&redis_url(), &prefix).unwrap();
    let client = redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let day = format!("{prefix}:{{c7}}:day:2026-05-01:x");
    let (_, outcome) = done(take_ballot(&c, "x", Some("4/min")).await);
    assert_eq!(outcome, QuotaOutcome::NotReady);
    let fields: Vec<String> = conn.hkeys(&day).await.unwrap();
    assert_eq!(fields, ["~rl"]);
    let ttl: i64 = conn.ttl(&day).await.unwrap();
    assert!(ttl > 2 * 24 * 3600 - 60, "day ttl {ttl}");
    let q = quota_of("x");
    c.give_back(&q).await.unwrap();
    let fields: Vec<String> = conn.hkeys(&day).await.unwrap();
    assert_eq!(
        fields,
        ["~rl"],
        "nothing given back to a day with no quotas"
    );
}

/// A ballot's step reads its candidates' pace from the instance's copy of the sums (see
/// pace_copy.rs): the instance's own batches keep the copy exact for their candidates, and
/// another instance's votes reach it once its whole read back is older than `FRESH`
/// (250 ms), when the ballot reads in Redis again. The exact read (the risk step alone) sees
/// every count at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ballot_reads_the_pace_from_the_instance_copy_within_its_freshness() {
    let prefix = unique("t");
    let a = RedisCounters::new(&redis_url(), &prefix).unwrap();
    let b = RedisCounters::new(&redis_url(), &prefix).unwrap();
    a.rebuild(7, &Rebuild::default(), false).await.unwrap();
    let votes = |n: u64| PaceVotes::from([(500, [(3, n)].into())]);
    let pace_of_3 = |seen: Observed| seen.pace;
    // The minute's first ballot makes the sums in Redis; a's batch counts it and reads them
    // back whole.
    let (seen, _) = done(take_ballot(&a, "v1", None).await);
    assert_eq!(pace_of_3(seen), [pace(1, 1, 0, 0)]);
    let copied = std::time::Instant::now();
    a.count_pace("{c7}~pace", &votes(1)).await.unwrap();
    // Another instance counts two votes: Redis has them at once, a's copy not yet.
    b.count_pace("{c7}~pace", &votes(2)).await.unwrap();
    assert_eq!(read_pace(&a, "{c7}~pace", 500).await[2], pace(4, 6, 0, 0));
    let (seen, _) = done(take_ballot(&a, "v2", None).await);
    if copied.elapsed() < Duration::from_millis(200) {
        assert_eq!(pace_of_3(seen), [pace(2, 2, 0, 0)], "from a's copy");
    } else {
        // A machine so slow that the copy grew old in between: read in Redis.
        assert_eq!(pace_of_3(seen), [pace(4, 4, 0, 0)], "from Redis");
    }
    // a's own batch: its candidate's fields and the totals come back with it.
    a.count_pace("{c7}~pace", &votes(1)).await.unwrap();
    let (seen, _) = done(take_ballot(&a, "v3", None).await);
    assert_eq!(pace_of_3(seen), [pace(5, 5, 0, 0)]);
    // Past the copy's freshness, b's next vote is read in Redis.
    b.count_pace("{c7}~pace", &votes(1)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (seen, _) = done(take_ballot(&a, "v4", None).await);
    assert_eq!(pace_of_3(seen), [pace(6, 6, 0, 0)]);
}
