//! Staff routes for running campaigns: settings, categories, candidates (nomination, approval,
//! rejection, withdrawal), evaluation targets and bulk imports. Every write is an audit entry,
//! committed with the change it records (see `store`).
//!
//! Roles: `admin` and `organizer` run campaigns; a `unit_handler` nominates candidates for
//! their own unit only; every staff role may read.

use actix_web::{HttpRequest, HttpResponse, get, patch, post, web};
use chrono::Utc;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::campaigns::{CampaignView, CandidateView, TargetView};
use super::error::ApiError;
use super::extract::Staff;
use super::{Page, id_as_string, parse_id};
use crate::app::Services;
use crate::app::imports::{self, ImportFailed};
use crate::domain::campaign::{Kind, PhaseWindow, Rules};
use crate::domain::import::ImportError;
use crate::domain::staff::Role;
use crate::store::{
    Campaign, CampaignPatch, Candidate, CandidateQuery, CandidateStatus, NewCampaign, NewCandidate,
    NewTarget, TargetParent,
};

const RUNNERS: &[Role] = &[Role::Admin, Role::Organizer];
const NOMINATORS: &[Role] = &[Role::Admin, Role::Organizer, Role::UnitHandler];
const IMPORT_LIMIT: usize = 4 * 1024 * 1024;

/// A campaign as staff see it: the citizen view plus whether it is still a draft.
#[derive(Serialize, ToSchema)]
pub struct AdminCampaignView {
    #[serde(flatten)]
    pub campaign: CampaignView,
    pub draft: bool,
}

async fn view(services: &Services, c: Campaign) -> Result<AdminCampaignView, ApiError> {
    let categories = services.store.list_categories(c.id).await?;
    let draft = c.is_draft;
    Ok(AdminCampaignView {
        campaign: CampaignView::new(c, categories, Utc::now()),
        draft,
    })
}

fn campaign_id(raw: &str) -> Result<i64, ApiError> {
    parse_id(raw).ok_or(ApiError::NotFound)
}

async fn campaign_of_kind(services: &Services, id: i64, kind: Kind) -> Result<Campaign, ApiError> {
    let c = services.store.get_campaign(id).await?;
    if c.kind != kind {
        let message = match kind {
            Kind::Selection => "候选人只能添加到评选活动",
            Kind::Evaluation => "参评对象只能添加到评议活动",
        };
        return Err(ApiError::Conflict {
            code: "wrong_campaign_kind",
            message: message.into(),
        });
    }
    Ok(c)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCampaign {
    pub kind: Kind,
    pub title: String,
    #[serde(default)]
    pub description: String,
    /// IANA time zone; quotas count days in it. Default `Asia/Shanghai`.
    #[serde(default = "default_timezone")]
    pub timezone: String,
    #[serde(default)]
    pub phases: Vec<PhaseWindow>,
    #[serde(default)]
    pub rules: Rules,
}

fn default_timezone() -> String {
    "Asia/Shanghai".into()
}

/// Creates a campaign as a draft (invisible to citizens until opened).
#[utoipa::path(tag = "staff", request_body = CreateCampaign, responses(
    (status = 201, body = AdminCampaignView),
    (status = 422, description = "`invalid_request`; `error.field` names the value at fault, e.g. `phases[1].starts_at`"),
), security(("staff" = [])))]
#[post("/admin/campaigns")]
pub async fn create_campaign(
    services: web::Data<Services>,
    staff: Staff,
    body: web::Json<CreateCampaign>,
) -> Result<HttpResponse, ApiError> {
    staff.require(RUNNERS)?;
    let b = body.into_inner();
    let new = NewCampaign {
        kind: b.kind,
        title: b.title.trim().to_string(),
        description: b.description,
        timezone: b.timezone,
        phases: b.phases,
        rules: b.rules,
    };
    let c = services.store.create_campaign(&staff.actor(), &new).await?;
    tracing::info!(campaign_id = c.id, "campaign created");
    Ok(HttpResponse::Created().json(view(&services, c).await?))
}

