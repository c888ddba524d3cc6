//! Evaluations: citizens and staff raters rate targets; organizers read the scores; units
//! answer the opinions that unsatisfied ratings with a comment became.

use std::collections::{BTreeMap, HashMap};

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::ApiError;
use super::extract::{Citizen, Staff, idempotency_key};
use super::{Page, parse_id};
use crate::app::Services;
use crate::app::rating::{self, Rate, RateError, Rated};
use crate::domain::rating::{Level, RaterGroup};
use crate::domain::score::{self, LevelCounts};
use crate::domain::staff::Role;
use crate::store::{Opinion, OpinionAnswer, OpinionQuery, StoreError};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RatingBody {
    pub target_id: String,
    /// `satisfied` (满意), `basically_satisfied` (基本满意) or `unsatisfied` (不满意).
    pub level: String,
    /// Up to 500 characters. An unsatisfied rating with a comment becomes an opinion that the
    /// target's unit answers.
    pub comment: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct RatingReceipt {
    /// The hash of the rating's audit entry.
    pub receipt: String,
    pub seq: i64,
    pub target_id: String,
    pub level: String,
    /// The rater group the rating counts in.
    pub group: String,
    /// The rating period (`2026-11`, `2026-Q4`, `2026`).
    pub period: String,
    pub status: String,
    pub rated_at: DateTime<Utc>,
    /// The opinion it became, if any.
    pub opinion_id: Option<String>,
}

impl From<crate::store::Rating> for RatingReceipt {
    fn from(r: crate::store::Rating) -> Self {
        Self {
            receipt: r.receipt,
            seq: r.seq,
            target_id: r.target_id.to_string(),
            level: r.level,
            group: r.group,
            period: r.period,
            status: r.status,
            rated_at: r.rated_at,
            opinion_id: r.opinion_id.map(|i| i.to_string()),
        }
    }
}

fn read_body(body: &RatingBody) -> Result<(i64, Level, String), ApiError> {
    let target = parse_id(&body.target_id)
        .ok_or_else(|| ApiError::invalid("target_id", "请选择评议对象"))?;
    let level = Level::parse(&body.level).ok_or_else(|| {
        ApiError::invalid(
            "level",
            "评价须为 satisfied（满意）、basically_satisfied（基本满意）或 unsatisfied（不满意）",
        )
    })?;
    let comment = crate::domain::rating::comment(body.comment.as_deref())
        .map_err(|m| ApiError::invalid("comment", m))?;
    Ok((target, level, comment))
}

/// Rates for `voter` in `group` and answers 201 with the receipt (the first answer again, for
/// a repeated `Idempotency-Key`).
async fn rate_for(
    services: &Services,
    voter: &str,
    group: RaterGroup,
    req: &HttpRequest,
    campaign: &str,
    body: &RatingBody,
) -> Result<HttpResponse, ApiError> {
    let campaign_id = parse_id(campaign).ok_or(ApiError::NotFound)?;
    let key = idempotency_key(req)?;
    let (target_id, level, comment) = read_body(body)?;
    let done: Rated = rating::rate(
        services,
        Rate {
            voter,
            group,
            campaign_id,
            target_id,
            level,
            comment,
            idempotency_key: key.as_deref(),
            survey_record_id: None,
            now: services.now(),
        },
    )
    .await?;
    let mut response = HttpResponse::Created();
    if done.replayed {
        response.insert_header(("idempotent-replayed", "true"));
    }
    Ok(response.json(RatingReceipt::from(done.rating)))
}

/// A citizen rates a target (group `public`): once per target per period.
#[utoipa::path(tag = "citizen", params(("campaign_id" = String, Path), ("Idempotency-Key" = Option<String>, Header)), request_body = RatingBody, responses(
    (status = 201, body = RatingReceipt),
    (status = 409, description = "`already_rated` (this target, this period) or `voting_closed`"),
    (status = 422, description = "`invalid_request` with the field, or `idempotency_key_reused`"),
    (status = 429, description = "`daily_quota_exhausted` (with `resets_at`) or `rate_limited`"),
), security(("citizen" = [])))]
#[post("/campaigns/{campaign_id}/ratings")]
pub async fn rate_as_citizen(
    services: web::Data<Services>,
    citizen: Citizen,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<RatingBody>,
) -> Result<HttpResponse, ApiError> {
    let voter = citizen.voter_id.as_str();
    rate_for(&services, voter, RaterGroup::Public, &req, &path, &body).await
}

