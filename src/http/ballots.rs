//! Citizens vote, check their receipts and watch the leaderboard.

use actix_web::HttpMessage;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::campaigns::visible_campaign;
use super::error::ApiError;
use super::extract::Citizen;
use super::{Page, parse_id};
use crate::app::Services;
use crate::app::vote::{self, Cast};
use crate::domain::campaign::ShowCounts;
use crate::store::{Ballot, CandidateQuery, CandidateStatus};

#[derive(Deserialize, ToSchema)]
pub struct BallotBody {
    pub candidate_ids: Vec<String>,
    /// With a campaign that asks for a proof of work: the challenge it issued…
    pub challenge: Option<String>,
    /// …and a nonce such that `sha256(challenge ":" nonce)` starts with `bits` zero bits.
    pub nonce: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct BallotReceipt {
    /// The hash of the ballot's audit entry.
    pub receipt: String,
    pub seq: i64,
    pub candidate_ids: Vec<String>,
    pub cast_at: DateTime<Utc>,
    pub remaining_today: u32,
    /// `counted`, `quarantined` or `invalidated`.
    pub status: String,
}

impl From<Ballot> for BallotReceipt {
    fn from(b: Ballot) -> Self {
        Self {
            receipt: b.receipt,
            seq: b.seq,
            candidate_ids: b.candidate_ids.iter().map(|c| c.to_string()).collect(),
            cast_at: b.cast_at,
            remaining_today: b.remaining_today,
            status: b.status,
        }
    }
}

/// Casts a ballot: all its candidates are counted, or none. With `Idempotency-Key`, a repeat
/// by the same voter gets the first answer and counts nothing more.
#[utoipa::path(tag = "citizen", params(("campaign_id" = String, Path), ("Idempotency-Key" = Option<String>, Header), ("X-Device-Id" = Option<String>, Header)), request_body = BallotBody, responses(
    (status = 201, body = BallotReceipt),
    (status = 403, description = "`voter_blocked`: the voter or its network is blocked in this campaign"),
    (status = 428, description = "`challenge_required`: a missing, spent or wrong proof of work; `challenge`, `bits` and `expires_at` give a fresh one"),
    (status = 409, description = "`voting_closed`"),
    (status = 422, description = "`invalid_ballot` or `idempotency_key_reused`"),
    (status = 429, description = "`daily_quota_exhausted`, `candidate_daily_limit`, `campaign_quota_exhausted` (with `resets_at`); `rate_limited` (with `Retry-After`)"),
    (status = 503, description = "`unavailable`: nothing was counted"),
), security(("citizen" = [])))]
#[post("/campaigns/{campaign_id}/ballots")]
pub async fn cast(
    services: web::Data<Services>,
    citizen: Citizen,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<BallotBody>,
) -> Result<HttpResponse, ApiError> {
    let campaign_id = parse_id(&path).ok_or(ApiError::NotFound)?;
    let key = super::extract::idempotency_key(&req)?;
    let device = match req.headers().get("x-device-id") {
        Some(v) => Some(
            v.to_str()
                .ok()
                .filter(|d| (1..=128).contains(&d.len()))
                .ok_or_else(|| {
                    ApiError::invalid("X-Device-Id", "X-Device-Id 须为1到128个可见字符")
                })?
                .to_string(),
        ),
        None => None,
    };
    let ip = req
        .extensions()
        .get::<super::limit::ClientIp>()
        .map(|c| c.0);
    let done = vote::cast_ballot(
        &services,
        Cast {
            voter: &citizen.voter_id,
            campaign_id,
            candidate_ids: &body.candidate_ids,
            idempotency_key: key.as_deref(),
            proof: body.challenge.as_deref().zip(body.nonce.as_deref()),
            device: device.as_deref(),
            ip,
            first_seen: citizen.first_seen,
            now: services.now(),
        },
    )
    .await?;
    let mut response = HttpResponse::Created();
    if done.replayed {
        response.insert_header(("idempotent-replayed", "true"));
    }
    Ok(response.json(BallotReceipt::from(done.ballot)))
}

