//! The audit chain, read by anyone who wants to check it. The head is public; the entries
//! are public while the campaign shows live counts (the contract's visibility rule: with
//! counts hidden or rank-only, entries would reveal them, so only staff read them until the
//! results are published).

use actix_web::{HttpResponse, get, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::campaigns::visible_campaign;
use super::error::ApiError;
use super::extract::Staff;
use super::parse_id;
use crate::app::Services;
use crate::domain::audit::Entry;
use crate::domain::campaign::ShowCounts;
use crate::domain::staff::Role;
use crate::store::Campaign;

#[derive(Serialize, ToSchema)]
pub struct Head {
    pub seq: i64,
    pub hash: String,
}

#[derive(Serialize, ToSchema)]
pub struct EntryView {
    pub seq: i64,
    pub kind: String,
    #[schema(value_type = Object)]
    pub body: serde_json::Value,
    pub prev_hash: String,
    pub hash: String,
}

impl From<Entry> for EntryView {
    fn from(e: Entry) -> Self {
        Self {
            seq: e.seq,
            kind: e.kind,
            body: e.body,
            prev_hash: e.prev_hash,
            hash: e.hash,
        }
    }
}

/// A campaign whose chain the caller may see: staff see every campaign's; others see open
/// campaigns' heads, and entries under the visibility rule.
async fn readable(
    services: &Services,
    raw: &str,
    staff: &Option<Staff>,
    want_entries: bool,
) -> Result<Campaign, ApiError> {
    // Entries of hidden counts are for those who run or audit the campaign; an expert must
    // not read the counts (or other experts' scores) while scoring.
    let privileged = staff.as_ref().is_some_and(|s| {
        matches!(
            s.session.role,
            Role::Admin | Role::Organizer | Role::Auditor
        )
    });
    let campaign = match staff {
        Some(_) => {
            services
                .store
                .get_campaign(parse_id(raw).ok_or(ApiError::NotFound)?)
                .await?
        }
        None => visible_campaign(services, raw).await?,
    };
    if want_entries
        && !privileged
        && campaign.rules.show_counts != ShowCounts::Live
        && campaign.published_seq.is_none()
    {
        return Err(ApiError::Conflict {
            code: "audit_entries_hidden",
            message: "本活动不公开实时票数，审计记录将在结果发布后公开".into(),
        });
    }
    Ok(campaign)
}

/// The chain's head: the last seq and its hash.
#[utoipa::path(tag = "audit", params(("campaign_id" = String, Path)), responses((status = 200, body = Head), (status = 404)))]
#[get("/campaigns/{campaign_id}/audit/head")]
pub async fn head(
    services: web::Data<Services>,
    staff: Option<Staff>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let c = readable(&services, &path, &staff, false).await?;
    let (seq, hash) = services.store.audit_head(c.id).await?;
    Ok(HttpResponse::Ok().json(Head { seq, hash }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EntryParams {
    /// Entries after this seq (default 0: from the first).
    pub after_seq: Option<String>,
    /// 1–1000, default 100.
    pub limit: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct EntryPage {
    pub items: Vec<EntryView>,
    pub next_cursor: Option<String>,
}

/// Entries in seq order. `next_cursor` is the `after_seq` of the next page.
#[utoipa::path(tag = "audit", params(("campaign_id" = String, Path), EntryParams), responses(
    (status = 200, body = EntryPage),
    (status = 409, description = "`audit_entries_hidden`: counts are not live and results are not published; staff only"),
))]
#[get("/campaigns/{campaign_id}/audit/entries")]
pub async fn entries(
    services: web::Data<Services>,
    staff: Option<Staff>,
    path: web::Path<String>,
    params: web::Query<EntryParams>,
) -> Result<HttpResponse, ApiError> {
    let after_seq = match params.after_seq.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => s
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| ApiError::invalid("after_seq", "after_seq 须为非负整数"))?,
        None => 0,
    };
    let limit = match params.limit.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => s
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| ApiError::invalid("limit", "limit 须为1到1000之间的整数"))?,
        None => 100,
    };
    let c = readable(&services, &path, &staff, true).await?;
    let found = services.store.audit_entries(c.id, after_seq, limit).await?;
    let next_cursor = (found.len() == limit as usize)
        .then(|| found.last().map(|e| e.seq.to_string()))
        .flatten();
    Ok(HttpResponse::Ok().json(EntryPage {
        items: found.into_iter().map(Into::into).collect(),
        next_cursor,
    }))
}

/// The whole chain as JSON Lines (one entry per line), for `minyi verify --file` and outside
/// verifiers. Same visibility as the entries.
#[utoipa::path(tag = "audit", params(("campaign_id" = String, Path)), responses((status = 200, description = "JSON Lines", content_type = "application/x-ndjson")))]
#[get("/campaigns/{campaign_id}/audit/export")]
pub async fn export(
    services: web::Data<Services>,
    staff: Option<Staff>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let c = readable(&services, &path, &staff, true).await?;
    let store = services.store.clone();
    let id = c.id;
    // Pages of entries, streamed as they are read, so a long chain never sits in memory.
    let stream = futures_util::stream::try_unfold(0i64, move |after| {
        let store = store.clone();
        async move {
            let page = store
                .audit_entries(id, after, 5000)
                .await
                .map_err(ApiError::from)?;
            let Some(last) = page.last().map(|e| e.seq) else {
                return Ok(None);
            };
            let mut text = String::new();
            for e in page {
                text.push_str(
                    &serde_json::to_string(&e).map_err(|x| ApiError::Internal(x.to_string()))?,
                );
                text.push('\n');
            }
            Ok::<_, ApiError>(Some((web::Bytes::from(text), last)))
        }
    });
    Ok(HttpResponse::Ok()
        .content_type("application/x-ndjson")
        .insert_header((
            "content-disposition",
            format!("attachment; filename=\"campaign-{id}-audit.jsonl\""),
        ))
        .streaming(stream))
}
