//! Casting a ballot. The order is what makes counts exact and nothing acknowledged lost:
//!
//! 1. check the ballot and the voting window against the cached campaign; replay the first
//!    answer for a repeated `Idempotency-Key`;
//! 2. check the proof of work (when the campaign asks for one) and gather the risk signals
//!    that flag the ballot (a flagged ballot needs a harder proof); take every quota of the
//!    ballot in one atomic step in the counter store (all or none). Without a proof to
//!    check, the shared rate limits (address, voter), the signals and the quotas are one step;
//! 3. record the ballot and its audit entry in one ledger transaction with the others that
//!    arrived with it; the ledger checks the window and the candidates again, exactly;
//! 4. only then count it live (once per batch) and answer 201. If the ledger refuses or
//!    fails, the quotas are given back and the citizen gets the refusal or 503 — never a 201
//!    for a ballot that is not on the record. A ballot that pushed a signal over its limit
//!    then has the cluster's earlier ballots held too (under the `quarantine` policy).

use std::time::Duration;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::{Services, recount, review};
use crate::counters::{
    BallotOutcome, BallotStep, CounterError, Observation, Observed, PaceProbe, QuotaOutcome,
    QuotaRequest, Throttle, idempotency_key, pace_minute, pace_prefix, voter_day_key,
};
use crate::domain::ballot::{self, BallotError};
use crate::domain::campaign::{CurrentPhase, FraudPolicy, Kind, current_phase};
use crate::domain::keyed::VoterId;
use crate::domain::review::ClusterBy;
use crate::domain::{pow, risk};
use crate::store::{Ballot, BallotRefusal, Campaign, NewBallot, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum VoteError {
    #[error("no such campaign")]
    NotFound,
    #[error("outside the voting window")]
    VotingClosed,
    #[error("invalid ballot: {0}")]
    Invalid(String),
    #[error("daily quota exhausted")]
    DailyExhausted { resets_at: DateTime<Utc> },
    #[error("candidate daily limit")]
    CandidateLimit {
        candidate_id: i64,
        resets_at: DateTime<Utc>,
    },
    #[error("campaign quota exhausted")]
    CampaignExhausted,
    #[error("a proof of work is required")]
    ChallengeRequired(pow::Challenge),
    #[error("voter or network blocked in this campaign")]
    VoterBlocked,
    #[error("rate limited")]
    RateLimited(Duration),
    #[error("idempotency key reused with another ballot")]
    KeyReused,
    #[error("a request with this idempotency key is still in progress")]
    InProgress,
    #[error(transparent)]
    Counters(#[from] CounterError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct Cast<'a> {
    pub voter: &'a VoterId,
    pub campaign_id: i64,
    pub candidate_ids: &'a [String],
    pub idempotency_key: Option<&'a str>,
    /// The mini-program's device id (`X-Device-Id`), if it sent one; kept only as a keyed hash.
    pub device: Option<&'a str>,
    /// The proof of work, when the campaign asks for one: (challenge, nonce).
    pub proof: Option<(&'a str, &'a str)>,
    /// The client's address as the door saw it (for blocked networks and risk signals).
    pub ip: Option<std::net::IpAddr>,
    /// When the voter first logged in, if the token says.
    pub first_seen: Option<DateTime<Utc>>,
    pub now: DateTime<Utc>,
}

/// What the citizen is told: the recorded ballot, and whether this answer is a replay.
pub struct Cast201 {
    pub ballot: Ballot,
    pub replayed: bool,
}

fn request_hash(ids: &[i64]) -> String {
    let text: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
    hex::encode(Sha256::digest(text.join(",").as_bytes()))
}

#[tracing::instrument(skip_all, fields(campaign_id = cast.campaign_id, voter_id = %cast.voter))]
pub async fn cast_ballot(services: &Services, cast: Cast<'_>) -> Result<Cast201, VoteError> {
    let (campaign_id, voter) = (cast.campaign_id, cast.voter);
    if let Some(wait) = services.limits.check_voter_here(campaign_id, voter) {
        return Err(VoteError::RateLimited(wait));
    }
    // The shared limits (with Redis) are checked with the ballot's signals and quotas, in
    // one round trip, when the ballot gets that far; a ballot answered before then has them
    // checked alone first. Nothing before that step leaves a trace, so the answer is the one
    // a check made at the start would give.
    let mut limits = services
        .limits
        .ballot_throttles(campaign_id, cast.ip, voter);
    let outcome = cast_within_limit(services, &cast, &mut limits).await;
    if let Some(wait) = services.limits.check_shared(&limits).await {
        return Err(VoteError::RateLimited(wait));
    }
    outcome
}

/// `cast_ballot` once the voter is within its limit in process; `limits` are the shared
/// limits, taken (emptied) by whichever step checks them.
async fn cast_within_limit(
    services: &Services,
    cast: &Cast<'_>,
    limits: &mut Vec<Throttle>,
) -> Result<Cast201, VoteError> {
    let view = match services
        .campaigns
        .get(&services.store, cast.campaign_id)
        .await
    {
        Ok(v) if !v.campaign.is_draft && v.campaign.kind == Kind::Selection => v,
        Ok(_) | Err(StoreError::NotFound) => return Err(VoteError::NotFound),
        Err(e) => return Err(e.into()),
    };
    let campaign = &view.campaign;
    let day = ballot::quota_day(cast.now, ballot::zone(&campaign.timezone));
    services.limits.keep_voter_limit_in_day(
        limits,
        campaign.id,
        cast.voter,
        voter_day_key(campaign.id, day, cast.voter.as_str()),
    );
    if view.blocks(cast.voter.as_str(), cast.ip) {
        return Err(VoteError::VoterBlocked);
    }
    if current_phase(false, &campaign.phases, cast.now) != CurrentPhase::Voting {
        return Err(VoteError::VotingClosed);
    }
    let ids = ballot::parse_candidates(cast.candidate_ids, &campaign.rules)
        .map_err(|e: BallotError| VoteError::Invalid(e.message()))?;
    if !ids.iter().all(|id| view.approved.contains(id)) {
        return Err(not_approved());
    }
    let hash = request_hash(&ids);
    let voter = cast.voter.as_str();
    let Some(key) = cast.idempotency_key else {
        return record(services, campaign, cast, &ids, None, hash, limits).await;
    };
    // One request per key at a time, on every instance: the others wait for its answer and
    // give it again, so racing repeats count nothing more and all see the first answer.
    let claim = idempotency_key(campaign.id, voter, key);
    let deadline = tokio::time::Instant::now() + CLAIM_WAIT;
    loop {
        if let Some(first) = services
            .store
            .ballot_by_key(campaign.id, voter, key)
            .await?
        {
            return replay(first, &hash);
        }
        if services.counters.claim(&claim, CLAIM_TTL).await? {
            break;
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(VoteError::InProgress);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let outcome = record(services, campaign, cast, &ids, Some(key), hash, limits).await;
    if let Err(e) = services.counters.release(&claim).await {
        tracing::warn!(error = %e, "idempotency claim not released; it expires by itself");
    }
    outcome
}

/// How long a request holds its key, at most (a crashed holder's claim expires).
const CLAIM_TTL: Duration = Duration::from_secs(10);
/// How long a repeat waits for the first request's answer before answering 409.
const CLAIM_WAIT: Duration = Duration::from_secs(5);

/// A fresh challenge for the voter, at the campaign's difficulty.
pub fn challenge(
    services: &Services,
    campaign: &Campaign,
    voter: &VoterId,
    now: DateTime<Utc>,
) -> pow::Challenge {
    challenge_at(
        services,
        campaign,
        voter,
        campaign.rules.challenge_bits,
        now,
    )
}

fn challenge_at(
    services: &Services,
    campaign: &Campaign,
    voter: &VoterId,
    bits: u8,
    now: DateTime<Utc>,
) -> pow::Challenge {
    let mut random = [0u8; 16];
    rand::fill(&mut random);
    pow::issue(
        &services.key,
        campaign.id,
        voter.as_str(),
        bits,
        now,
        random,
    )
}

/// When the campaign asks for a proof of work: the ballot's proof must hold and be unspent
/// (each challenge answers one ballot). Otherwise the answer carries a fresh challenge.
/// Returns the bits the proof was worth (0 when none is asked).
async fn check_proof(
    services: &Services,
    campaign: &Campaign,
    voter: &VoterId,
    proof: Option<(&str, &str)>,
    now: DateTime<Utc>,
) -> Result<u8, VoteError> {
    let bits = campaign.rules.challenge_bits;
    if bits == 0 {
        return Ok(0);
    }
    let fresh = || VoteError::ChallengeRequired(challenge(services, campaign, voter, now));
    let Some((text, nonce)) = proof else {
        return Err(fresh());
    };
    let worth = match pow::check(
        &services.key,
        campaign.id,
        voter.as_str(),
        bits,
        now,
        text,
        nonce,
    ) {
        Ok(worth) => worth,
        Err(e) => {
            tracing::info!(reason = ?e, "proof of work refused");
            return Err(fresh());
        }
    };
    // Outside the `{c<id>}:` keys a forced recount clears, so a spent proof stays spent.
    let spent = format!("{{c{}}}~pow:{text}", campaign.id);
    let ttl = Duration::from_secs(pow::LIFETIME_SECS as u64 + 60);
    if !services.counters.claim(&spent, ttl).await? {
        tracing::info!("proof of work already spent");
        return Err(fresh());
    }
    Ok(worth)
}

/// What the ballot's risk signals say, and the status the campaign's policy gives it.
struct Risk {
    flags: Vec<risk::Flag>,
    status: &'static str,
    device_hash: Option<String>,
    ip_hash: Option<String>,
    network_hash: Option<String>,
    /// Clusters this ballot pushed over a holding limit: (by, key, window, flag).
    crossed: Vec<(ClusterBy, String, u32, risk::Flag)>,
}

/// A ballot's risk signals before they are measured: the keyed hashes of its client, and the
/// sets it joins in the counter store.
struct Probe {
    device_hash: Option<String>,
    ip_hash: Option<String>,
    network_hash: Option<String>,
    /// What each set counts, its key for a cluster, its name and its window; none when the
    /// campaign gathers no signals.
    sets: Vec<(ClusterBy, String, String, Duration)>,
    named: Vec<(String, Duration)>,
    /// The prefix of the campaign's pace keys; `None` when the campaign gathers no signals.
    pace: Option<String>,
}

impl Probe {
    fn new(services: &Services, campaign: &Campaign, cast: &Cast<'_>, ids: &[i64]) -> Self {
        let keyed = |domain: &str, value: &str| {
            hex::encode(&services.key.mac(domain, value.as_bytes())[..16])
        };
        let device_hash = cast.device.map(|d| keyed("device-id", d));
        let ip_hash = cast.ip.map(|ip| keyed("client-ip", &ip.to_string()));
        let network_hash = cast.ip.map(|ip| {
            keyed(
                "client-net",
                &crate::domain::rate::network_of(ip).to_string(),
            )
        });
        let mut probe = Probe {
            device_hash,
            ip_hash,
            network_hash,
            sets: Vec::new(),
            named: Vec::new(),
            pace: None,
        };
        let t = &campaign.rules.risk;
        if !t.enabled {
            return probe;
        }
        let tag = format!("{{c{}}}", campaign.id);
        let window = Duration::from_secs(u64::from(t.window_secs));
        let burst = Duration::from_secs(u64::from(t.burst_secs));
        for (by, hash, name) in [
            (ClusterBy::Device, &probe.device_hash, "dev"),
            (ClusterBy::Ip, &probe.ip_hash, "ip"),
            (ClusterBy::Network, &probe.network_hash, "net"),
        ] {
            if let Some(h) = hash {
                probe
                    .sets
                    .push((by, h.clone(), format!("{tag}~{name}:{h}"), window));
            }
        }
        if ids.len() >= 2 {
            let same = crate::domain::review::ballot_key(ids);
            let name = format!("{tag}~same:{}", keyed("ballot-set", &same));
            probe.sets.push((ClusterBy::Ballot, same, name, burst));
        }
        probe.named = probe
            .sets
            .iter()
            .map(|(_, _, n, w)| (n.clone(), *w))
            .collect();
        probe.pace = Some(pace_prefix(campaign.id));
        probe
    }

    /// What the counter store records and measures for the ballot; `None` when the campaign
    /// gathers no signals.
    fn observation<'a>(&'a self, cast: &'a Cast<'_>, ids: &'a [i64]) -> Option<Observation<'a>> {
        let prefix = self.pace.clone()?;
        Some(Observation {
            sets: &self.named,
            member: cast.voter.as_str(),
            pace: Some(PaceProbe {
                prefix,
                minute: pace_minute(cast.now),
                candidates: ids,
            }),
        })
    }

    /// Flags the ballot from what the counter store measured.
    fn judge(self, campaign: &Campaign, cast: &Cast<'_>, observed: Observed) -> Risk {
        let t = &campaign.rules.risk;
        let mut signals = risk::Signals {
            account_age_secs: cast.first_seen.map(|f| (cast.now - f).num_seconds()),
            pace: observed.pace,
            ..risk::Signals::default()
        };
        for ((by, ..), n) in self.sets.iter().zip(&observed.sizes) {
            *match by {
                ClusterBy::Device => &mut signals.voters_on_device,
                ClusterBy::Ip => &mut signals.voters_on_ip,
                ClusterBy::Network => &mut signals.voters_on_network,
                ClusterBy::Ballot => &mut signals.voters_with_same_set,
            } = Some(*n);
        }
        let flags = risk::flags(&signals, t);
        if !flags.is_empty() {
            metrics::counter!("ballots_flagged_total").increment(1);
            tracing::info!(flags = ?flags, "ballot flagged");
        }
        let crossed = if campaign.rules.fraud_policy == FraudPolicy::Quarantine {
            risk::crossed(&signals, t)
                .into_iter()
                .filter_map(|flag| {
                    let by = match flag {
                        risk::Flag::SharedDevice => ClusterBy::Device,
                        risk::Flag::SharedIp => ClusterBy::Ip,
                        risk::Flag::SharedNetwork => ClusterBy::Network,
                        risk::Flag::IdenticalBurst => ClusterBy::Ballot,
                        _ => return None,
                    };
                    let (_, key, _, w) = self.sets.iter().find(|(b, ..)| *b == by)?;
                    Some((by, key.clone(), w.as_secs() as u32, flag))
                })
                .collect()
        } else {
            Vec::new()
        };
        Risk {
            status: risk::status(campaign.rules.fraud_policy, &flags, t),
            flags,
            device_hash: self.device_hash,
            ip_hash: self.ip_hash,
            network_hash: self.network_hash,
            crossed,
        }
    }
}

/// Gathers the ballot's signals and takes its quotas. When the campaign asks for no proof of
/// work, no flag can make the ballot need a harder one, so nothing refuses it between the two
/// and they are one step in the counter store with the shared `limits` (one round trip to
/// Redis). Otherwise (the limits were checked before the proof) a flagged ballot whose proof
/// is too easy is refused before any quota is taken.
async fn assess_and_take(
    services: &Services,
    campaign: &Campaign,
    cast: &Cast<'_>,
    ids: &[i64],
    proven: u8,
    quota: &QuotaRequest<'_>,
    limits: Vec<Throttle>,
) -> Result<(Risk, QuotaOutcome), VoteError> {
    let probe = Probe::new(services, campaign, cast, ids);
    let observation = probe.observation(cast, ids);
    if campaign.rules.challenge_bits == 0 {
        let step = BallotStep {
            limits,
            observation: observation.as_ref(),
            quota,
        };
        let started = std::time::Instant::now();
        let taken = services.counters.take_ballot(&step).await;
        metrics::histogram!("ballot_counters_duration_seconds")
            .record(started.elapsed().as_secs_f64());
        return match taken? {
            BallotOutcome::Throttled(wait) => Err(VoteError::RateLimited(wait)),
            BallotOutcome::Done(observed, outcome) => {
                Ok((probe.judge(campaign, cast, observed), outcome))
            }
        };
    }
    let observed = match &observation {
        Some(o) => services.counters.observe(o).await?,
        None => Observed::default(),
    };
    let risk = probe.judge(campaign, cast, observed);
    let needed = risk::required_bits(
        campaign.rules.challenge_bits,
        &risk.flags,
        &campaign.rules.risk,
    );
    if proven < needed {
        // Risky traffic pays more: a fresh challenge at the raised difficulty.
        tracing::info!(proven, needed, "a flagged ballot needs a harder proof");
        return Err(VoteError::ChallengeRequired(challenge_at(
            services, campaign, cast.voter, needed, cast.now,
        )));
    }
    Ok((risk, services.counters.take_quota(quota).await?))
}

fn not_approved() -> VoteError {
    VoteError::Invalid("所选候选人不存在或未通过审核".into())
}

/// Checks the proof of work and the risk signals, takes the quotas and records the ballot
/// (steps 2–4 above).
async fn record(
    services: &Services,
    campaign: &Campaign,
    cast: &Cast<'_>,
    ids: &[i64],
    key: Option<&str>,
    hash: String,
    limits: &mut Vec<Throttle>,
) -> Result<Cast201, VoteError> {
    // A proof is spent once checked, so the shared limits come before it.
    if campaign.rules.challenge_bits > 0
        && let Some(wait) = services.limits.check_shared(&std::mem::take(limits)).await
    {
        return Err(VoteError::RateLimited(wait));
    }
    // Only a ballot that is well formed and not a repeat spends its proof and counts in the
    // signals: a client retrying with its key gets the first answer, not a new challenge.
    let proven = check_proof(services, campaign, cast.voter, cast.proof, cast.now).await?;
    let (voter, now) = (cast.voter.as_str(), cast.now);
    let tz = ballot::zone(&campaign.timezone);
    let quota = QuotaRequest {
        campaign_id: campaign.id,
        voter,
        day: ballot::quota_day(now, tz),
        candidates: ids,
        votes_per_day: campaign.rules.votes_per_day,
        votes_per_candidate_per_day: campaign.rules.votes_per_candidate_per_day,
        votes_per_campaign: campaign.rules.votes_per_campaign,
    };
    let resets_at = ballot::resets_at(now, tz);
    let (risk, mut outcome) = assess_and_take(
        services,
        campaign,
        cast,
        ids,
        proven,
        &quota,
        std::mem::take(limits),
    )
    .await?;
    if outcome == QuotaOutcome::NotReady {
        recount::ensure_ready(services, campaign, now)
            .await
            .map_err(|e| match e {
                recount::RecountError::Counters(c) => VoteError::Counters(c),
                recount::RecountError::Store(s) => VoteError::Store(s),
            })?;
        outcome = services.counters.take_quota(&quota).await?;
    }
    let remaining_today = match outcome {
        QuotaOutcome::Taken { remaining_today } => remaining_today,
        QuotaOutcome::DailyExhausted => return Err(VoteError::DailyExhausted { resets_at }),
        QuotaOutcome::CandidateLimit(candidate_id) => {
            return Err(VoteError::CandidateLimit {
                candidate_id,
                resets_at,
            });
        }
        QuotaOutcome::CampaignExhausted => return Err(VoteError::CampaignExhausted),
        QuotaOutcome::NotReady => {
            return Err(VoteError::Counters(CounterError::Unavailable(
                "counters not rebuilt".into(),
            )));
        }
    };

    let new = NewBallot {
        campaign_id: campaign.id,
        voter_id: voter.to_string(),
        candidate_ids: ids.to_vec(),
        idempotency_key: key.map(str::to_string),
        request_hash: hash.clone(),
        remaining_today,
        cast_at: now,
        quota_day: quota.day,
        status: risk.status,
        flags: risk.flags.iter().map(|f| f.as_str()).collect(),
        device_hash: risk.device_hash,
        ip_hash: risk.ip_hash,
        network_hash: risk.network_hash,
        checked_version: Some(campaign.version),
    };
    let recorded = services
        .ballots
        .record(new, campaign.rules.risk.enabled)
        .await;
    let ballot = match recorded {
        Ok(b) => b,
        Err(e) => {
            // Not on the record: the quotas go back before anything is answered.
            if let Err(g) = services.counters.give_back(&quota).await {
                tracing::error!(error = %g, "could not give quotas back after a failed ledger write");
            }
            if let (StoreError::Conflict(_), Some(key)) = (&e, key)
                && let Some(first) = services
                    .store
                    .ballot_by_key(campaign.id, voter, key)
                    .await?
            {
                // A racing request with the same key won; answer as it was answered.
                return replay(first, &hash);
            }
            return Err(match e {
                StoreError::Refused(BallotRefusal::VotingClosed) => VoteError::VotingClosed,
                StoreError::Refused(BallotRefusal::NotApproved) => not_approved(),
                StoreError::Refused(BallotRefusal::VoterBlocked) => VoteError::VoterBlocked,
                e => {
                    tracing::error!(error = %e, "ballot not recorded; quotas given back");
                    e.into()
                }
            });
        }
    };
    tracing::info!(seq = ballot.seq, candidates = ids.len(), "ballot recorded");
    for (by, key, window, flag) in risk.crossed {
        review::hold_cluster(services, campaign.id, by, key, window, flag.as_str(), now).await;
    }
    Ok(Cast201 {
        ballot,
        replayed: false,
    })
}

fn replay(first: Ballot, hash: &str) -> Result<Cast201, VoteError> {
    if first.request_hash != hash {
        return Err(VoteError::KeyReused);
    }
    Ok(Cast201 {
        ballot: first,
        replayed: true,
    })
}
