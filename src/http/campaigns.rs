//! Citizens' read routes for campaigns and candidates. Drafts are invisible here (404), and
//! only approved candidates are listed.

use actix_web::{HttpResponse, get, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::ApiError;
use super::{Page, id_as_string, parse_id};
use crate::app::Services;
use crate::domain::campaign::{CurrentPhase, Kind, PhaseWindow, Rules, current_phase};
use crate::store::{Campaign, Candidate, CandidateQuery, CandidateStatus, Category};

#[derive(Serialize, ToSchema)]
pub struct CategoryView {
    #[serde(serialize_with = "id_as_string")]
    #[schema(value_type = String)]
    pub id: i64,
    pub name: String,
    pub winners: u32,
}

#[derive(Serialize, ToSchema)]
pub struct CampaignView {
    #[serde(serialize_with = "id_as_string")]
    #[schema(value_type = String)]
    pub id: i64,
    pub kind: Kind,
    pub title: String,
    pub description: String,
    pub timezone: String,
    pub phases: Vec<PhaseWindow>,
    pub current_phase: CurrentPhase,
    pub rules: Rules,
    pub categories: Vec<CategoryView>,
    pub created_at: DateTime<Utc>,
}

impl CampaignView {
    pub fn new(c: Campaign, categories: Vec<Category>, now: DateTime<Utc>) -> Self {
        Self {
            id: c.id,
            kind: c.kind,
            // Publication ends a campaign whatever its windows say.
            current_phase: if c.published_seq.is_some() {
                CurrentPhase::Published
            } else {
                current_phase(c.is_draft, &c.phases, now)
            },
            title: c.title,
            description: c.description,
            timezone: c.timezone,
            phases: c.phases,
            rules: c.rules,
            categories: categories
                .into_iter()
                .map(|k| CategoryView {
                    id: k.id,
                    name: k.name,
                    winners: k.winners,
                })
                .collect(),
            created_at: c.created_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct CandidateView {
    #[serde(serialize_with = "id_as_string")]
    #[schema(value_type = String)]
    pub id: i64,
    pub number: i64,
    pub name: String,
    #[serde(serialize_with = "id_as_string")]
    #[schema(value_type = String)]
    pub category_id: i64,
    pub unit: String,
    pub department: String,
    pub title: String,
    pub photo_url: String,
    pub story: String,
    /// Live votes, only when the campaign shows counts live.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub votes: Option<i64>,
}

impl From<Candidate> for CandidateView {
    fn from(c: Candidate) -> Self {
        Self {
            id: c.id,
            number: c.number,
            name: c.name,
            category_id: c.category_id,
            unit: c.unit,
            department: c.department,
            title: c.title,
            photo_url: c.photo_url,
            story: c.story,
            votes: None,
        }
    }
}

/// A campaign a citizen may see: it exists and is not a draft.
pub async fn visible_campaign(services: &Services, raw_id: &str) -> Result<Campaign, ApiError> {
    let id = parse_id(raw_id).ok_or(ApiError::NotFound)?;
    let campaign = services.store.get_campaign(id).await?;
    if campaign.is_draft {
        return Err(ApiError::NotFound);
    }
    Ok(campaign)
}

/// Campaigns that are not drafts, newest first.
#[utoipa::path(tag = "citizen", responses((status = 200, body = Page<CampaignView>)))]
#[get("/campaigns")]
pub async fn list(services: web::Data<Services>) -> Result<HttpResponse, ApiError> {
    let now = Utc::now();
    let mut items = Vec::new();
    for c in services.store.list_campaigns(false).await? {
        let categories = services.store.list_categories(c.id).await?;
        items.push(CampaignView::new(c, categories, now));
    }
    Ok(HttpResponse::Ok().json(Page {
        items,
        next_cursor: None,
    }))
}

/// One campaign with its phases, current phase, rules and categories.
#[utoipa::path(tag = "citizen", params(("campaign_id" = String, Path)), responses(
    (status = 200, body = CampaignView),
    (status = 404, description = "`not_found`: no such campaign, or a draft"),
))]
#[get("/campaigns/{campaign_id}")]
pub async fn detail(
    services: web::Data<Services>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let campaign = visible_campaign(&services, &path).await?;
    let categories = services.store.list_categories(campaign.id).await?;
    Ok(HttpResponse::Ok().json(CampaignView::new(campaign, categories, Utc::now())))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CandidateParams {
    /// Only this category.
    pub category_id: Option<String>,
    /// Search: part of the name or unit, or the number (编号).
    pub q: Option<String>,
    /// 1–100, default 20.
    pub limit: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Approved candidates, ordered by number, with search and category filter.
#[utoipa::path(tag = "citizen", params(("campaign_id" = String, Path), CandidateParams), responses(
    (status = 200, body = Page<CandidateView>),
    (status = 404),
    (status = 422, description = "`invalid_request` with the parameter at fault"),
))]
#[get("/campaigns/{campaign_id}/candidates")]
pub async fn candidates(
    services: web::Data<Services>,
    path: web::Path<String>,
    params: web::Query<CandidateParams>,
) -> Result<HttpResponse, ApiError> {
    let limit = super::parse_limit(params.limit.as_deref())?;
    let category_id =
        super::parse_optional_id(params.category_id.as_deref(), "category_id", "类别编号无效")?;
    let after_number = super::parse_cursor(params.cursor.as_deref())?;
    let text = params.q.as_deref().map(str::trim).filter(|s| !s.is_empty());
    if text.is_some_and(|t| t.chars().count() > 50) {
        return Err(ApiError::invalid("q", "搜索内容不能超过50个字"));
    }
    let query = CandidateQuery {
        category_id,
        text: text.map(str::to_string),
        after_number,
        limit,
    };
    let campaign = visible_campaign(&services, &path).await?;
    let found = services
        .store
        .list_candidates(campaign.id, Some(CandidateStatus::Approved), &query)
        .await?;
    let next_cursor = (found.len() == limit as usize)
        .then(|| found.last().map(|c| c.number.to_string()))
        .flatten();
    let live = campaign.rules.show_counts == crate::domain::campaign::ShowCounts::Live;
    let votes = if live {
        Some(crate::app::recount::live_votes(&services, &campaign).await?)
    } else {
        None
    };
    let items: Vec<CandidateView> = found
        .into_iter()
        .map(|c| {
            let count = votes.as_ref().map(|v| v.get(&c.id).copied().unwrap_or(0));
            CandidateView {
                votes: count,
                ..c.into()
            }
        })
        .collect();
    Ok(HttpResponse::Ok().json(Page { items, next_cursor }))
}

