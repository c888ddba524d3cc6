//! The "万人双评议" annual score for organizers: entering the components that come from
//! outside the service, and the ranked table (JSON and CSV).

use std::collections::BTreeMap;

use actix_web::{HttpResponse, get, post, web};
use chrono::Datelike;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::ApiError;
use super::extract::Staff;
use super::{Page, parse_id};
use crate::app::Services;
use crate::app::annual::{self, AnnualRow};
use crate::domain::campaign::Kind;
use crate::domain::score::{self, Band, Component};
use crate::domain::staff::Role;
use crate::store::{Campaign, EnteredPoints};

const RUNNERS: &[Role] = &[Role::Admin, Role::Organizer];
const READERS: &[Role] = &[Role::Admin, Role::Organizer, Role::Auditor];

/// The evaluation campaign a path names; 409 `wrong_campaign_kind` for a selection.
pub(super) async fn evaluation(services: &Services, raw: &str) -> Result<Campaign, ApiError> {
    let id = parse_id(raw).ok_or(ApiError::NotFound)?;
    let c = services.store.get_campaign(id).await?;
    if c.kind != Kind::Evaluation {
        return Err(ApiError::Conflict {
            code: "wrong_campaign_kind",
            message: "该功能只适用于评议活动".into(),
        });
    }
    Ok(c)
}

fn check_year(field: &str, year: &str) -> Result<(), ApiError> {
    let ok = year.len() == 4
        && year
            .parse::<u32>()
            .is_ok_and(|y| (2000..=2100).contains(&y));
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(field, "年份须为四位数字，例如 2026"))
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ComponentBody {
    /// A unit (a target at the top of its tree).
    pub target_id: String,
    pub year: String,
    /// `duties` (履职绩效), `hotline` (12345热线), `supervising_unit` (主管单位评价) or
    /// `inspection` (监督检查).
    pub component: String,
    /// A decimal string from 0 to the component's points, at most 2 places: `"14.5"`.
    pub points: String,
}

