//! SMS callback surveys: organizers import service records; the people served open the
//! link of their SMS (`/s/{token}`, a small page) and answer.

use actix_web::{HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::ApiError;
use super::extract::Staff;
use crate::app::Services;
use crate::app::surveys::{self, RecordIn, SurveyError};
use crate::domain::rating::Level;
use crate::domain::staff::Role;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SurveyRecord {
    /// A mainland mobile number (`13800138000`, `+86 138-0013-8000`, …).
    pub phone: String,
    /// The unit or department visited.
    pub target_id: String,
    /// `YYYY-MM-DD`, in the campaign's time zone; not in the future, at most a year ago.
    pub visited_on: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportBody {
    /// 1 to 1,000 records (and the body within `MINYI_MAX_BODY_BYTES`).
    pub records: Vec<SurveyRecord>,
}

#[derive(Serialize, ToSchema)]
pub struct Rejected {
    /// The record's index in the request, from 0.
    pub index: usize,
    pub reason: String,
}

#[derive(Serialize, ToSchema)]
pub struct ImportReport {
    pub imported: usize,
    pub rejected: Vec<Rejected>,
}

/// Imports service records; each imported one is queued for its survey SMS. Bad numbers,
/// unknown targets and duplicates (in the request, or imported before) are reported, never
/// echoed.
#[utoipa::path(tag = "staff", params(("campaign_id" = String, Path)), request_body = ImportBody, responses(
    (status = 201, body = ImportReport),
    (status = 409, description = "`wrong_campaign_kind`"),
    (status = 422, description = "`invalid_request`: no records, or more than 1,000"),
), security(("staff" = [])))]
#[post("/admin/campaigns/{campaign_id}/survey-records")]
pub async fn import(
    services: web::Data<Services>,
    staff: Staff,
    path: web::Path<String>,
    body: web::Json<ImportBody>,
) -> Result<HttpResponse, ApiError> {
    staff.require(&[Role::Admin, Role::Organizer])?;
    let id = super::annual::evaluation(&services, &path).await?.id;
    if !(1..=1000).contains(&body.records.len()) {
        return Err(ApiError::invalid("records", "每次导入1到1000条服务记录"));
    }
    let records: Vec<RecordIn<'_>> = body
        .records
        .iter()
        .map(|r| RecordIn {
            phone: &r.phone,
            target_id: &r.target_id,
            visited_on: &r.visited_on,
        })
        .collect();
    let done = surveys::import(&services, &staff.actor(), id, &records, services.now()).await?;
    Ok(HttpResponse::Created().json(ImportReport {
        imported: done.imported,
        rejected: done
            .rejected
            .into_iter()
            .map(|(index, reason)| Rejected { index, reason })
            .collect(),
    }))
}

#[derive(Serialize, ToSchema)]
pub struct RejectedRow {
    /// The row as a spreadsheet numbers it (the header is row 1).
    pub row: usize,
    pub reason: String,
}

#[derive(Serialize, ToSchema)]
pub struct FileImportReport {
    pub imported: usize,
    pub rejected: Vec<RejectedRow>,
}

/// Imports service records from a CSV file (UTF-8 or GBK, as Excel saves it; columns 手机号,
/// 对象编码, 就诊日期), as units report them weekly. Good rows are imported and queued; bad
/// ones are reported by row, never echoed. A file that cannot be read (encoding, missing
/// columns, over 10,000 rows) is refused whole: 422 `import_rejected`.
#[utoipa::path(tag = "staff", params(("campaign_id" = String, Path)), request_body(content = String, content_type = "text/csv"), responses(
    (status = 201, body = FileImportReport),
    (status = 409, description = "`wrong_campaign_kind`"),
    (status = 422, description = "`import_rejected`"),
), security(("staff" = [])))]
#[post("/admin/campaigns/{campaign_id}/survey-records/import")]
pub async fn import_file(
    services: web::Data<Services>,
    staff: Staff,
    req: actix_web::HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    staff.require(&[Role::Admin, Role::Organizer])?;
    let id = super::annual::evaluation(&services, &path).await?.id;
    let bytes = super::admin::read_upload(&req, payload).await?;
    let rows = crate::domain::import::parse_survey_records(&bytes)
        .map_err(crate::app::imports::ImportFailed::from)?;
    let codes: std::collections::HashMap<String, String> = services
        .store
        .list_targets(id)
        .await?
        .into_iter()
        .map(|t| (t.code, t.id.to_string()))
        .collect();
    // Codes are the file's way of naming targets: an unknown one is refused here, the rest
    // go through the same checks as the JSON import.
    let mut rejected = Vec::new();
    let mut known = Vec::new();
    for r in &rows {
        match codes.get(r.target_code.trim()) {
            Some(target) => known.push((r, target)),
            None => rejected.push(RejectedRow {
                row: r.row,
                reason: "对象编码不存在".into(),
            }),
        }
    }
    let records: Vec<RecordIn<'_>> = known
        .iter()
        .map(|(r, target)| RecordIn {
            phone: &r.phone,
            target_id: target,
            visited_on: &r.visited_on,
        })
        .collect();
    let done = surveys::import(&services, &staff.actor(), id, &records, services.now()).await?;
    rejected.extend(
        done.rejected
            .into_iter()
            .map(|(index, reason)| RejectedRow {
                row: known[index].0.row,
                reason,
            }),
    );
    rejected.sort_by_key(|r| r.row);
    Ok(HttpResponse::Created().json(FileImportReport {
        imported: done.imported,
        rejected,
    }))
}