/// A staff rater (party member, leader or supervisor account) rates a target in its group.
#[utoipa::path(tag = "staff", params(("campaign_id" = String, Path), ("Idempotency-Key" = Option<String>, Header)), request_body = RatingBody, responses(
    (status = 201, body = RatingReceipt),
    (status = 403, description = "the account is not a rater"),
    (status = 409, description = "`already_rated` or `voting_closed`"),
), security(("staff" = [])))]
#[post("/admin/campaigns/{campaign_id}/ratings")]
pub async fn rate_as_staff(
    services: web::Data<Services>,
    staff: Staff,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<RatingBody>,
) -> Result<HttpResponse, ApiError> {
    let group = staff.session.rater_group.ok_or(ApiError::Forbidden)?;
    let voter = format!("staff:{}", staff.session.staff_id);
    rate_for(&services, &voter, group, &req, &path, &body).await
}

impl From<RateError> for ApiError {
    fn from(e: RateError) -> Self {
        let when = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        match e {
            RateError::NotFound => Self::NotFound,
            RateError::VotingClosed => {
                Self::refused(StatusCode::CONFLICT, "voting_closed", "当前不在评议时间内")
            }
            RateError::UnknownTarget => Self::invalid("target_id", "评议对象不存在"),
            RateError::AlreadyRated { period } => Self::refused(
                StatusCode::CONFLICT,
                "already_rated",
                "您在本期已评价过该对象，感谢参与",
            )
            .with("period", period),
            RateError::DailyExhausted { resets_at } => Self::refused(
                StatusCode::TOO_MANY_REQUESTS,
                "daily_quota_exhausted",
                "今日评价次数已用完，请明天再来",
            )
            .with("resets_at", when(resets_at)),
            RateError::SurveyAnswered => Self::refused(
                StatusCode::CONFLICT,
                "survey_already_answered",
                "您已完成本次回访评价，感谢参与",
            ),
            RateError::KeyReused => Self::refused(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "该请求编号已用于另一次评价",
            ),
            RateError::RateLimited(wait) => Self::rate_limited(wait),
            RateError::Store(s) => match s {
                StoreError::Database(_) | StoreError::Unavailable(_) => {
                    tracing::error!(error = %s, "rating not recorded");
                    Self::Unavailable {
                        part: "database",
                        message: "评议服务暂时不可用，您的评价未被记录，请稍后再试",
                    }
                }
                other => other.into(),
            },
        }
    }
}

