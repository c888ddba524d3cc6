//! Liveness, readiness and metrics for operators and load balancers.

use std::time::Duration;

use actix_web::{HttpResponse, get, web};
use serde_json::json;

use super::error::ApiError;
use crate::app::Services;

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// 200 while the process runs.
#[utoipa::path(tag = "health", responses((status = 200, description = "the process runs")))]
#[get("/health/live")]
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "live"}))
}

/// 200 only when the database and the counter store both answer; otherwise 503 naming the
/// part that does not (`database` or `counters`).
#[utoipa::path(tag = "health", responses(
    (status = 200, description = "ready"),
    (status = 503, description = "a backing service does not answer; `error.part` names it"),
))]
#[get("/health/ready")]
pub async fn ready(services: web::Data<Services>) -> Result<HttpResponse, ApiError> {
    let db = tokio::time::timeout(CHECK_TIMEOUT, services.store.ping()).await;
    let counters = tokio::time::timeout(CHECK_TIMEOUT, services.counters.ping()).await;
    if !matches!(db, Ok(Ok(()))) {
        tracing::warn!("not ready: database does not answer");
        return Err(ApiError::Unavailable {
            part: "database",
            message: "数据库暂时不可用",
        });
    }
    if !matches!(counters, Ok(Ok(()))) {
        tracing::warn!(
            backend = services.counters.backend(),
            "not ready: counter store does not answer"
        );
        return Err(ApiError::Unavailable {
            part: "counters",
            message: "计数服务暂时不可用",
        });
    }
    Ok(HttpResponse::Ok().json(json!({
        "status": "ready",
        "database": "ok",
        "counters": services.counters.backend(),
    })))
}

/// Prometheus text format.
#[utoipa::path(tag = "health", responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain")))]
#[get("/metrics")]
pub async fn metrics(
    handle: web::Data<metrics_exporter_prometheus::PrometheusHandle>,
) -> HttpResponse {
    handle.run_upkeep();
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(handle.render())
}