/// One approved candidate.
#[utoipa::path(tag = "citizen", params(("campaign_id" = String, Path), ("candidate_id" = String, Path)), responses(
    (status = 200, body = CandidateView),
    (status = 404),
))]
#[get("/campaigns/{campaign_id}/candidates/{candidate_id}")]
pub async fn candidate(
    services: web::Data<Services>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (campaign_id, candidate_id) = path.into_inner();
    let campaign = visible_campaign(&services, &campaign_id).await?;
    let candidate_id = parse_id(&candidate_id).ok_or(ApiError::NotFound)?;
    let c = services
        .store
        .get_candidate(campaign.id, candidate_id)
        .await?;
    if c.status != CandidateStatus::Approved {
        return Err(ApiError::NotFound);
    }
    Ok(HttpResponse::Ok().json(CandidateView::from(c)))
}

#[derive(Serialize, ToSchema)]
pub struct TargetView {
    #[serde(serialize_with = "id_as_string")]
    #[schema(value_type = String)]
    pub id: i64,
    pub code: String,
    pub name: String,
    #[schema(value_type = Option<String>)]
    pub parent_id: Option<String>,
}

impl From<crate::store::Target> for TargetView {
    fn from(t: crate::store::Target) -> Self {
        Self {
            id: t.id,
            code: t.code,
            name: t.name,
            parent_id: t.parent_id.map(|p| p.to_string()),
        }
    }
}

/// The units and departments under evaluation, parents before children.
#[utoipa::path(tag = "citizen", params(("campaign_id" = String, Path)), responses((status = 200, body = Page<TargetView>), (status = 404)))]
#[get("/campaigns/{campaign_id}/targets")]
pub async fn targets(
    services: web::Data<Services>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let campaign = visible_campaign(&services, &path).await?;
    let items: Vec<TargetView> = services
        .store
        .list_targets(campaign.id)
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    Ok(HttpResponse::Ok().json(Page {
        items,
        next_cursor: None,
    }))
}