/// Enters (or corrects) a unit's points for a component from outside the service; each entry
/// is in the campaign's chain.
#[utoipa::path(tag = "staff", params(("campaign_id" = String, Path)), request_body = ComponentBody, responses(
    (status = 204),
    (status = 409, description = "`wrong_campaign_kind`"),
    (status = 422, description = "`invalid_request` with the field"),
), security(("staff" = [])))]
#[post("/admin/campaigns/{campaign_id}/annual/components")]
pub async fn enter(
    services: web::Data<Services>,
    staff: Staff,
    path: web::Path<String>,
    body: web::Json<ComponentBody>,
) -> Result<HttpResponse, ApiError> {
    staff.require(RUNNERS)?;
    let campaign = evaluation(&services, &path).await?;
    let target_id =
        parse_id(&body.target_id).ok_or_else(|| ApiError::invalid("target_id", "请选择单位"))?;
    check_year("year", &body.year)?;
    let component = Component::parse_entered(&body.component).ok_or_else(|| {
        ApiError::invalid(
            "component",
            "考评项须为 duties、hotline、supervising_unit 或 inspection",
        )
    })?;
    let weight = campaign
        .rules
        .evaluation
        .annual
        .entered()
        .into_iter()
        .find(|(c, _)| *c == component)
        .map_or(0, |(_, w)| w);
    let points: Decimal = body
        .points
        .trim()
        .parse()
        .map_err(|_| ApiError::invalid("points", "分值须为数字，例如 14.5"))?;
    score::check_points(points, weight).map_err(|m| ApiError::invalid("points", m))?;
    services
        .store
        .enter_component(
            &staff.actor(),
            &EnteredPoints {
                campaign_id: campaign.id,
                target_id,
                year: body.year.clone(),
                component,
                points: points.normalize(),
                at: services.now(),
            },
        )
        .await?;
    tracing::info!(
        campaign_id = campaign.id,
        target_id,
        component = component.as_str(),
        "annual points entered"
    );
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AnnualQuery {
    /// The year (default: this year in the campaign's time zone).
    pub year: Option<String>,
    /// Last year's evaluation campaign, to compare with (units matched by code).
    pub previous_campaign_id: Option<String>,
    /// The year of that campaign (default: the year before).
    pub previous_year: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Previous {
    #[schema(value_type = String)]
    pub total: Decimal,
    pub rank: usize,
    /// This year's total minus last year's.
    #[schema(value_type = String)]
    pub change: Decimal,
}

#[derive(Serialize, ToSchema)]
pub struct AnnualLine {
    pub target_id: String,
    pub code: String,
    pub name: String,
    /// Points per component, 2 places (`service_objects`, `duties`, `hotline`,
    /// `supervising_unit`, `inspection`, `network`); a missing one is absent.
    #[schema(value_type = BTreeMap<String, String>)]
    pub components: BTreeMap<Component, Decimal>,
    #[schema(value_type = String)]
    pub total: Decimal,
    /// Whether every component has a value (a missing one counts 0).
    pub complete: bool,
    pub rank: usize,
    /// `top3`, `top10`, `bottom10`, `bottom3`.
    #[schema(value_type = Vec<String>)]
    pub bands: Vec<Band>,
    pub previous: Option<Previous>,
    /// In the bottom 3 this year and the year compared with: its head is held accountable.
    pub bottom3_twice: bool,
}

impl From<AnnualRow> for AnnualLine {
    fn from(r: AnnualRow) -> Self {
        Self {
            target_id: r.unit.id.to_string(),
            code: r.unit.code,
            name: r.unit.name,
            components: r.score.components,
            total: r.score.total,
            complete: r.score.complete,
            rank: r.ranked.rank,
            bands: r.ranked.bands,
            previous: r.ranked.previous.map(|(total, rank)| Previous {
                total,
                rank,
                change: r.score.total - total,
            }),
            bottom3_twice: r.ranked.bottom3_twice,
        }
    }
}

async fn lines(
    services: &Services,
    campaign: &Campaign,
    q: &AnnualQuery,
) -> Result<(String, Vec<AnnualLine>), ApiError> {
    let tz = crate::domain::ballot::zone(&campaign.timezone);
    let year = match &q.year {
        Some(y) => {
            check_year("year", y)?;
            y.clone()
        }
        None => services.now().with_timezone(&tz).year().to_string(),
    };
    let previous_year = match &q.previous_year {
        Some(y) => {
            check_year("previous_year", y)?;
            y.clone()
        }
        None => (year.parse::<i32>().unwrap_or(2000) - 1).to_string(),
    };
    let previous = match &q.previous_campaign_id {
        Some(raw) => Some(evaluation(services, raw).await?.id),
        None => None,
    };
    let rows = annual::table(
        services,
        campaign.id,
        &year,
        previous.map(|id| (id, previous_year.as_str())),
    )
    .await?;
    Ok((year, rows.into_iter().map(Into::into).collect()))
}

/// The annual table: units ranked by total, with bands and the year compared with.
#[utoipa::path(tag = "staff", params(("campaign_id" = String, Path), AnnualQuery), responses((status = 200, body = Page<AnnualLine>)), security(("staff" = [])))]
#[get("/admin/campaigns/{campaign_id}/annual")]
pub async fn table(
    services: web::Data<Services>,
    staff: Staff,
    path: web::Path<String>,
    query: web::Query<AnnualQuery>,
) -> Result<HttpResponse, ApiError> {
    staff.require(READERS)?;
    let campaign = evaluation(&services, &path).await?;
    let (_, items) = lines(&services, &campaign, &query).await?;
    Ok(HttpResponse::Ok().json(Page {
        items,
        next_cursor: None,
    }))
}

/// The annual table as CSV (UTF-8 with a byte-order mark, so that Excel reads the Chinese).
#[utoipa::path(tag = "staff", params(("campaign_id" = String, Path), AnnualQuery), responses((status = 200, content_type = "text/csv", description = "one line per unit")), security(("staff" = [])))]
#[get("/admin/campaigns/{campaign_id}/annual.csv")]
pub async fn table_csv(
    services: web::Data<Services>,
    staff: Staff,
    path: web::Path<String>,
    query: web::Query<AnnualQuery>,
) -> Result<HttpResponse, ApiError> {
    staff.require(READERS)?;
    let campaign = evaluation(&services, &path).await?;
    let (year, items) = lines(&services, &campaign, &query).await?;
    let components = [
        Component::ServiceObjects,
        Component::Duties,
        Component::Hotline,
        Component::SupervisingUnit,
        Component::Inspection,
        Component::Network,
    ];
    let mut header = vec!["排名", "单位编码", "单位名称"];
    header.extend([
        "服务对象满意度",
        "履职绩效",
        "12345热线",
        "主管单位评价",
        "监督检查",
        "网络评议",
    ]);
    header.extend([
        "总分",
        "数据完整",
        "等次",
        "上年总分",
        "上年排名",
        "分差",
        "连续两年后三",
    ]);
    let rows = items.iter().map(|l| {
        let mut row = vec![l.rank.to_string(), l.code.clone(), l.name.clone()];
        row.extend(components.iter().map(|c| {
            l.components
                .get(c)
                .map(|p| p.to_string())
                .unwrap_or_default()
        }));
        row.push(l.total.to_string());
        row.push(if l.complete { "是" } else { "否" }.into());
        row.push(
            l.bands
                .iter()
                .map(|b| band_name(*b))
                .collect::<Vec<_>>()
                .join("、"),
        );
        match &l.previous {
            Some(p) => row.extend([
                p.total.to_string(),
                p.rank.to_string(),
                p.change.to_string(),
            ]),
            None => row.extend([String::new(), String::new(), String::new()]),
        }
        row.push(if l.bottom3_twice { "是" } else { "" }.into());
        row
    });
    csv_response(&format!("annual-{}-{year}.csv", campaign.id), &header, rows)
}

fn band_name(b: Band) -> &'static str {
    match b {
        Band::Top3 => "前三",
        Band::Top10 => "前十",
        Band::Bottom10 => "后十",
        Band::Bottom3 => "后三",
    }
}

/// A CSV download: a byte-order mark, the header, the rows.
pub fn csv_response(
    filename: &str,
    header: &[&str],
    rows: impl Iterator<Item = Vec<String>>,
) -> Result<HttpResponse, ApiError> {
    let mut w = csv::Writer::from_writer(b"\xEF\xBB\xBF".to_vec());
    let fail = |e: csv::Error| ApiError::Internal(format!("csv: {e}"));
    w.write_record(header).map_err(fail)?;
    for row in rows {
        w.write_record(&row).map_err(fail)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| ApiError::Internal(format!("csv: {e}")))?;
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            "content-disposition",
            format!("attachment; filename=\"{filename}\""),
        ))
        .body(bytes))
}
