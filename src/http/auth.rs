//! Login and logout for citizens (WeChat, or dev login when enabled) and staff.

use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::ApiError;
use super::extract::{Citizen, Staff};
use crate::app::{Services, citizen_auth, staff_auth};
use crate::domain::staff::Role;

#[derive(Deserialize, ToSchema)]
pub struct WechatLogin {
    /// The code from `wx.login()`.
    pub code: String,
}

#[derive(Deserialize, ToSchema)]
pub struct DevLogin {
    pub openid: String,
}

#[derive(Serialize, ToSchema)]
pub struct CitizenToken {
    pub token: String,
    pub expires_at: DateTime<Utc>,
    /// A keyed hash of the openid; never the openid itself.
    pub voter_id: String,
}

impl From<citizen_auth::CitizenLogin> for CitizenToken {
    fn from(l: citizen_auth::CitizenLogin) -> Self {
        Self {
            token: l.token,
            expires_at: l.expires_at,
            voter_id: l.voter_id.to_string(),
        }
    }
}

fn required(field: &str, value: &str, max: usize) -> Result<(), ApiError> {
    if value.trim().is_empty() {
        return Err(ApiError::invalid(field, format!("{field} 不能为空")));
    }
    if value.len() > max {
        return Err(ApiError::invalid(field, format!("{field} 过长")));
    }
    Ok(())
}

/// Citizen login with the code from `wx.login()`.
#[utoipa::path(tag = "citizen", request_body = WechatLogin, responses(
    (status = 200, body = CitizenToken),
    (status = 401, description = "`wechat_login_failed`: WeChat refused the code"),
    (status = 429, description = "`rate_limited`: WeChat's login rate limit"),
    (status = 503, description = "`unavailable`: WeChat busy, unreachable or not configured"),
))]
#[post("/auth/wechat")]
pub async fn wechat_login(
    services: web::Data<Services>,
    body: web::Json<WechatLogin>,
) -> Result<HttpResponse, ApiError> {
    required("code", &body.code, 256)?;
    let login = citizen_auth::login_with_wechat(&services, &body.code).await?;
    Ok(HttpResponse::Ok().json(CitizenToken::from(login)))
}

/// Development login without WeChat. Exists only when `MINYI_DEV_LOGIN=1`.
#[utoipa::path(tag = "citizen", request_body = DevLogin, responses((status = 200, body = CitizenToken)))]
#[post("/auth/dev")]
pub async fn dev_login(
    services: web::Data<Services>,
    body: web::Json<DevLogin>,
) -> Result<HttpResponse, ApiError> {
    required("openid", &body.openid, 128)?;
    let login = citizen_auth::login_dev(&services, &body.openid).await?;
    Ok(HttpResponse::Ok().json(CitizenToken::from(login)))
}

#[derive(Serialize, ToSchema)]
pub struct Me {
    pub voter_id: String,
}

/// The calling citizen.
#[utoipa::path(tag = "citizen", responses((status = 200, body = Me), (status = 401)), security(("citizen" = [])))]
#[get("/me")]
pub async fn citizen_me(citizen: Citizen) -> HttpResponse {
    HttpResponse::Ok().json(Me {
        voter_id: citizen.voter_id.to_string(),
    })
}

#[derive(Deserialize, ToSchema)]
pub struct StaffLogin {
    pub username: String,
    pub password: String,
}

#[derive(Serialize, ToSchema)]
pub struct StaffToken {
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub role: Role,
}

/// Staff login. Five failed logins in a row lock the account for a while (429
/// `account_locked` with `Retry-After`).
#[utoipa::path(tag = "staff", request_body = StaffLogin, responses(
    (status = 200, body = StaffToken),
    (status = 401, description = "`invalid_credentials`"),
    (status = 429, description = "`account_locked`, with `Retry-After`"),
))]
#[post("/admin/login")]
pub async fn staff_login(
    services: web::Data<Services>,
    body: web::Json<StaffLogin>,
) -> Result<HttpResponse, ApiError> {
    required("username", &body.username, 64)?;
    required("password", &body.password, 256)?;
    let ok = staff_auth::login(&services, &body.username, &body.password).await?;
    Ok(HttpResponse::Ok().json(StaffToken {
        token: ok.token,
        expires_at: ok.expires_at,
        role: ok.role,
    }))
}

/// Revokes the caller's staff token.
#[utoipa::path(tag = "staff", responses((status = 204), (status = 401)), security(("staff" = [])))]
#[post("/admin/logout")]
pub async fn staff_logout(
    services: web::Data<Services>,
    staff: Staff,
) -> Result<HttpResponse, ApiError> {
    staff_auth::logout(services.store.as_ref(), &staff.token).await?;
    tracing::info!(staff_id = staff.session.staff_id, "staff logged out");
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Serialize, ToSchema)]
pub struct StaffMe {
    #[serde(serialize_with = "super::id_as_string")]
    #[schema(value_type = String)]
    pub id: i64,
    pub username: String,
    pub role: Role,
    pub expires_at: DateTime<Utc>,
}

/// The calling staff member.
#[utoipa::path(tag = "staff", responses((status = 200, body = StaffMe), (status = 401)), security(("staff" = [])))]
#[get("/admin/me")]
pub async fn staff_me(staff: Staff) -> HttpResponse {
    let s = staff.session;
    HttpResponse::Ok().json(StaffMe {
        id: s.staff_id,
        username: s.username,
        role: s.role,
        expires_at: s.expires_at,
    })
}

/// Staff accounts (admin only). Accounts are created with `minyi admin create-user`.
#[utoipa::path(tag = "staff", responses(
    (status = 200, body = Vec<crate::store::StaffSummary>),
    (status = 403, description = "`forbidden`: not an admin"),
), security(("staff" = [])))]
#[get("/admin/users")]
pub async fn list_users(
    services: web::Data<Services>,
    staff: Staff,
) -> Result<HttpResponse, ApiError> {
    staff.require(&[Role::Admin])?;
    let users = services.store.list_staff().await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": users, "next_cursor": null })))
}
