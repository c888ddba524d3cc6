//! Extractors for the two kinds of caller. A handler that names `Citizen` or `Staff` in its
//! arguments cannot run without a valid token of that kind: a staff token on a citizen route
//! (or the reverse) is refused with 401 before the handler starts.

use std::future::Future;
use std::pin::Pin;

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use chrono::Utc;

use super::error::ApiError;
use crate::app::{Services, staff_auth};
use crate::domain::keyed::VoterId;
use crate::domain::staff::Role;
use crate::domain::token::{self, TokenError, TokenKind};
use crate::store::StaffSession;

fn bearer(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get(actix_web::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

fn services(req: &HttpRequest) -> Result<web::Data<Services>, ApiError> {
    req.app_data::<web::Data<Services>>()
        .cloned()
        .ok_or_else(|| ApiError::Internal("services not configured".into()))
}

const LOGIN_FIRST: ApiError = ApiError::Unauthenticated {
    message: "请先登录",
};

/// A citizen with a valid citizen token.
#[derive(Debug, Clone)]
pub struct Citizen {
    pub voter_id: VoterId,
    /// When the voter first logged in, if the token says (a risk signal).
    pub first_seen: Option<chrono::DateTime<Utc>>,
}

impl FromRequest for Citizen {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready((|| {
            let services = services(req)?;
            let token = bearer(req).ok_or(LOGIN_FIRST)?;
            if token::kind_of(token) == TokenKind::Staff {
                return Err(ApiError::Unauthenticated {
                    message: "工作人员令牌不能用于群众接口",
                });
            }
            match token::verify_citizen(&services.key, token, Utc::now()) {
                Ok(claims) => Ok(Citizen {
                    voter_id: claims.voter,
                    first_seen: claims.first_seen,
                }),
                Err(TokenError::Expired) => Err(ApiError::Unauthenticated {
                    message: "登录已过期，请重新登录",
                }),
                Err(_) => Err(ApiError::Unauthenticated {
                    message: "登录状态无效，请重新登录",
                }),
            }
        })())
    }
}

/// A staff member with a valid, unrevoked staff token.
#[derive(Debug, Clone)]
pub struct Staff {
    pub session: StaffSession,
    /// The bearer token itself, for logout.
    pub token: String,
}

impl Staff {
    /// The account as the audit chain names it.
    pub fn actor(&self) -> crate::domain::record::Actor {
        crate::domain::record::Actor::Staff {
            id: self.session.staff_id,
            username: self.session.username.clone(),
            role: self.session.role,
        }
    }

    /// Refuses with 403 unless the account has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.session.role) {
            Ok(())
        } else {
            tracing::info!(staff_id = self.session.staff_id, role = %self.session.role, "refused by role");
            Err(ApiError::Forbidden)
        }
    }
}

impl FromRequest for Staff {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let services = services(req);
        let token = bearer(req).map(str::to_string);
        Box::pin(async move {
            let services = services?;
            let token = token.ok_or(LOGIN_FIRST)?;
            if token::kind_of(&token) == TokenKind::Citizen {
                return Err(ApiError::Unauthenticated {
                    message: "群众令牌不能用于管理接口",
                });
            }
            let session = staff_auth::authenticate(services.store.as_ref(), &token).await?;
            Ok(Staff { session, token })
        })
    }
}

/// The request's `Idempotency-Key`, checked: 1 to 255 visible characters.
pub fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(v) = req.headers().get("idempotency-key") else {
        return Ok(None);
    };
    let k = v
        .to_str()
        .map_err(|_| ApiError::invalid("Idempotency-Key", "Idempotency-Key 须为可见字符"))?;
    if k.is_empty() || k.len() > 255 {
        return Err(ApiError::invalid(
            "Idempotency-Key",
            "Idempotency-Key 长度须为1到255",
        ));
    }
    Ok(Some(k.to_string()))
}
