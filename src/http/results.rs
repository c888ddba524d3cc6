//! Results of a selection: the experts' review (评审), the draft for the publicity period
//! (公示) with its objections, publication, and the frozen results for everyone (JSON, CSV).
//! See `docs/results.md`.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::annual::csv_response;
use super::campaigns::visible_campaign;
use super::error::ApiError;
use super::extract::Staff;
use super::{Page, id_as_string, parse_id};
use crate::app::Services;
use crate::app::results::{self as app, ObjectionInput, ResultsError};
use crate::domain::campaign::Kind;
use crate::domain::results::{Criterion, Results, Stage};
use crate::domain::staff::Role;
use crate::store::{Campaign, ExpertScore, Frozen, Objection};

const RUNNERS: &[Role] = &[Role::Admin, Role::Organizer];
const READERS: &[Role] = &[Role::Admin, Role::Organizer, Role::Auditor];

impl From<ResultsError> for ApiError {
    fn from(e: ResultsError) -> Self {
        match e {
            ResultsError::Refused(r) => ApiError::Conflict {
                code: r.code(),
                message: r.message().into(),
            },
            ResultsError::Store(s) => s.into(),
        }
    }
}

/// The selection campaign a staff path names; 409 `wrong_campaign_kind` for an evaluation.
async fn selection(services: &Services, raw: &str) -> Result<Campaign, ApiError> {
    let id = parse_id(raw).ok_or(ApiError::NotFound)?;
    let c = services.store.get_campaign(id).await?;
    if c.kind != Kind::Selection {
        return Err(ApiError::Conflict {
            code: "wrong_campaign_kind",
            message: "该功能只适用于评选活动".into(),
        });
    }
    Ok(c)
}

/// The campaign a staff path names, of either kind.
async fn campaign(services: &Services, raw: &str) -> Result<Campaign, ApiError> {
    let id = parse_id(raw).ok_or(ApiError::NotFound)?;
    Ok(services.store.get_campaign(id).await?)
}

/// Frozen results with what proves them: the hash of the results and the chain's head
/// just before the entry that froze them.
#[derive(Serialize, ToSchema)]
pub struct FrozenView {
    #[serde(serialize_with = "id_as_string")]
    #[schema(value_type = String)]
    pub campaign_id: i64,
    pub stage: Stage,
    pub results: Results,
    /// `sha256(canonical(results))`, hex.
    pub snapshot_hash: String,
    pub audit_head: HeadView,
    /// The seq of the chain entry that froze the results.
    pub seq: i64,
    /// When they were frozen (for the final stage: published).
    pub published_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct HeadView {
    pub seq: i64,
    pub hash: String,
}

impl From<Frozen> for FrozenView {
    fn from(f: Frozen) -> Self {
        Self {
            campaign_id: f.campaign_id,
            stage: f.results.stage,
            results: f.results,
            snapshot_hash: f.snapshot_hash,
            audit_head: HeadView {
                seq: f.head_seq,
                hash: f.head_hash,
            },
            seq: f.seq,
            published_at: f.frozen_at,
        }
    }
}

// ---- Experts -------------------------------------------------------------------------

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignBody {
    /// An account of the `expert` role.
    pub username: String,
    /// The categories the expert scores (replacing earlier ones; empty removes the expert).
    pub category_ids: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ExpertView {
    #[serde(serialize_with = "id_as_string")]
    #[schema(value_type = String)]
    pub staff_id: i64,
    pub username: String,
    pub category_ids: Vec<String>,
    /// Approved candidates of the expert's categories.
    pub expected: usize,
    pub scored: usize,
    /// Candidates still to score: who has not finished.
    pub missing: Vec<String>,
}

/// Sets an expert's categories; on the record.
#[utoipa::path(tag = "results", params(("campaign_id" = String, Path)), request_body = AssignBody, responses(
    (status = 200, body = ExpertView),
    (status = 404, description = "no such account"),
    (status = 422, description = "`invalid_request`: not an expert account, or an unknown category"),
), security(("staff" = [])))]
#[post("/admin/campaigns/{campaign_id}/experts")]
pub async fn assign(
    services: web::Data<Services>,
    staff: Staff,
    path: web::Path<String>,
    body: web::Json<AssignBody>,
) -> Result<HttpResponse, ApiError> {
    staff.require(RUNNERS)?;
    let campaign = selection(&services, &path).await?;
    let account = services
        .store
        .find_staff(body.username.trim())
        .await?
        .ok_or(ApiError::NotFound)?;
    let ids = body
        .category_ids
        .iter()
        .map(|raw| parse_id(raw).ok_or_else(|| ApiError::invalid("category_ids", "类别编号无效")))
        .collect::<Result<Vec<_>, _>>()?;
    let a = services
        .store
        .assign_expert(
            &staff.actor(),
            campaign.id,
            account.id,
            &ids,
            services.now(),
        )
        .await?;
    let progress = app::progress(&services, campaign.id).await?;
    let p = progress.into_iter().find(|p| p.staff_id == a.staff_id);
    Ok(HttpResponse::Ok().json(ExpertView {
        staff_id: a.staff_id,
        username: a.username,
        category_ids: a.category_ids.iter().map(i64::to_string).collect(),
        expected: p.as_ref().map_or(0, |p| p.expected),
        scored: p.as_ref().map_or(0, |p| p.expected - p.missing.len()),
        missing: p
            .map(|p| p.missing.iter().map(i64::to_string).collect())
            .unwrap_or_default(),
    }))
}

