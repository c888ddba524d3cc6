//! The door: who the client is (its address, behind trusted proxies) and whether its route
//! class's rate limit lets it in. Runs before routing's handlers. A ballot meets the address
//! limit in process only here: its shared address limit and its per-voter limit are the vote
//! path's, checked with the ballot's other work in one step (see `app::limits`).

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, web};

use super::error::ApiError;
use crate::app::Services;
use crate::app::limits::Class;
use crate::domain::rate::client_ip;

/// The client's address as the door saw it, for the handlers (blocklists, risk signals).
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub std::net::IpAddr);

/// The ballots route: its shared address limit is the vote path's (see `rate_limit`).
const BALLOTS: &str = "/api/v1/campaigns/{campaign_id}/ballots";

fn class_of(method: &actix_web::http::Method, route: &str) -> Option<Class> {
    use actix_web::http::Method;
    match (method, route) {
        (&Method::POST, "/api/v1/auth/wechat" | "/api/v1/auth/dev" | "/api/v1/admin/login") => {
            Some(Class::Login)
        }
        (
            &Method::POST,
            BALLOTS | "/api/v1/campaigns/{campaign_id}/ratings" | "/api/v1/surveys/{token}",
        ) => Some(Class::Ballot),
        (&Method::POST, "/api/v1/campaigns/{campaign_id}/objections") => Some(Class::Objection),
        (&Method::GET, "/s/{token}" | "/campaigns/{campaign_id}/results") => Some(Class::Read),
        (&Method::GET, r) if r.starts_with("/api/v1/") && !r.starts_with("/api/v1/admin/") => {
            Some(Class::Read)
        }
        _ => None,
    }
}

pub async fn rate_limit(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    if let Some(services) = req.app_data::<web::Data<Services>>().cloned()
        && let Some(peer) = req.peer_addr()
    {
        let forwarded = req
            .headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok());
        let ip = client_ip(peer.ip(), forwarded, &services.settings.trusted_proxies);
        req.extensions_mut().insert(ClientIp(ip));
        let route = req.match_pattern().unwrap_or_default();
        // A ballot's shared address limit is the vote path's, in the ballot's own step.
        if let Some(class) = class_of(req.method(), &route)
            && let Some(wait) = if route == BALLOTS {
                services.limits.check_ip_here(class, ip)
            } else {
                services.limits.check_ip(class, ip).await
            }
        {
            metrics::counter!("rate_limited_total", "limit" => format!("{class:?}")).increment(1);
            return Err(ApiError::rate_limited(wait).into());
        }
    }
    next.call(req).await
}
