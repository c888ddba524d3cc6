//! Blocklists for organizers: voters and networks that may not vote in a campaign. Every
//! change is an entry in the campaign's chain; the vote path sees it at once on this
//! instance and within seconds on the others (the ledger checks blocked voters itself).

use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::ApiError;
use super::extract::Staff;
use super::{Page, parse_id};
use crate::app::Services;
use crate::domain::keyed::VoterId;
use crate::domain::rate::parse_network;
use crate::domain::staff::Role;
use crate::store::{Block, BlockSubject, StoreError};

const RUNNERS: &[Role] = &[Role::Admin, Role::Organizer];
const READERS: &[Role] = &[Role::Admin, Role::Organizer, Role::Auditor];

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BlockBody {
    /// `voter` (a `voter_id`) or `network` (a CIDR range such as `198.51.100.0/24`, or one
    /// address).
    pub subject: String,
    pub value: String,
    /// Why: kept on the record (1 to 500 characters).
    pub reason: String,
}

#[derive(Serialize, ToSchema)]
pub struct BlockView {
    pub subject: &'static str,
    pub value: String,
    pub blocked: bool,
    pub reason: String,
    pub updated_at: DateTime<Utc>,
}

impl From<Block> for BlockView {
    fn from(b: Block) -> Self {
        Self {
            subject: b.subject.as_str(),
            value: b.value,
            blocked: b.blocked,
            reason: b.reason,
            updated_at: b.updated_at,
        }
    }
}

/// The subject and the normalized value, or the field at fault.
fn read_block(body: &BlockBody) -> Result<(BlockSubject, String, String), ApiError> {
    let subject = BlockSubject::parse(&body.subject)
        .ok_or_else(|| ApiError::invalid("subject", "subject 须为 voter 或 network"))?;
    let value = match subject {
        BlockSubject::Voter => VoterId::parse(body.value.trim())
            .ok_or_else(|| ApiError::invalid("value", "投票人编号格式不正确"))?
            .as_str()
            .to_string(),
        BlockSubject::Network => parse_network(&body.value)
            .ok_or_else(|| ApiError::invalid("value", "网段格式不正确，例如 198.51.100.0/24"))?
            .to_string(),
    };
    let reason = body.reason.trim();
    if !(1..=500).contains(&reason.chars().count()) {
        return Err(ApiError::invalid("reason", "请填写原因（不超过500字）"));
    }
    Ok((subject, value, reason.to_string()))
}

fn campaign_id(raw: &str) -> Result<i64, ApiError> {
    parse_id(raw).ok_or(ApiError::NotFound)
}

/// The campaign's blocklist, lifted blocks included.
#[utoipa::path(tag = "staff", params(("campaign_id" = String, Path)), responses((status = 200, body = Page<BlockView>)), security(("staff" = [])))]
#[get("/admin/campaigns/{campaign_id}/blocks")]
pub async fn list_blocks(
    services: web::Data<Services>,
    staff: Staff,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    staff.require(READERS)?;
    let id = campaign_id(&path)?;
    services.store.get_campaign(id).await?;
    let items: Vec<BlockView> = services
        .store
        .list_blocks(id)
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    Ok(HttpResponse::Ok().json(Page {
        items,
        next_cursor: None,
    }))
}

/// Blocks a voter or a network in the campaign: its ballots get 403 `voter_blocked`.
#[utoipa::path(tag = "staff", params(("campaign_id" = String, Path)), request_body = BlockBody, responses(
    (status = 201, body = BlockView),
    (status = 422, description = "`invalid_request` with the field"),
), security(("staff" = [])))]
#[post("/admin/campaigns/{campaign_id}/blocks")]
pub async fn block(
    services: web::Data<Services>,
    staff: Staff,
    path: web::Path<String>,
    body: web::Json<BlockBody>,
) -> Result<HttpResponse, ApiError> {
    let b = set_block(&services, &staff, &path, &body, true).await?;
    Ok(HttpResponse::Created().json(b))
}

/// Lifts a block, with a reason.
#[utoipa::path(tag = "staff", params(("campaign_id" = String, Path)), request_body = BlockBody, responses(
    (status = 200, body = BlockView),
    (status = 404, description = "no such block in force"),
), security(("staff" = [])))]
#[post("/admin/campaigns/{campaign_id}/blocks/lift")]
pub async fn lift(
    services: web::Data<Services>,
    staff: Staff,
    path: web::Path<String>,
    body: web::Json<BlockBody>,
) -> Result<HttpResponse, ApiError> {
    let b = set_block(&services, &staff, &path, &body, false).await?;
    Ok(HttpResponse::Ok().json(b))
}

/// Blocks (or lifts a block in force), on the record, and makes this instance see it at once.
async fn set_block(
    services: &Services,
    staff: &Staff,
    campaign: &str,
    body: &BlockBody,
    blocked: bool,
) -> Result<BlockView, ApiError> {
    staff.require(RUNNERS)?;
    let id = campaign_id(campaign)?;
    let (subject, value, reason) = read_block(body)?;
    if !blocked {
        let in_force = services
            .store
            .list_blocks(id)
            .await?
            .into_iter()
            .any(|b| b.subject == subject && b.value == value && b.blocked);
        if !in_force {
            return Err(StoreError::NotFound.into());
        }
    }
    let b = services
        .store
        .set_block(&staff.actor(), id, subject, &value, blocked, &reason)
        .await?;
    services.campaigns.forget(id).await;
    tracing::info!(
        campaign_id = id,
        subject = subject.as_str(),
        blocked,
        "block changed"
    );
    Ok(BlockView::from(b))
}