/// The experts and how far each has scored.
#[utoipa::path(tag = "results", params(("campaign_id" = String, Path)), responses(
    (status = 200, body = Page<ExpertView>),
), security(("staff" = [])))]
#[get("/admin/campaigns/{campaign_id}/experts")]
pub async fn experts(
    services: web::Data<Services>,
    staff: Staff,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    staff.require(READERS)?;
    let campaign = selection(&services, &path).await?;
    let items = app::progress(&services, campaign.id)
        .await?
        .into_iter()
        .map(|p| ExpertView {
            staff_id: p.staff_id,
            username: p.username,
            category_ids: p.category_ids.iter().map(i64::to_string).collect(),
            expected: p.expected,
            scored: p.expected - p.missing.len(),
            missing: p.missing.iter().map(i64::to_string).collect(),
        })
        .collect();
    Ok(HttpResponse::Ok().json(Page {
        items,
        next_cursor: None,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct ScoreView {
    #[serde(serialize_with = "id_as_string")]
    #[schema(value_type = String)]
    pub candidate_id: i64,
    pub points: BTreeMap<String, i64>,
    pub total: i64,
    pub seq: i64,
    /// The score's entry hash.
    pub receipt: String,
    pub scored_at: DateTime<Utc>,
}

impl From<ExpertScore> for ScoreView {
    fn from(s: ExpertScore) -> Self {
        Self {
            candidate_id: s.candidate_id,
            points: s.points,
            total: s.total,
            seq: s.seq,
            receipt: s.receipt,
            scored_at: s.scored_at,
        }
    }
}

/// A candidate as an expert sees it: the profile, never the votes.
#[derive(Serialize, ToSchema)]
pub struct SheetCandidate {
    #[serde(serialize_with = "id_as_string")]
    #[schema(value_type = String)]
    pub id: i64,
    #[serde(serialize_with = "id_as_string")]
    #[schema(value_type = String)]
    pub category_id: i64,
    pub number: i64,
    pub name: String,
    pub unit: String,
    pub department: String,
    pub title: String,
    pub photo_url: String,
    pub story: String,
    /// The expert's own score, once submitted.
    pub my_score: Option<ScoreView>,
}

#[derive(Serialize, ToSchema)]
pub struct SheetView {
    pub criteria: Vec<Criterion>,
    pub candidates: Vec<SheetCandidate>,
}

/// An expert's scoring sheet: the candidates of their categories and their own scores. No
/// counts: experts score without seeing the public vote.
#[utoipa::path(tag = "results", params(("campaign_id" = String, Path)), responses(
    (status = 200, body = SheetView),
    (status = 403, description = "not an expert account"),
), security(("staff" = [])))]
#[get("/admin/campaigns/{campaign_id}/expert/sheet")]
pub async fn sheet(
    services: web::Data<Services>,
    staff: Staff,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    staff.require(&[Role::Expert])?;
    let campaign = selection(&services, &path).await?;
    let sheet = app::sheet(&services, campaign.id, staff.session.staff_id).await?;
    let mut scores: BTreeMap<i64, ExpertScore> = sheet
        .scores
        .into_iter()
        .map(|s| (s.candidate_id, s))
        .collect();
    let candidates = sheet
        .candidates
        .into_iter()
        .map(|c| SheetCandidate {
            my_score: scores.remove(&c.id).map(ScoreView::from),
            id: c.id,
            category_id: c.category_id,
            number: c.number,
            name: c.name,
            unit: c.unit,
            department: c.department,
            title: c.title,
            photo_url: c.photo_url,
            story: c.story,
        })
        .collect();
    Ok(HttpResponse::Ok().json(SheetView {
        criteria: campaign.rules.results.criteria,
        candidates,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScoreBody {
    pub candidate_id: String,
    /// Points per criterion key, each from 0 to the criterion's `max`.
    pub points: BTreeMap<String, i64>,
}

/// Submits an expert's score of a candidate, once: it cannot be changed afterwards.
#[utoipa::path(tag = "results", params(("campaign_id" = String, Path)), request_body = ScoreBody, responses(
    (status = 201, body = ScoreView),
    (status = 403, description = "not an expert account"),
    (status = 404, description = "the candidate is not in the expert's categories"),
    (status = 409, description = "`score_already_submitted`, `scoring_closed` (results frozen), `campaign_published`"),
    (status = 422, description = "`invalid_request`: a criterion missing, unknown or out of range"),
), security(("staff" = [])))]
#[post("/admin/campaigns/{campaign_id}/expert/scores")]
pub async fn score(
    services: web::Data<Services>,
    staff: Staff,
    path: web::Path<String>,
    body: web::Json<ScoreBody>,
) -> Result<HttpResponse, ApiError> {
    staff.require(&[Role::Expert])?;
    let campaign = selection(&services, &path).await?;
    let body = body.into_inner();
    let candidate_id = parse_id(&body.candidate_id)
        .ok_or_else(|| ApiError::invalid("candidate_id", "候选人编号无效"))?;
    let s = app::score(
        &services,
        &staff.actor(),
        &campaign,
        staff.session.staff_id,
        candidate_id,
        body.points,
    )
    .await?;
    Ok(HttpResponse::Created().json(ScoreView::from(s)))
}

// ---- Freezing and publication ----------------------------------------------------------

/// What the results would be now, from the ledger (organizers, before freezing them).
#[utoipa::path(tag = "results", params(("campaign_id" = String, Path)), responses(
    (status = 200, body = Results),
), security(("staff" = [])))]
#[get("/admin/campaigns/{campaign_id}/results/preview")]
pub async fn preview(
    services: web::Data<Services>,
    staff: Staff,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    staff.require(READERS)?;
    let campaign = campaign(&services, &path).await?;
    let inputs = services.store.result_inputs(campaign.id).await?;
    Ok(HttpResponse::Ok().json(app::compute(Stage::Draft, &inputs)?))
}