/// A page with only a message (an unknown, expired or answered survey).
fn message_page(status: actix_web::http::StatusCode, text: &str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(format!(
            "<!DOCTYPE html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>就医满意度回访</title></head>\
             <body style=\"font-family:sans-serif;background:#f5f6f8;margin:0\">\
             <main style=\"max-width:480px;margin:40px auto;padding:24px 16px;background:#fff;\
             border-radius:10px;text-align:center;font-size:17px;line-height:1.7\">{text}</main></body></html>"
        ))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// The survey page an SMS links to: a small page in Chinese that works in WeChat's browser
/// (plain HTML and ES5, no framework).
#[utoipa::path(tag = "citizen", params(("token" = String, Path)), responses(
    (status = 200, content_type = "text/html", description = "the survey, or a note that it was answered"),
    (status = 404, description = "unknown link"),
    (status = 410, description = "expired link"),
))]
#[get("/s/{token}")]
pub async fn page(services: web::Data<Services>, path: web::Path<String>) -> HttpResponse {
    use actix_web::http::StatusCode;
    let survey = match surveys::open(&services, &path, services.now()).await {
        Ok(s) => s,
        Err(SurveyError::NotFound) => {
            return message_page(StatusCode::NOT_FOUND, "链接无效，请核对短信中的链接。");
        }
        Err(SurveyError::Expired) => {
            return message_page(StatusCode::GONE, "该回访链接已过期，感谢您的关注。");
        }
        Err(e) => {
            tracing::error!(error = %e, "survey page not shown");
            return message_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "服务暂时不可用，请稍后再试。",
            );
        }
    };
    if survey.answered {
        return message_page(StatusCode::OK, "您已完成本次回访评价，感谢参与！");
    }
    let place = match &survey.unit_name {
        Some(unit) => format!("{} {}", unit, survey.target_name),
        None => survey.target_name.clone(),
    };
    let html = include_str!("pages/survey.html")
        .replace("{{visited_on}}", &escape(&survey.visited_on))
        .replace("{{place}}", &escape(&place))
        .replace("{{token}}", &escape(&path));
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("cache-control", "no-store"))
        .body(html)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SurveyAnswer {
    /// `satisfied`, `basically_satisfied` or `unsatisfied`.
    pub level: String,
    pub comment: Option<String>,
}

/// Answers the survey of a token: a rating in the `service_object` group, once.
#[utoipa::path(tag = "citizen", params(("token" = String, Path)), request_body = SurveyAnswer, responses(
    (status = 201, body = crate::http::ratings::RatingReceipt),
    (status = 404, description = "`not_found`: unknown token"),
    (status = 409, description = "`survey_already_answered`, or `voting_closed`"),
    (status = 410, description = "`survey_expired`"),
    (status = 422, description = "`invalid_request` with the field"),
))]
#[post("/surveys/{token}")]
pub async fn answer(
    services: web::Data<Services>,
    path: web::Path<String>,
    body: web::Json<SurveyAnswer>,
) -> Result<HttpResponse, ApiError> {
    let level = Level::parse(&body.level).ok_or_else(|| {
        ApiError::invalid(
            "level",
            "评价须为 satisfied、basically_satisfied 或 unsatisfied",
        )
    })?;
    let comment = crate::domain::rating::comment(body.comment.as_deref())
        .map_err(|m| ApiError::invalid("comment", m))?;
    match surveys::answer(&services, &path, level, comment, services.now()).await {
        Ok(done) => Ok(
            HttpResponse::Created().json(crate::http::ratings::RatingReceipt::from(done.rating))
        ),
        Err(SurveyError::NotFound) => Err(ApiError::NotFound),
        Err(SurveyError::Expired) => Err(ApiError::refused(
            actix_web::http::StatusCode::GONE,
            "survey_expired",
            "该回访链接已过期，感谢您的关注",
        )),
        Err(SurveyError::Rate(e)) => Err(e.into()),
        Err(SurveyError::Store(e)) => Err(e.into()),
    }
}