const SCORE_READERS: &[Role] = &[Role::Admin, Role::Organizer, Role::Auditor];

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ScoreQuery {
    /// One period (`2026-11`, `2026-Q4`, `2026`); all periods when left out.
    pub period: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct LevelTally {
    pub rated: u64,
    pub satisfied: u64,
    pub basically_satisfied: u64,
    pub unsatisfied: u64,
    /// (satisfied + basically_satisfied) / rated, 4 places; null when nothing was rated.
    #[schema(value_type = Option<String>)]
    pub satisfaction_rate: Option<Decimal>,
    /// Mean level points out of 100, 2 places.
    #[schema(value_type = Option<String>)]
    pub score: Option<Decimal>,
}

impl LevelTally {
    fn of(c: &LevelCounts, points: &score::LevelPoints) -> Self {
        Self {
            rated: c.rated(),
            satisfied: c.satisfied,
            basically_satisfied: c.basically_satisfied,
            unsatisfied: c.unsatisfied,
            satisfaction_rate: c.satisfaction_rate().map(score::round_rate),
            score: c.score(points).map(score::round_score),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct GroupScore {
    pub group: RaterGroup,
    pub channel: &'static str,
    pub weight: u32,
    #[serde(flatten)]
    pub tally: LevelTally,
}

#[derive(Serialize, ToSchema)]
pub struct TargetScore {
    pub target_id: String,
    pub code: String,
    pub name: String,
    pub parent_id: Option<String>,
    /// All groups together.
    #[serde(flatten)]
    pub tally: LevelTally,
    /// Σ weight × group score / Σ weight over the groups that rated, 2 places.
    #[schema(value_type = Option<String>)]
    pub weighted_score: Option<Decimal>,
    pub groups: Vec<GroupScore>,
}

/// Every target's scores in the periods matching `period` (all when `None`).
async fn target_scores(
    services: &Services,
    id: i64,
    period: Option<&str>,
) -> Result<Vec<TargetScore>, ApiError> {
    let campaign = services.store.get_campaign(id).await?;
    let rules = &campaign.rules.evaluation;
    let counts = services.store.rating_counts(id, period).await?;
    let mut by_target: HashMap<i64, HashMap<RaterGroup, LevelCounts>> = HashMap::new();
    for c in counts {
        let (Some(group), Some(level)) = (RaterGroup::parse(&c.group), Level::parse(&c.level))
        else {
            return Err(StoreError::Corrupt(format!("rating {} / {}", c.group, c.level)).into());
        };
        by_target
            .entry(c.target_id)
            .or_default()
            .entry(group)
            .or_default()
            .add(level, c.n);
    }
    let weights: Vec<(RaterGroup, u32)> =
        rules.groups.iter().map(|g| (g.group, g.weight)).collect();
    let empty = HashMap::new();
    Ok(services
        .store
        .list_targets(id)
        .await?
        .into_iter()
        .map(|t| {
            let groups = by_target.get(&t.id).unwrap_or(&empty);
            let mut all = LevelCounts::default();
            let mut per_group: BTreeMap<RaterGroup, GroupScore> = BTreeMap::new();
            for (group, c) in groups {
                all.add(Level::Satisfied, c.satisfied);
                all.add(Level::BasicallySatisfied, c.basically_satisfied);
                all.add(Level::Unsatisfied, c.unsatisfied);
                per_group.insert(
                    *group,
                    GroupScore {
                        group: *group,
                        channel: group.channel(),
                        weight: weights
                            .iter()
                            .find(|(g, _)| g == group)
                            .map_or(0, |(_, w)| *w),
                        tally: LevelTally::of(c, &rules.level_points),
                    },
                );
            }
            TargetScore {
                target_id: t.id.to_string(),
                code: t.code,
                name: t.name,
                parent_id: t.parent_id.map(|p| p.to_string()),
                tally: LevelTally::of(&all, &rules.level_points),
                weighted_score: score::weighted_score(groups, &weights, &rules.level_points)
                    .map(score::round_score),
                groups: per_group.into_values().collect(),
            }
        })
        .collect())
}

/// Per target: ratings per level, the satisfaction rate, each rater group's score and the
/// weighted score (see `docs/evaluations.md` for the formulas).
#[utoipa::path(tag = "staff", params(("campaign_id" = String, Path), ScoreQuery), responses((status = 200, body = Page<TargetScore>)), security(("staff" = [])))]
#[get("/admin/campaigns/{campaign_id}/scores")]
pub async fn scores(
    services: web::Data<Services>,
    staff: Staff,
    path: web::Path<String>,
    query: web::Query<ScoreQuery>,
) -> Result<HttpResponse, ApiError> {
    staff.require(SCORE_READERS)?;
    let id = parse_id(&path).ok_or(ApiError::NotFound)?;
    let items = target_scores(&services, id, query.period.as_deref()).await?;
    Ok(HttpResponse::Ok().json(Page {
        items,
        next_cursor: None,
    }))
}

/// The scores as CSV: one line per target and rater group, then one for all groups.
#[utoipa::path(tag = "staff", params(("campaign_id" = String, Path), ScoreQuery), responses((status = 200, content_type = "text/csv", description = "one line per target and group")), security(("staff" = [])))]
#[get("/admin/campaigns/{campaign_id}/scores.csv")]
pub async fn scores_csv(
    services: web::Data<Services>,
    staff: Staff,
    path: web::Path<String>,
    query: web::Query<ScoreQuery>,
) -> Result<HttpResponse, ApiError> {
    staff.require(SCORE_READERS)?;
    let id = parse_id(&path).ok_or(ApiError::NotFound)?;
    let items = target_scores(&services, id, query.period.as_deref()).await?;
    let header = [
        "对象编码",
        "对象名称",
        "评议群体",
        "权重",
        "评价数",
        "满意",
        "基本满意",
        "不满意",
        "满意率",
        "得分",
        "加权得分",
    ];
    let text = |d: Option<Decimal>| d.map(|d| d.to_string()).unwrap_or_default();
    let line =
        |t: &TargetScore, group: &str, weight: String, tally: &LevelTally, weighted: String| {
            vec![
                t.code.clone(),
                t.name.clone(),
                group.to_string(),
                weight,
                tally.rated.to_string(),
                tally.satisfied.to_string(),
                tally.basically_satisfied.to_string(),
                tally.unsatisfied.to_string(),
                text(tally.satisfaction_rate),
                text(tally.score),
                weighted,
            ]
        };
    let mut rows = Vec::new();
    for t in &items {
        for g in &t.groups {
            rows.push(line(
                t,
                g.group.as_str(),
                g.weight.to_string(),
                &g.tally,
                String::new(),
            ));
        }
        rows.push(line(
            t,
            "全部",
            String::new(),
            &t.tally,
            text(t.weighted_score),
        ));
    }
    let name = format!(
        "scores-{id}{}.csv",
        query
            .period
            .as_deref()
            .map(|p| format!("-{p}"))
            .unwrap_or_default()
    );
    super::annual::csv_response(&name, &header, rows.into_iter())
}

const OPINION_READERS: &[Role] = &[
    Role::Admin,
    Role::Organizer,
    Role::Auditor,
    Role::UnitHandler,
];

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OpinionParams {
    pub campaign_id: Option<String>,
    /// `open`, `answered` or `closed`.
    pub status: Option<String>,
    /// 1 to 100, default 50.
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// Opinions to answer: a unit handler sees its unit's only (the unit is the code of the top
/// of the rated target's tree); organizers, admins and auditors see all.
#[utoipa::path(tag = "staff", params(OpinionParams), responses((status = 200, body = Page<Opinion>)), security(("staff" = [])))]
#[get("/admin/opinions")]
pub async fn opinions(
    services: web::Data<Services>,
    staff: Staff,
    query: web::Query<OpinionParams>,
) -> Result<HttpResponse, ApiError> {
    staff.require(OPINION_READERS)?;
    let parse = |field: &str, raw: &Option<String>| {
        raw.as_deref()
            .map(|v| parse_id(v).ok_or_else(|| ApiError::invalid(field, "编号无效")))
            .transpose()
    };
    if let Some(s) = &query.status
        && !["open", "answered", "closed"].contains(&s.as_str())
    {
        return Err(ApiError::invalid(
            "status",
            "状态须为 open、answered 或 closed",
        ));
    }
    let limit = query.limit.unwrap_or(50).clamp(1, 100);
    let q = OpinionQuery {
        campaign_id: parse("campaign_id", &query.campaign_id)?,
        unit_code: own_unit(&staff)?,
        status: query.status.clone(),
        after_id: parse("cursor", &query.cursor)?,
        limit,
    };
    let items = services.store.list_opinions(&q).await?;
    let next_cursor = (items.len() == limit as usize)
        .then(|| items.last().map(|o| o.id.to_string()))
        .flatten();
    Ok(HttpResponse::Ok().json(Page { items, next_cursor }))
}

/// The unit a unit handler answers for (`None`: the caller sees every unit).
fn own_unit(staff: &Staff) -> Result<Option<String>, ApiError> {
    if staff.session.role != Role::UnitHandler {
        return Ok(None);
    }
    staff
        .session
        .unit
        .clone()
        .map(Some)
        .ok_or(ApiError::Forbidden)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnswerBody {
    /// Whether the opinion was found to be true (核实).
    pub verified: bool,
    /// What was done about it (整改), 1 to 1000 characters.
    pub action: String,
    /// Close it (销号): it takes no more answers.
    #[serde(default)]
    pub close: bool,
}

/// A unit answers an opinion (its handler, or an organizer), on the record.
#[utoipa::path(tag = "staff", params(("opinion_id" = String, Path)), request_body = AnswerBody, responses(
    (status = 200, body = Opinion),
    (status = 409, description = "`invalid_status_change`: the opinion is closed"),
), security(("staff" = [])))]
#[post("/admin/opinions/{opinion_id}/answer")]
pub async fn answer(
    services: web::Data<Services>,
    staff: Staff,
    path: web::Path<String>,
    body: web::Json<AnswerBody>,
) -> Result<HttpResponse, ApiError> {
    staff.require(&[Role::Admin, Role::Organizer, Role::UnitHandler])?;
    let id = parse_id(&path).ok_or(ApiError::NotFound)?;
    let action = body.action.trim();
    if !(1..=1000).contains(&action.chars().count()) {
        return Err(ApiError::invalid(
            "action",
            "请填写核实及处理情况（不超过1000字）",
        ));
    }
    let opinion = services.store.get_opinion(id).await?;
    if let Some(unit) = own_unit(&staff)?
        && unit != opinion.unit_code
    {
        // Another unit's opinion is not even there for this handler.
        return Err(ApiError::NotFound);
    }
    let answered = services
        .store
        .answer_opinion(
            &staff.actor(),
            id,
            &OpinionAnswer {
                verified: body.verified,
                action: action.to_string(),
                close: body.close,
                at: services.now(),
            },
        )
        .await?;
    tracing::info!(opinion_id = id, status = %answered.status, "opinion answered");
    Ok(HttpResponse::Ok().json(answered))
}
