//! SMS callback surveys for organizers: importing service records.

use actix_web::{HttpResponse, post, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::ApiError;
use super::extract::Staff;
use super::parse_id;
use crate::app::Services;
use crate::app::surveys::{self, RecordIn};
use crate::domain::campaign::Kind;
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
    let id = parse_id(&path).ok_or(ApiError::NotFound)?;
    let campaign = services.store.get_campaign(id).await?;
    if campaign.kind != Kind::Evaluation {
        return Err(ApiError::Conflict {
            code: "wrong_campaign_kind",
            message: "短信回访只适用于评议活动".into(),
        });
    }
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
