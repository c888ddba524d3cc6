//! What a ballot's step in Redis costs Redis, with and without the checks.
//!
//!     cargo bench --bench counter_step
//!
//! Runs the counter store's ballot step (`Counters::take_ballot`, as the vote path calls it)
//! against the local Redis for 3,000 voters casting ten single-candidate ballots each, as the
//! fraud simulation's cost part does, over 32 concurrent tasks, in three ways: the quotas
//! alone (the checks off), the quotas and the two shared rate limits, and all of the checks
//! (limits, the device, address and network sets, the candidate's pace). Redis's own
//! accounting (`INFO commandstats`, reset before each way) gives the microseconds of Redis
//! work per ballot: the script as a whole, and the commands it ran; `INFO cpu` its CPU per
//! ballot in all (the script, and reading and answering the command). Unlike the throughput of
//! the whole service, these barely move with the machine's other load. The statistics are
//! the server's, so nothing else should use that Redis meanwhile (no tests, no other bench).

use std::sync::Arc;
use std::time::{Duration, Instant};

use minyi::counters::{
    BallotOutcome, BallotStep, Counters, DAY_LIMIT_FIELD, Observation, PaceProbe, PaceVotes,
    QuotaOutcome, QuotaRequest, Rebuild, RedisCounters, Throttle, day_key, pace_prefix,
};
use minyi::domain::rate::RateSpec;

const VOTERS: usize = 3_000;
const BALLOTS_EACH: usize = 10;
const TASKS: usize = 32;
const CAMPAIGN: i64 = 1;
/// Ballots a committed batch holds, for the pace's count.
const BATCH: usize = 40;

#[derive(Clone, Copy, PartialEq)]
enum Checks {
    None,
    Limits,
    All,
}

/// The Redis commands' calls and microseconds, by command.
fn commandstats(conn: &mut redis::Connection) -> Vec<(String, u64, u64)> {
    let info: String = redis::cmd("INFO").arg("commandstats").query(conn).unwrap();
    info.lines()
        .filter_map(|l| {
            let (name, rest) = l.strip_prefix("cmdstat_")?.split_once(':')?;
            let field = |f: &str| -> Option<u64> {
                rest.split(',')
                    .find_map(|kv| kv.strip_prefix(f)?.strip_prefix('='))?
                    .parse()
                    .ok()
            };
            Some((name.to_string(), field("calls")?, field("usec")?))
        })
        .collect()
}

/// Redis's CPU seconds so far (user and system, all its threads), by its own account.
fn redis_cpu(conn: &mut redis::Connection) -> f64 {
    let info: String = redis::cmd("INFO").arg("cpu").query(conn).unwrap();
    info.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            ["used_cpu_sys", "used_cpu_user"]
                .contains(&k)
                .then(|| v.trim().parse::<f64>().ok())?
        })
        .sum()
}

/// This process's CPU seconds so far (user and system).
fn own_cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat[stat.rfind(')').map_or(0, |i| i + 2)..]
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// Ballot `n`: voter `n mod VOTERS` for candidate `n div VOTERS`, never over a quota.
async fn ballot(counters: &RedisCounters, checks: Checks, n: usize, minute: i64) {
    let voter = format!("voter-{}", n % VOTERS);
    let candidates = [(n / VOTERS) as i64 + 1];
    let quota = QuotaRequest {
        campaign_id: CAMPAIGN,
        voter: &voter,
        day: chrono::NaiveDate::from_ymd_opt(2026, 12, 5).unwrap(),
        candidates: &candidates,
        votes_per_day: 10,
        votes_per_candidate_per_day: 1,
        votes_per_campaign: None,
    };
    let tag = format!("{{c{CAMPAIGN}}}");
    let limits = match checks {
        Checks::None => Vec::new(),
        _ => {
            let spec = RateSpec::parse("100/min").unwrap().unwrap();
            vec![
                Throttle {
                    key: format!("{tag}~rl:ip:{}", n % VOTERS),
                    field: None,
                    spec,
                },
                // As the vote path keeps it: in the voter's day, with the quotas.
                Throttle {
                    key: day_key(&quota),
                    field: Some(DAY_LIMIT_FIELD),
                    spec,
                },
            ]
        }
    };
    // Each voter on a device, an address and a network of its own, as in the simulation.
    let sets: Vec<(String, Duration)> = ["dev", "ip", "net"]
        .iter()
        .map(|kind| {
            (
                format!("{tag}~{kind}:{:032x}", (n % VOTERS) * 7919 + kind.len()),
                Duration::from_secs(600),
            )
        })
        .collect();
    let observation = Observation {
        sets: &sets,
        member: &voter,
        pace: Some(PaceProbe {
            prefix: pace_prefix(CAMPAIGN),
            minute,
            candidates: &candidates,
        }),
    };
    let step = BallotStep {
        limits,
        observation: (checks == Checks::All).then_some(&observation),
        quota: &quota,
    };
    match counters.take_ballot(&step).await.unwrap() {
        BallotOutcome::Done(_, QuotaOutcome::Taken { .. }) => {}
        other => panic!("ballot {n} not taken: {other:?}"),
    }
}