/// Freezes the draft result for the publicity period (拟表彰名单); again to replace it.
#[utoipa::path(tag = "results", params(("campaign_id" = String, Path)), responses(
    (status = 200, body = FrozenView),
    (status = 409, description = "`voting_not_ended`, `no_publicity_phase`, `publicity_ended`, `campaign_published`"),
), security(("staff" = [])))]
#[post("/admin/campaigns/{campaign_id}/results/draft")]
pub async fn freeze_draft(
    services: web::Data<Services>,
    staff: Staff,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    staff.require(RUNNERS)?;
    let campaign = campaign(&services, &path).await?;
    let frozen = app::freeze(&services, &staff.actor(), campaign.id, Stage::Draft).await?;
    Ok(HttpResponse::Ok().json(FrozenView::from(frozen)))
}

/// Publishes the final results: a snapshot with its hash and the audit head, written as a
/// chain entry; afterwards every write to the campaign answers 409 `campaign_published`.
#[utoipa::path(tag = "results", params(("campaign_id" = String, Path)), responses(
    (status = 200, body = FrozenView),
    (status = 409, description = "`voting_not_ended`, `draft_not_frozen`, `publicity_not_ended`, `objections_pending`, `results_changed_since_draft`, `campaign_published`"),
), security(("staff" = [])))]
#[post("/admin/campaigns/{campaign_id}/results/publish")]
pub async fn publish(
    services: web::Data<Services>,
    staff: Staff,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    staff.require(RUNNERS)?;
    let campaign = campaign(&services, &path).await?;
    let frozen = app::freeze(&services, &staff.actor(), campaign.id, Stage::Final).await?;
    Ok(HttpResponse::Ok().json(FrozenView::from(frozen)))
}