/// Every campaign, drafts included, newest first.
#[utoipa::path(tag = "staff", responses((status = 200, body = Page<AdminCampaignView>)), security(("staff" = [])))]
#[get("/admin/campaigns")]
pub async fn list_campaigns(
    services: web::Data<Services>,
    _staff: Staff,
) -> Result<HttpResponse, ApiError> {
    let mut items = Vec::new();
    for c in services.store.list_campaigns(true).await? {
        items.push(view(&services, c).await?);
    }
    Ok(HttpResponse::Ok().json(Page {
        items,
        next_cursor: None,
    }))
}

#[utoipa::path(tag = "staff", params(("campaign_id" = String, Path)), responses((status = 200, body = AdminCampaignView), (status = 404)), security(("staff" = [])))]
#[get("/admin/campaigns/{campaign_id}")]
pub async fn get_campaign(
    services: web::Data<Services>,
    _staff: Staff,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let c = services.store.get_campaign(campaign_id(&path)?).await?;
    Ok(HttpResponse::Ok().json(view(&services, c).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchCampaign {
    pub title: Option<String>,
    pub description: Option<String>,
    pub timezone: Option<String>,
    pub phases: Option<Vec<PhaseWindow>>,
    /// The whole rules object (replaces the current one).
    pub rules: Option<Rules>,
}

/// Changes settings, windows or rules (also during a campaign); the entry names the fields
/// that changed.
#[utoipa::path(tag = "staff", params(("campaign_id" = String, Path)), request_body = PatchCampaign, responses(
    (status = 200, body = AdminCampaignView),
    (status = 422, description = "`invalid_request` with the field"),
), security(("staff" = [])))]
#[patch("/admin/campaigns/{campaign_id}")]
pub async fn patch_campaign(
    services: web::Data<Services>,
    staff: Staff,
    path: web::Path<String>,
    body: web::Json<PatchCampaign>,
) -> Result<HttpResponse, ApiError> {
    staff.require(RUNNERS)?;
    let b = body.into_inner();
    let patch = CampaignPatch {
        title: b.title.map(|t| t.trim().to_string()),
        description: b.description,
        timezone: b.timezone,
        phases: b.phases,
        rules: b.rules,
    };
    let id = campaign_id(&path)?;
    let c = services
        .store
        .update_campaign(&staff.actor(), id, &patch)
        .await?;
    services.campaigns.forget(id).await;
    Ok(HttpResponse::Ok().json(view(&services, c).await?))
}