/// Runs every ballot one way; prints Redis's microseconds per ballot.
async fn run(checks: Checks, name: &str, conn: &mut redis::Connection) -> f64 {
    let prefix = format!("counter-step-{}-{name}", std::process::id());
    let counters = Arc::new(RedisCounters::new("redis://127.0.0.1:6379", &prefix).unwrap());
    counters
        .rebuild(CAMPAIGN, &Rebuild::default(), false)
        .await
        .unwrap();
    let minute = chrono::Utc::now().timestamp().div_euclid(60);
    let _: () = redis::cmd("CONFIG").arg("RESETSTAT").query(conn).unwrap();
    let started = Instant::now();
    let cpu = own_cpu();
    let redis_before = redis_cpu(conn);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let (counters, next) = (counters.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if n >= VOTERS * BALLOTS_EACH {
                        break;
                    }
                    ballot(&counters, checks, n, minute).await;
                    // The pace is counted once a committed batch (some 40 ballots here).
                    if checks == Checks::All && n % BATCH == BATCH - 1 {
                        let votes = PaceVotes::from([(
                            minute,
                            [((n / VOTERS) as i64 + 1, BATCH as u64)].into(),
                        )]);
                        counters
                            .count_pace(&pace_prefix(CAMPAIGN), &votes)
                            .await
                            .unwrap();
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = started.elapsed();
    let client_us = (own_cpu() - cpu) * 1e6;
    let redis_us = (redis_cpu(conn) - redis_before) * 1e6;
    let stats = commandstats(conn);
    let ballots = (VOTERS * BALLOTS_EACH) as f64;
    let script = stats
        .iter()
        .filter(|(c, ..)| c == "evalsha" || c == "eval")
        .map(|(_, _, usec)| *usec)
        .sum::<u64>() as f64;
    let mut inner: Vec<_> = stats
        .iter()
        .filter(|(c, ..)| {
            !["evalsha", "eval", "config|resetstat", "script|load"].contains(&c.as_str())
        })
        .collect();
    inner.sort_by_key(|(_, _, usec)| std::cmp::Reverse(*usec));
    let commands: u64 = inner.iter().map(|(_, calls, _)| calls).sum();
    let commands_usec: u64 = inner.iter().map(|(_, _, usec)| usec).sum();
    println!(
        "{name:<28} script {:>5.1} µs a ballot, of which its {:>4.1} commands {:>5.1} µs; Redis CPU {:>5.1} µs; client CPU {:>5.1} µs   ({:.0} ballots/s)",
        script / ballots,
        commands as f64 / ballots,
        commands_usec as f64 / ballots,
        redis_us / ballots,
        client_us / ballots,
        ballots / elapsed.as_secs_f64()
    );
    println!(
        "{:<28} {}",
        "",
        inner
            .iter()
            .map(|(c, calls, usec)| format!(
                "{c} {:.1}×{:.2}",
                *calls as f64 / ballots,
                *usec as f64 / (*calls).max(1) as f64
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    // This run's keys go: the next way starts on the same Redis as this one did.
    let mut cursor = 0u64;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}:*"))
            .arg("COUNT")
            .arg(1000)
            .query(conn)
            .unwrap();
        if !keys.is_empty() {
            let _: () = redis::cmd("DEL").arg(&keys).query(conn).unwrap();
        }
        if next == 0 {
            break;
        }
        cursor = next;
    }
    script / ballots
}

#[tokio::main]
async fn main() {
    let client = redis::Client::open("redis://127.0.0.1:6379").expect("redis url");
    let mut conn = client.get_connection().expect("Redis on 127.0.0.1:6379");
    println!(
        "{VOTERS} voters × {BALLOTS_EACH} ballots of one candidate, {TASKS} at once; Redis µs per ballot (INFO commandstats)"
    );
    let mut rounds = Vec::new();
    // Twice each, alternately, so that a drift of the machine weighs on all alike.
    for _ in 0..2 {
        rounds.push((
            run(Checks::None, "quotas (checks off)", &mut conn).await,
            run(Checks::Limits, "quotas + rate limits", &mut conn).await,
            run(Checks::All, "all checks", &mut conn).await,
        ));
    }
    let mean = |f: fn(&(f64, f64, f64)) -> f64| rounds.iter().map(f).sum::<f64>() / 2.0;
    let (off, limits, all) = (mean(|r| r.0), mean(|r| r.1), mean(|r| r.2));
    println!(
        "mean: checks off {off:.1} µs, + rate limits {limits:.1} µs (+{:.1}), all checks {all:.1} µs (+{:.1} over off)",
        limits - off,
        all - off
    );
}