/// The published results, for everyone.
pub async fn published(services: &Services, raw: &str) -> Result<Frozen, ApiError> {
    let campaign = visible_campaign(services, raw).await?;
    services
        .store
        .frozen_results(campaign.id, Stage::Final)
        .await?
        .ok_or_else(|| {
            ApiError::refused(
                StatusCode::NOT_FOUND,
                "results_not_published",
                "评选结果尚未发布",
            )
        })
}

/// The draft in publicity, for everyone (404 `draft_not_frozen` before).
pub async fn draft(services: &Services, raw: &str) -> Result<Frozen, ApiError> {
    let campaign = visible_campaign(services, raw).await?;
    services
        .store
        .frozen_results(campaign.id, Stage::Draft)
        .await?
        .ok_or_else(|| {
            ApiError::refused(
                StatusCode::NOT_FOUND,
                "draft_not_frozen",
                "拟表彰名单尚未公示",
            )
        })
}

#[utoipa::path(tag = "citizen", params(("campaign_id" = String, Path)), responses(
    (status = 200, body = FrozenView),
    (status = 404, description = "`results_not_published`"),
))]
#[get("/campaigns/{campaign_id}/results")]
pub async fn published_results(
    services: web::Data<Services>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(FrozenView::from(published(&services, &path).await?)))
}

/// The latest draft frozen for the publicity period.
#[utoipa::path(tag = "citizen", params(("campaign_id" = String, Path)), responses(
    (status = 200, body = FrozenView),
    (status = 404, description = "`draft_not_frozen`"),
))]
#[get("/campaigns/{campaign_id}/results/draft")]
pub async fn results_draft(
    services: web::Data<Services>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(FrozenView::from(draft(&services, &path).await?)))
}