/// Opens a draft to citizens (it needs at least one phase).
#[utoipa::path(tag = "staff", params(("campaign_id" = String, Path)), responses((status = 200, body = AdminCampaignView), (status = 422)), security(("staff" = [])))]
#[post("/admin/campaigns/{campaign_id}/open")]
pub async fn open_campaign(
    services: web::Data<Services>,
    staff: Staff,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    staff.require(RUNNERS)?;
    let id = campaign_id(&path)?;
    let c = services.store.open_campaign(&staff.actor(), id).await?;
    services.campaigns.forget(id).await;
    Ok(HttpResponse::Ok().json(view(&services, c).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CategoryBody {
    pub name: String,
    pub winners: u32,
}

#[derive(Serialize, ToSchema)]
pub struct CategoryOut {
    #[serde(serialize_with = "id_as_string")]
    #[schema(value_type = String)]
    pub id: i64,
    pub name: String,
    pub winners: u32,
}

fn check_category(name: &str, winners: u32) -> Result<(), ApiError> {
    if !(1..=50).contains(&name.trim().chars().count()) {
        return Err(ApiError::invalid("name", "类别名称须为1至50个字"));
    }
    if winners > 1000 {
        return Err(ApiError::invalid("winners", "获奖名额不能超过1000"));
    }
    Ok(())
}

#[utoipa::path(tag = "staff", params(("campaign_id" = String, Path)), request_body = CategoryBody, responses((status = 201, body = CategoryOut), (status = 409)), security(("staff" = [])))]
#[post("/admin/campaigns/{campaign_id}/categories")]
pub async fn add_category(
    services: web::Data<Services>,
    staff: Staff,
    path: web::Path<String>,
    body: web::Json<CategoryBody>,
) -> Result<HttpResponse, ApiError> {
    staff.require(RUNNERS)?;
    check_category(&body.name, body.winners)?;
    let c = services
        .store
        .add_category(
            &staff.actor(),
            campaign_id(&path)?,
            body.name.trim(),
            body.winners,
        )
        .await?;
    Ok(HttpResponse::Created().json(CategoryOut {
        id: c.id,
        name: c.name,
        winners: c.winners,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchCategory {
    pub name: Option<String>,
    pub winners: Option<u32>,
}

#[utoipa::path(tag = "staff", params(("campaign_id" = String, Path), ("category_id" = String, Path)), request_body = PatchCategory, responses((status = 200, body = CategoryOut)), security(("staff" = [])))]
#[patch("/admin/campaigns/{campaign_id}/categories/{category_id}")]
pub async fn patch_category(
    services: web::Data<Services>,
    staff: Staff,
    path: web::Path<(String, String)>,
    body: web::Json<PatchCategory>,
) -> Result<HttpResponse, ApiError> {
    staff.require(RUNNERS)?;
    let (cid, cat) = path.into_inner();
    let category_id = parse_id(&cat).ok_or(ApiError::NotFound)?;
    check_category(
        body.name.as_deref().unwrap_or("名称"),
        body.winners.unwrap_or(0),
    )?;
    let c = services
        .store
        .update_category(
            &staff.actor(),
            campaign_id(&cid)?,
            category_id,
            body.name.as_deref().map(str::trim),
            body.winners,
        )
        .await?;
    Ok(HttpResponse::Ok().json(CategoryOut {
        id: c.id,
        name: c.name,
        winners: c.winners,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NominateBody {
    pub category_id: String,
    pub name: String,
    /// A unit handler's own unit when absent; a unit handler may not name another.
    pub unit: Option<String>,
    #[serde(default)]
    pub department: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub photo_url: String,
    #[serde(default)]
    pub story: String,
}

/// A candidate as staff see it, with its status and the reason of a rejection or withdrawal.
#[derive(Serialize, ToSchema)]
pub struct AdminCandidateView {
    #[serde(flatten)]
    pub candidate: CandidateView,
    pub status: String,
    pub reason: String,
}

impl From<Candidate> for AdminCandidateView {
    fn from(c: Candidate) -> Self {
        let status = c.status.as_str().to_string();
        let reason = c.reason.clone();
        Self {
            candidate: c.into(),
            status,
            reason,
        }
    }
}

fn check_candidate(c: &NewCandidate) -> Result<(), ApiError> {
    let len = |s: &str| s.chars().count();
    if !(1..=50).contains(&len(&c.name)) {
        return Err(ApiError::invalid("name", "姓名须为1至50个字"));
    }
    if !(1..=100).contains(&len(&c.unit)) {
        return Err(ApiError::invalid("unit", "单位须为1至100个字"));
    }
    if len(&c.department) > 100 || len(&c.title) > 100 {
        return Err(ApiError::invalid("department", "科室和职称不能超过100个字"));
    }
    if len(&c.story) > 5000 {
        return Err(ApiError::invalid("story", "事迹不能超过5000个字"));
    }
    let url = c.photo_url.to_ascii_lowercase();
    if !(c.photo_url.is_empty() || url.starts_with("https://") || url.starts_with("http://"))
        || len(&c.photo_url) > 500
    {
        return Err(ApiError::invalid(
            "photo_url",
            "照片链接须以http://或https://开头",
        ));
    }
    Ok(())
}

/// Nominates a candidate (status `nominated`); organizers approve or reject it.
#[utoipa::path(tag = "staff", params(("campaign_id" = String, Path)), request_body = NominateBody, responses(
    (status = 201, body = AdminCandidateView),
    (status = 403, description = "a unit handler naming another unit"),
    (status = 409, description = "`wrong_campaign_kind`: not a selection campaign"),
), security(("staff" = [])))]
#[post("/admin/campaigns/{campaign_id}/candidates")]
pub async fn nominate(
    services: web::Data<Services>,
    staff: Staff,
    path: web::Path<String>,
    body: web::Json<NominateBody>,
) -> Result<HttpResponse, ApiError> {
    staff.require(NOMINATORS)?;
    let b = body.into_inner();
    let unit = match (staff.session.role, &staff.session.unit, b.unit) {
        (Role::UnitHandler, Some(own), Some(named)) if named.trim() != own => {
            tracing::info!(
                staff_id = staff.session.staff_id,
                "unit handler nominating for another unit"
            );
            return Err(ApiError::Forbidden);
        }
        (Role::UnitHandler, Some(own), _) => own.clone(),
        (Role::UnitHandler, None, _) => return Err(ApiError::Forbidden),
        (_, _, named) => named.unwrap_or_default().trim().to_string(),
    };
    let new = NewCandidate {
        category_id: parse_id(&b.category_id)
            .ok_or_else(|| ApiError::invalid("category_id", "类别不存在"))?,
        name: b.name.trim().to_string(),
        unit,
        department: b.department.trim().to_string(),
        title: b.title.trim().to_string(),
        photo_url: b.photo_url.trim().to_string(),
        story: b.story,
    };
    check_candidate(&new)?;
    let id = campaign_id(&path)?;
    campaign_of_kind(&services, id, Kind::Selection).await?;
    let mut added = services
        .store
        .add_candidates(&staff.actor(), id, &[new], CandidateStatus::Nominated, None)
        .await?;
    let c = added
        .pop()
        .ok_or_else(|| ApiError::Internal("no candidate added".into()))?;
    Ok(HttpResponse::Created().json(AdminCandidateView::from(c)))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AdminCandidateParams {
    /// `nominated`, `approved`, `rejected` or `withdrawn`; all when absent.
    pub status: Option<String>,
    pub category_id: Option<String>,
    pub q: Option<String>,
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

/// Candidates of every status, by number.
#[utoipa::path(tag = "staff", params(("campaign_id" = String, Path), AdminCandidateParams), responses((status = 200, body = Page<AdminCandidateView>)), security(("staff" = [])))]
#[get("/admin/campaigns/{campaign_id}/candidates")]
pub async fn list_candidates(
    services: web::Data<Services>,
    _staff: Staff,
    path: web::Path<String>,
    params: web::Query<AdminCandidateParams>,
) -> Result<HttpResponse, ApiError> {
    let status = match params.status.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => {
            Some(CandidateStatus::parse(s).ok_or_else(|| ApiError::invalid("status", "状态无效"))?)
        }
        None => None,
    };
    let limit = super::parse_limit(params.limit.as_deref())?;
    let query = CandidateQuery {
        category_id: params.category_id.as_deref().and_then(parse_id),
        text: params.q.clone().filter(|q| !q.trim().is_empty()),
        after_number: params.cursor.as_deref().and_then(|c| c.parse().ok()),
        limit,
    };
    let found = services
        .store
        .list_candidates(campaign_id(&path)?, status, &query)
        .await?;
    let next_cursor = (found.len() == limit as usize)
        .then(|| found.last().map(|c| c.number.to_string()))
        .flatten();
    let items: Vec<AdminCandidateView> = found.into_iter().map(Into::into).collect();
    Ok(HttpResponse::Ok().json(Page { items, next_cursor }))
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct ReasonBody {
    #[serde(default)]
    pub reason: String,
}

async fn change_status(
    services: &Services,
    staff: &Staff,
    path: (String, String),
    to: CandidateStatus,
    reason: &str,
) -> Result<HttpResponse, ApiError> {
    staff.require(RUNNERS)?;
    let candidate_id = parse_id(&path.1).ok_or(ApiError::NotFound)?;
    if to != CandidateStatus::Approved && !(1..=500).contains(&reason.trim().chars().count()) {
        return Err(ApiError::invalid("reason", "请填写原因（不超过500字）"));
    }
    let campaign = campaign_id(&path.0)?;
    let c = services
        .store
        .change_candidate_status(&staff.actor(), campaign, candidate_id, to, reason.trim())
        .await?;
    services.campaigns.forget(campaign).await;
    tracing::info!(
        candidate_id,
        status = to.as_str(),
        "candidate status changed"
    );
    Ok(HttpResponse::Ok().json(AdminCandidateView::from(c)))
}

/// Approves a nominated candidate: it is shown to citizens and can be voted for.
#[utoipa::path(tag = "staff", params(("campaign_id" = String, Path), ("candidate_id" = String, Path)), responses(
    (status = 200, body = AdminCandidateView),
    (status = 409, description = "`invalid_status_change`"),
), security(("staff" = [])))]
#[post("/admin/campaigns/{campaign_id}/candidates/{candidate_id}/approve")]
pub async fn approve(
    services: web::Data<Services>,
    staff: Staff,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    change_status(
        &services,
        &staff,
        path.into_inner(),
        CandidateStatus::Approved,
        "",
    )
    .await
}

/// Rejects a nominated candidate, with a reason.
#[utoipa::path(tag = "staff", params(("campaign_id" = String, Path), ("candidate_id" = String, Path)), request_body = ReasonBody, responses((status = 200, body = AdminCandidateView), (status = 409), (status = 422)), security(("staff" = [])))]
#[post("/admin/campaigns/{campaign_id}/candidates/{candidate_id}/reject")]
pub async fn reject(
    services: web::Data<Services>,
    staff: Staff,
    path: web::Path<(String, String)>,
    body: web::Json<ReasonBody>,
) -> Result<HttpResponse, ApiError> {
    change_status(
        &services,
        &staff,
        path.into_inner(),
        CandidateStatus::Rejected,
        &body.reason,
    )
    .await
}

/// Withdraws an approved candidate, with a reason; its votes stay on the record.
#[utoipa::path(tag = "staff", params(("campaign_id" = String, Path), ("candidate_id" = String, Path)), request_body = ReasonBody, responses((status = 200, body = AdminCandidateView), (status = 409), (status = 422)), security(("staff" = [])))]
#[post("/admin/campaigns/{campaign_id}/candidates/{candidate_id}/withdraw")]
pub async fn withdraw(
    services: web::Data<Services>,
    staff: Staff,
    path: web::Path<(String, String)>,
    body: web::Json<ReasonBody>,
) -> Result<HttpResponse, ApiError> {
    change_status(
        &services,
        &staff,
        path.into_inner(),
        CandidateStatus::Withdrawn,
        &body.reason,
    )
    .await
}

/// Reads an upload up to `IMPORT_LIMIT` bytes.
pub(super) async fn read_upload(
    req: &HttpRequest,
    mut payload: web::Payload,
) -> Result<Vec<u8>, ApiError> {
    let content_type = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ![
        "text/csv",
        "text/plain",
        "application/octet-stream",
        "application/vnd.ms-excel",
    ]
    .iter()
    .any(|t| content_type.starts_with(t))
    {
        return Err(ApiError::UnsupportedMediaType);
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| ApiError::MalformedJson)?;
        if bytes.len() + chunk.len() > IMPORT_LIMIT {
            return Err(ApiError::PayloadTooLarge {
                limit: IMPORT_LIMIT,
            });
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

impl From<ImportFailed> for ApiError {
    fn from(e: ImportFailed) -> Self {
        match e {
            ImportFailed::Store(s) => s.into(),
            ImportFailed::File(f) => {
                let rows = f.row_errors().to_vec();
                let message = match &f {
                    ImportError::Rows(_) => format!("{}，整个文件未导入，请修改后重新上传", f),
                    _ => f.to_string(),
                };
                ApiError::ImportRejected { message, rows }
            }
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct Imported<T> {
    pub imported: usize,
    pub items: Vec<T>,
}

/// Imports candidates from a CSV file (UTF-8 with or without BOM, or GBK) sent as the body
/// with `Content-Type: text/csv`. Columns: 类别, 姓名, 单位, 科室, 职称, 照片, 事迹 (or their
/// English names). One bad row rejects the whole file: 422 `import_rejected` with
/// `error.rows` = `[{"row", "reason"}]`, rows numbered as a spreadsheet shows them.
#[utoipa::path(tag = "staff", params(("campaign_id" = String, Path)), request_body(content = String, content_type = "text/csv"), responses(
    (status = 201, body = Imported<AdminCandidateView>),
    (status = 422, description = "`import_rejected` with `error.rows`"),
), security(("staff" = [])))]
#[post("/admin/campaigns/{campaign_id}/candidates/import")]
pub async fn import_candidates(
    services: web::Data<Services>,
    staff: Staff,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    staff.require(RUNNERS)?;
    let id = campaign_id(&path)?;
    campaign_of_kind(&services, id, Kind::Selection).await?;
    let bytes = read_upload(&req, payload).await?;
    let added = imports::candidates(services.store.as_ref(), &staff.actor(), id, &bytes).await?;
    let items: Vec<AdminCandidateView> = added.into_iter().map(Into::into).collect();
    Ok(HttpResponse::Created().json(Imported {
        imported: items.len(),
        items,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetBody {
    pub name: String,
    /// The parent unit; absent or null for a top-level unit.
    pub parent_id: Option<String>,
    /// A code of the organizer's (e.g. 机构编码); generated when absent.
    pub code: Option<String>,
}

/// Adds a unit or department under evaluation.
#[utoipa::path(tag = "staff", params(("campaign_id" = String, Path)), request_body = TargetBody, responses(
    (status = 201, body = TargetView),
    (status = 409, description = "`wrong_campaign_kind` or `already_exists`"),
), security(("staff" = [])))]
#[post("/admin/campaigns/{campaign_id}/targets")]
pub async fn add_target(
    services: web::Data<Services>,
    staff: Staff,
    path: web::Path<String>,
    body: web::Json<TargetBody>,
) -> Result<HttpResponse, ApiError> {
    staff.require(RUNNERS)?;
    let b = body.into_inner();
    let name = b.name.trim().to_string();
    if !(1..=100).contains(&name.chars().count()) {
        return Err(ApiError::invalid("name", "名称须为1至100个字"));
    }
    let parent = match b.parent_id.as_deref().filter(|p| !p.is_empty()) {
        Some(p) => TargetParent::Id(
            parse_id(p).ok_or_else(|| ApiError::invalid("parent_id", "上级对象不存在"))?,
        ),
        None => TargetParent::Root,
    };
    let code = match b
        .code
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty())
    {
        Some(c)
            if c.len() <= 50
                && c.bytes()
                    .all(|x| x.is_ascii_alphanumeric() || b"-_.".contains(&x)) =>
        {
            c
        }
        Some(_) => {
            return Err(ApiError::invalid(
                "code",
                "编码须为不超过50位的字母、数字或 - _ .",
            ));
        }
        None => {
            let mut bytes = [0u8; 5];
            rand::fill(&mut bytes);
            format!("t-{}", hex::encode(bytes))
        }
    };
    let id = campaign_id(&path)?;
    campaign_of_kind(&services, id, Kind::Evaluation).await?;
    let mut added = services
        .store
        .add_targets(
            &staff.actor(),
            id,
            &[NewTarget { code, name, parent }],
            None,
        )
        .await?;
    let t = added
        .pop()
        .ok_or_else(|| ApiError::Internal("no target added".into()))?;
    Ok(HttpResponse::Created().json(TargetView::from(t)))
}

/// Imports units and departments from a CSV file (columns 编码, 名称, 上级编码), parents
/// before their children; all or nothing, as for candidates.
#[utoipa::path(tag = "staff", params(("campaign_id" = String, Path)), request_body(content = String, content_type = "text/csv"), responses(
    (status = 201, body = Imported<TargetView>),
    (status = 422, description = "`import_rejected` with `error.rows`"),
), security(("staff" = [])))]
#[post("/admin/campaigns/{campaign_id}/targets/import")]
pub async fn import_targets(
    services: web::Data<Services>,
    staff: Staff,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    staff.require(RUNNERS)?;
    let id = campaign_id(&path)?;
    campaign_of_kind(&services, id, Kind::Evaluation).await?;
    let bytes = read_upload(&req, payload).await?;
    let added = imports::targets(services.store.as_ref(), &staff.actor(), id, &bytes).await?;
    let items: Vec<TargetView> = added.into_iter().map(Into::into).collect();
    Ok(HttpResponse::Created().json(Imported {
        imported: items.len(),
        items,
    }))
}