#[derive(Serialize, ToSchema)]
pub struct ChallengeView {
    pub challenge: String,
    /// Zero bits the proof's hash must start with (0: the campaign asks for no proof).
    pub bits: u8,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// A fresh proof-of-work challenge for the caller, for one ballot in this campaign.
#[utoipa::path(tag = "citizen", params(("campaign_id" = String, Path)), responses((status = 200, body = ChallengeView), (status = 404)), security(("citizen" = [])))]
#[get("/campaigns/{campaign_id}/challenge")]
pub async fn challenge(
    services: web::Data<Services>,
    citizen: Citizen,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let campaign_id = parse_id(&path).ok_or(ApiError::NotFound)?;
    let view = services.campaigns.get(&services.store, campaign_id).await?;
    if view.campaign.is_draft || view.campaign.kind != crate::domain::campaign::Kind::Selection {
        return Err(ApiError::NotFound);
    }
    let c = vote::challenge(&services, &view.campaign, &citizen.voter_id, services.now());
    Ok(HttpResponse::Ok().json(ChallengeView {
        challenge: c.text,
        bits: c.bits,
        expires_at: c.expires_at,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct ReceiptView {
    pub receipt: String,
    pub campaign_id: String,
    pub kind: String,
    pub seq: i64,
    pub cast_at: DateTime<Utc>,
    pub status: String,
}

/// Anyone holding a receipt (of a ballot or a rating) can check that it is in the record.
#[utoipa::path(tag = "audit", params(("receipt" = String, Path)), responses((status = 200, body = ReceiptView), (status = 404)))]
#[get("/receipts/{receipt}")]
pub async fn receipt(
    services: web::Data<Services>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    if path.len() != 64 {
        return Err(ApiError::NotFound);
    }
    if let Some(b) = services.store.ballot_by_receipt(&path).await? {
        return Ok(HttpResponse::Ok().json(ReceiptView {
            receipt: b.receipt,
            campaign_id: b.campaign_id.to_string(),
            kind: "ballot".into(),
            seq: b.seq,
            cast_at: b.cast_at,
            status: b.status,
        }));
    }
    let r = services
        .store
        .rating_by_receipt(&path)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Ok().json(ReceiptView {
        receipt: r.receipt,
        campaign_id: r.campaign_id.to_string(),
        kind: "rating".into(),
        seq: r.seq,
        cast_at: r.rated_at,
        status: r.status,
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MyBallotsParams {
    pub campaign_id: Option<String>,
    /// 1 to 100, default 20.
    pub limit: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The caller's own ballots, newest first, with receipts, a page at a time.
#[utoipa::path(tag = "citizen", params(MyBallotsParams), responses((status = 200, body = Page<BallotReceipt>)), security(("citizen" = [])))]
#[get("/me/ballots")]
pub async fn my_ballots(
    services: web::Data<Services>,
    citizen: Citizen,
    params: web::Query<MyBallotsParams>,
) -> Result<HttpResponse, ApiError> {
    let campaign =
        super::parse_optional_id(params.campaign_id.as_deref(), "campaign_id", "活动编号无效")?;
    let limit = super::parse_limit(params.limit.as_deref())?;
    let before = super::parse_cursor(params.cursor.as_deref())?;
    let found = services
        .store
        .ballots_of_voter(citizen.voter_id.as_str(), campaign, before, limit)
        .await?;
    let next_cursor = (found.len() == limit as usize)
        .then(|| found.last().map(|b| b.id.to_string()))
        .flatten();
    let items: Vec<BallotReceipt> = found.into_iter().map(Into::into).collect();
    Ok(HttpResponse::Ok().json(Page { items, next_cursor }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LeaderboardParams {
    pub category_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct LeaderRow {
    pub rank: u32,
    pub candidate_id: String,
    pub number: i64,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub votes: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct Leaderboard {
    pub items: Vec<LeaderRow>,
    pub as_of: DateTime<Utc>,
}

/// Approved candidates by live votes. Ties share a rank ("1, 2, 2, 4") and are listed by
/// number (编号). `votes` is absent under `rank_only`; `hidden` answers 403.
#[utoipa::path(tag = "citizen", params(("campaign_id" = String, Path), LeaderboardParams), responses(
    (status = 200, body = Leaderboard),
    (status = 403, description = "`leaderboard_hidden`"),
))]
#[get("/campaigns/{campaign_id}/leaderboard")]
pub async fn leaderboard(
    services: web::Data<Services>,
    path: web::Path<String>,
    params: web::Query<LeaderboardParams>,
) -> Result<HttpResponse, ApiError> {
    let campaign = visible_campaign(&services, &path).await?;
    if campaign.rules.show_counts == ShowCounts::Hidden {
        return Err(ApiError::refused(
            StatusCode::FORBIDDEN,
            "leaderboard_hidden",
            "本活动不公开排行榜",
        ));
    }
    let category_id =
        super::parse_optional_id(params.category_id.as_deref(), "category_id", "类别编号无效")?;
    let query = CandidateQuery {
        category_id,
        limit: u32::MAX,
        ..Default::default()
    };
    let candidates = services
        .store
        .list_candidates(campaign.id, Some(CandidateStatus::Approved), &query)
        .await?;
    let votes = crate::app::recount::live_votes(&services, &campaign).await?;
    let mut rows: Vec<(i64, &crate::store::Candidate)> = candidates
        .iter()
        .map(|c| (votes.get(&c.id).copied().unwrap_or(0), c))
        .collect();
    rows.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.number.cmp(&b.1.number)));
    let show = campaign.rules.show_counts == ShowCounts::Live;
    let mut items = Vec::with_capacity(rows.len());
    for (i, (v, c)) in rows.iter().enumerate() {
        let rank = if i > 0 && rows[i - 1].0 == *v {
            items.last().map(|r: &LeaderRow| r.rank).unwrap_or(1)
        } else {
            i as u32 + 1
        };
        items.push(LeaderRow {
            rank,
            candidate_id: c.id.to_string(),
            number: c.number,
            name: c.name.clone(),
            votes: show.then_some(*v),
        });
    }
    Ok(HttpResponse::Ok().json(Leaderboard {
        items,
        as_of: Utc::now(),
    }))
}