/// The published results as CSV (UTF-8 with a byte-order mark, for Excel).
#[utoipa::path(tag = "citizen", params(("campaign_id" = String, Path)), responses(
    (status = 200, content_type = "text/csv"),
    (status = 404, description = "`results_not_published`"),
))]
#[get("/campaigns/{campaign_id}/results.csv")]
pub async fn results_csv(
    services: web::Data<Services>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let f = published(&services, &path).await?;
    if let Some(ev) = &f.results.evaluation {
        let rows = ev.targets.iter().map(|t| {
            vec![
                t.code.clone(),
                t.name.clone(),
                t.parent_id.map(|p| p.to_string()).unwrap_or_default(),
                t.counts.rated.to_string(),
                t.counts.satisfied.to_string(),
                t.counts.basically_satisfied.to_string(),
                t.counts.unsatisfied.to_string(),
                t.satisfaction_rate.clone().unwrap_or_default(),
                t.weighted_score.clone().unwrap_or_default(),
            ]
        });
        return csv_response(
            &format!("results-{}.csv", f.campaign_id),
            &[
                "编码",
                "名称",
                "上级",
                "评价数",
                "满意",
                "基本满意",
                "不满意",
                "满意率",
                "加权得分",
            ],
            rows,
        );
    }
    let rows = f.results.categories.iter().flat_map(|cat| {
        cat.candidates.iter().map(move |c| {
            vec![
                cat.name.clone(),
                c.rank.to_string(),
                c.number.to_string(),
                c.name.clone(),
                c.unit.clone(),
                c.votes.to_string(),
                c.vote_points.clone(),
                c.expert_count.to_string(),
                c.expert_points.clone().unwrap_or_default(),
                c.score.clone(),
                if c.winner { "是" } else { "否" }.to_string(),
            ]
        })
    });
    csv_response(
        &format!("results-{}.csv", f.campaign_id),
        &[
            "类别",
            "名次",
            "编号",
            "姓名",
            "单位",
            "有效票数",
            "投票得分",
            "专家人数",
            "专家得分",
            "总分",
            "当选",
        ],
        rows,
    )
}

// ---- Objections -------------------------------------------------------------------------

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ObjectionBody {
    /// The candidate objected to, if any.
    pub candidate_id: Option<String>,
    /// The objector's name (optional).
    pub name: Option<String>,
    /// How to reach the objector (phone or e-mail): required, seen by organizers only.
    pub contact: String,
    pub content: String,
}

#[derive(Serialize, ToSchema)]
pub struct ObjectionReceipt {
    #[serde(serialize_with = "id_as_string")]
    #[schema(value_type = String)]
    pub id: i64,
    /// The seq of the objection's chain entry.
    pub seq: i64,
    pub received_at: DateTime<Utc>,
}

fn optional_text(field: &str, v: Option<String>, max: usize) -> Result<Option<String>, ApiError> {
    match v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty()) {
        Some(s) if s.chars().count() > max => {
            Err(ApiError::invalid(field, format!("不能超过{max}个字")))
        }
        other => Ok(other),
    }
}

