//! Rating an evaluation target. Ratings are not a hot path (one per voter, target and
//! period): each is one ledger transaction that checks the window, the target, the period and
//! the day's limit exactly, writes the rating with its chain entry and, for an unsatisfied
//! rating with a comment, the opinion its unit must answer. Repeats with an
//! `Idempotency-Key` get the first answer, across instances (the ledger's unique index).

use std::time::Duration;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::Services;
use crate::domain::ballot;
use crate::domain::campaign::{CurrentPhase, Kind, current_phase};
use crate::domain::rating::{self, Level, RaterGroup};
use crate::store::{NewRating, Rating, RatingRefusal, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum RateError {
    #[error("no such campaign")]
    NotFound,
    #[error("outside the rating window")]
    VotingClosed,
    #[error("no such target")]
    UnknownTarget,
    #[error("already rated in this period")]
    AlreadyRated { period: String },
    #[error("the day's ratings are used")]
    DailyExhausted { resets_at: DateTime<Utc> },
    #[error("the survey was answered already")]
    SurveyAnswered,
    #[error("idempotency key reused with another rating")]
    KeyReused,
    #[error("rate limited")]
    RateLimited(Duration),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct Rate<'a> {
    /// A citizen's voter id, or `staff:<id>` for a staff rater.
    pub voter: &'a str,
    pub group: RaterGroup,
    pub campaign_id: i64,
    pub target_id: i64,
    pub level: Level,
    /// Checked already (see `rating::comment`).
    pub comment: String,
    pub idempotency_key: Option<&'a str>,
    /// The survey record an SMS answer answers.
    pub survey_record_id: Option<i64>,
    pub now: DateTime<Utc>,
}

pub struct Rated {
    pub rating: Rating,
    pub replayed: bool,
}

fn request_hash(r: &Rate<'_>) -> String {
    let text = format!("{}|{}|{}", r.target_id, r.level.as_str(), r.comment);
    hex::encode(Sha256::digest(text.as_bytes()))
}

#[tracing::instrument(skip_all, fields(campaign_id = r.campaign_id, group = r.group.as_str()))]
pub async fn rate(services: &Services, r: Rate<'_>) -> Result<Rated, RateError> {
    if r.group == RaterGroup::Public
        && let Some(voter) = crate::domain::keyed::VoterId::parse(r.voter)
        && let Some(wait) = services.limits.check_voter(r.campaign_id, &voter).await
    {
        return Err(RateError::RateLimited(wait));
    }
    let view = match services.campaigns.get(&services.store, r.campaign_id).await {
        Ok(v) if !v.campaign.is_draft && v.campaign.kind == Kind::Evaluation => v,
        Ok(_) | Err(StoreError::NotFound) => return Err(RateError::NotFound),
        Err(e) => return Err(e.into()),
    };
    let campaign = &view.campaign;
    if current_phase(false, &campaign.phases, r.now) != CurrentPhase::Voting {
        return Err(RateError::VotingClosed);
    }
    let hash = request_hash(&r);
    if let Some(key) = r.idempotency_key
        && let Some(first) = services
            .store
            .rating_by_key(campaign.id, r.voter, key)
            .await?
    {
        return replay(first, &hash);
    }
    let tz = ballot::zone(&campaign.timezone);
    let period = rating::period_of(r.now, tz, campaign.rules.evaluation.period);
    let new = NewRating {
        campaign_id: campaign.id,
        target_id: r.target_id,
        voter_id: r.voter.to_string(),
        group: r.group,
        level: r.level,
        comment: r.comment.clone(),
        period: period.clone(),
        quota_day: ballot::quota_day(r.now, tz),
        per_day: campaign.rules.votes_per_day,
        survey_record_id: r.survey_record_id,
        idempotency_key: r.idempotency_key.map(str::to_string),
        request_hash: hash.clone(),
        rated_at: r.now,
    };
    match services.store.record_rating(&new).await {
        Ok(rating) => {
            metrics::counter!("ratings_total", "group" => r.group.as_str()).increment(1);
            tracing::info!(
                seq = rating.seq,
                opinion = rating.opinion_id.is_some(),
                "rating recorded"
            );
            Ok(Rated {
                rating,
                replayed: false,
            })
        }
        Err(StoreError::RatingRefused(why)) => Err(match why {
            RatingRefusal::VotingClosed => RateError::VotingClosed,
            RatingRefusal::UnknownTarget => RateError::UnknownTarget,
            // A survey's voter is the survey itself: rated is answered.
            RatingRefusal::AlreadyRated if r.survey_record_id.is_some() => {
                RateError::SurveyAnswered
            }
            RatingRefusal::AlreadyRated => RateError::AlreadyRated { period },
            RatingRefusal::DailyExhausted => RateError::DailyExhausted {
                resets_at: ballot::resets_at(r.now, tz),
            },
            RatingRefusal::SurveyAnswered => RateError::SurveyAnswered,
        }),
        // A racing request won a unique index: the same key (answer as it was answered) or
        // the same target and period (for a survey: the same survey).
        Err(StoreError::Conflict(_)) if r.survey_record_id.is_some() => {
            Err(RateError::SurveyAnswered)
        }
        Err(StoreError::Conflict(_)) => {
            if let Some(key) = r.idempotency_key
                && let Some(first) = services
                    .store
                    .rating_by_key(campaign.id, r.voter, key)
                    .await?
            {
                return replay(first, &hash);
            }
            Err(RateError::AlreadyRated { period })
        }
        Err(e) => Err(e.into()),
    }
}

fn replay(first: Rating, hash: &str) -> Result<Rated, RateError> {
    if first.request_hash != hash {
        return Err(RateError::KeyReused);
    }
    Ok(Rated {
        rating: first,
        replayed: true,
    })
}