/// Submits an objection to the draft in publicity (公示异议). Name optional, contact
/// required; rate limited per address.
#[utoipa::path(tag = "citizen", params(("campaign_id" = String, Path)), request_body = ObjectionBody, responses(
    (status = 201, body = ObjectionReceipt),
    (status = 409, description = "`not_in_publicity`, `campaign_published`"),
    (status = 422, description = "`invalid_request` with the field"),
    (status = 429, description = "`rate_limited`"),
))]
#[post("/campaigns/{campaign_id}/objections")]
pub async fn submit_objection(
    services: web::Data<Services>,
    path: web::Path<String>,
    body: web::Json<ObjectionBody>,
) -> Result<HttpResponse, ApiError> {
    let campaign = visible_campaign(&services, &path).await?;
    let body = body.into_inner();
    let contact = body.contact.trim().to_string();
    if !(5..=100).contains(&contact.chars().count()) {
        return Err(ApiError::invalid(
            "contact",
            "请留下联系电话或邮箱，以便答复（5至100个字）",
        ));
    }
    let content = body.content.trim().to_string();
    if !(5..=2000).contains(&content.chars().count()) {
        return Err(ApiError::invalid("content", "异议内容须为5至2000个字"));
    }
    let candidate_id = match body.candidate_id.as_deref() {
        None | Some("") => None,
        Some(raw) => {
            Some(parse_id(raw).ok_or_else(|| ApiError::invalid("candidate_id", "候选人编号无效"))?)
        }
    };
    let o = app::object(
        &services,
        &campaign,
        ObjectionInput {
            candidate_id,
            name: optional_text("name", body.name, 50)?,
            contact,
            content,
        },
    )
    .await?;
    Ok(HttpResponse::Created().json(ObjectionReceipt {
        id: o.id,
        seq: o.seq,
        received_at: o.created_at,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct ObjectionView {
    #[serde(serialize_with = "id_as_string")]
    #[schema(value_type = String)]
    pub id: i64,
    pub candidate_id: Option<String>,
    pub name: Option<String>,
    pub contact: String,
    pub content: String,
    /// `open` or `answered`.
    pub status: String,
    /// `upheld` or `rejected`.
    pub verdict: Option<String>,
    pub answer: Option<String>,
    pub seq: i64,
    pub created_at: DateTime<Utc>,
    pub answered_at: Option<DateTime<Utc>>,
}

fn objection_view(services: &Services, o: Objection) -> ObjectionView {
    let (name, contact) = app::open_contact(services, &o);
    ObjectionView {
        id: o.id,
        candidate_id: o.candidate_id.map(|c| c.to_string()),
        name,
        contact,
        content: o.content,
        status: o.status,
        verdict: o.verdict,
        answer: o.answer,
        seq: o.seq,
        created_at: o.created_at,
        answered_at: o.answered_at,
    }
}

/// The objections, with the objectors' contacts (organizers only).
#[utoipa::path(tag = "results", params(("campaign_id" = String, Path)), responses(
    (status = 200, body = Page<ObjectionView>),
), security(("staff" = [])))]
#[get("/admin/campaigns/{campaign_id}/objections")]
pub async fn objections(
    services: web::Data<Services>,
    staff: Staff,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    staff.require(RUNNERS)?;
    let campaign = campaign(&services, &path).await?;
    let items = services
        .store
        .list_objections(campaign.id)
        .await?
        .into_iter()
        .map(|o| objection_view(&services, o))
        .collect();
    Ok(HttpResponse::Ok().json(Page {
        items,
        next_cursor: None,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnswerBody {
    /// `upheld` (the objection holds) or `rejected`.
    pub verdict: String,
    /// The answer, on the record.
    pub answer: String,
}

/// Answers an objection, once, on the record.
#[utoipa::path(tag = "results", params(("campaign_id" = String, Path), ("objection_id" = String, Path)), request_body = AnswerBody, responses(
    (status = 200, body = ObjectionView),
    (status = 409, description = "`objection_already_answered`, `campaign_published`"),
    (status = 422, description = "`invalid_request` with the field"),
), security(("staff" = [])))]
#[post("/admin/campaigns/{campaign_id}/objections/{objection_id}/answer")]
pub async fn answer(
    services: web::Data<Services>,
    staff: Staff,
    path: web::Path<(String, String)>,
    body: web::Json<AnswerBody>,
) -> Result<HttpResponse, ApiError> {
    staff.require(RUNNERS)?;
    let (campaign_raw, objection_raw) = path.into_inner();
    let campaign = campaign(&services, &campaign_raw).await?;
    let objection_id = parse_id(&objection_raw).ok_or(ApiError::NotFound)?;
    let upheld = match body.verdict.as_str() {
        "upheld" => true,
        "rejected" => false,
        _ => {
            return Err(ApiError::invalid(
                "verdict",
                "结论须为 upheld（异议成立）或 rejected（异议不成立）",
            ));
        }
    };
    let text = body.answer.trim();
    if !(2..=2000).contains(&text.chars().count()) {
        return Err(ApiError::invalid("answer", "答复须为2至2000个字"));
    }
    let o = services
        .store
        .answer_objection(
            &staff.actor(),
            campaign.id,
            objection_id,
            upheld,
            text,
            services.now(),
        )
        .await?;
    tracing::info!(
        campaign_id = campaign.id,
        objection_id,
        upheld,
        "objection answered"
    );
    Ok(HttpResponse::Ok().json(objection_view(&services, o)))
}
