//! The HTTP edge: routes grouped by audience, the error type, extractors, observability and
//! the OpenAPI document. Handlers stay thin: parse, call a use case, shape the answer.
//!
//! Routes are registered through `utoipa-actix-web`, so the OpenAPI document is collected
//! from the same calls that register the routes: a route cannot exist without being described.

pub mod admin;
pub mod annual;
pub mod audit;
pub mod auth;
pub mod ballots;
pub mod blocks;
pub mod campaigns;
pub mod error;
pub mod extract;
pub mod health;
pub mod limit;
pub mod observe;
pub mod ratings;
pub mod results;
pub mod results_page;
mod review;
pub mod surveys;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::ServiceResponse;
use actix_web::http::header;
use actix_web::middleware::{ErrorHandlerResponse, ErrorHandlers};
use actix_web::{HttpResponse, ResponseError, error::JsonPayloadError, get, web};
use serde::{Serialize, Serializer};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa_actix_web::{UtoipaApp, scope};

use self::error::ApiError;

/// A page of a list: `{"items": [...], "next_cursor": ...}`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// Ids are strings in JSON (the contract), integers inside.
pub fn id_as_string<S: Serializer>(id: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(id)
}

/// A positive integer id from a path or query string.
pub fn parse_id(raw: &str) -> Option<i64> {
    raw.parse::<i64>().ok().filter(|id| *id > 0)
}

/// An optional id in a query string: absent or empty is `None`; anything else must be an id,
/// or 422 naming `field`.
pub fn parse_optional_id(
    raw: Option<&str>,
    field: &str,
    message: &str,
) -> Result<Option<i64>, ApiError> {
    match raw.filter(|s| !s.is_empty()) {
        Some(s) => parse_id(s)
            .map(Some)
            .ok_or_else(|| ApiError::invalid(field, message)),
        None => Ok(None),
    }
}

/// The `limit` of a list: 1–100, default 20.
pub fn parse_limit(raw: Option<&str>) -> Result<u32, ApiError> {
    match raw.filter(|s| !s.is_empty()) {
        None => Ok(20),
        Some(s) => s
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| ApiError::invalid("limit", "limit 须为1到100之间的整数")),
    }
}

/// A list's `cursor`: the `next_cursor` of the previous page (an integer inside).
pub fn parse_cursor(raw: Option<&str>) -> Result<Option<i64>, ApiError> {
    match raw.filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => s
            .parse::<i64>()
            .map(Some)
            .map_err(|_| ApiError::invalid("cursor", "分页游标无效")),
    }
}

/// Registers every route. `dev_login` adds `POST /api/v1/auth/dev`.
pub fn routes<T>(app: UtoipaApp<T>, dev_login: bool) -> UtoipaApp<T>
where
    T: actix_web::dev::ServiceFactory<
            actix_web::dev::ServiceRequest,
            Config = (),
            Error = actix_web::Error,
            InitError = (),
        >,
{
    let mut api = scope::scope("/api/v1")
        .service(auth::wechat_login)
        .service(auth::citizen_me)
        .service(auth::staff_login)
        .service(auth::staff_logout)
        .service(auth::staff_me)
        .service(auth::list_users)
        .service(campaigns::list)
        .service(campaigns::detail)
        .service(campaigns::candidates)
        .service(campaigns::candidate)
        .service(campaigns::targets)
        .service(ballots::cast)
        .service(ballots::challenge)
        .service(ballots::receipt)
        .service(ballots::my_ballots)
        .service(ballots::leaderboard)
        .service(audit::head)
        .service(audit::entries)
        .service(audit::export)
        .service(admin::create_campaign)
        .service(admin::list_campaigns)
        .service(admin::get_campaign)
        .service(admin::patch_campaign)
        .service(admin::open_campaign)
        .service(admin::add_category)
        .service(admin::patch_category)
        .service(admin::nominate)
        .service(admin::list_candidates)
        .service(admin::import_candidates)
        .service(admin::approve)
        .service(admin::reject)
        .service(admin::withdraw)
        .service(admin::add_target)
        .service(admin::import_targets)
        .service(blocks::list_blocks)
        .service(blocks::block)
        .service(blocks::lift)
        .service(review::clusters)
        .service(review::decide)
        .service(ratings::rate_as_citizen)
        .service(ratings::rate_as_staff)
        .service(ratings::scores)
        .service(ratings::scores_csv)
        .service(annual::enter)
        .service(annual::table)
        .service(annual::table_csv)
        .service(surveys::import)
        .service(surveys::import_file)
        .service(surveys::answer)
        .service(ratings::opinions)
        .service(ratings::answer)
        .service(results::assign)
        .service(results::experts)
        .service(results::sheet)
        .service(results::score)
        .service(results::preview)
        .service(results::freeze_draft)
        .service(results::publish)
        .service(results::published_results)
        .service(results::results_draft)
        .service(results::results_csv)
        .service(results::submit_objection)
        .service(results::objections)
        .service(results::answer)
        .service(openapi_json);
    if dev_login {
        api = api.service(auth::dev_login);
    }
    app.service(surveys::page)
        .service(results_page::results_page)
        .service(health::live)
        .service(health::ready)
        .service(health::metrics)
        .service(api)
}

/// The OpenAPI document, filled in from the registered routes at start.
#[utoipa::path(tag = "health", responses((status = 200, description = "this document")))]
#[get("/openapi.json")]
pub async fn openapi_json(doc: web::Data<OpenApiDoc>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(doc.0.clone())
}

pub struct OpenApiDoc(pub String);

/// The document's frame: title, description and the two bearer schemes.
pub fn openapi_base() -> utoipa::openapi::OpenApi {
    let mut doc = utoipa::openapi::OpenApiBuilder::new()
        .info(
            utoipa::openapi::InfoBuilder::new()
                .title("minyi — 卫生健康服务群众评议与投票")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "Backend of the WeChat mini-program for health-service votes and evaluations. \
                     Errors are `{\"error\": {\"code\", \"message\", ...}}` with a stable code.",
                ))
                .build(),
        )
        .build();
    let components = doc.components.get_or_insert_with(Default::default);
    for name in ["citizen", "staff"] {
        components.add_security_scheme(
            name,
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
    doc
}

/// Maps the framework's JSON body errors to the API's error shape.
pub fn json_error(
    limit: usize,
) -> impl Fn(JsonPayloadError, &actix_web::HttpRequest) -> actix_web::Error + Clone {
    move |err, _req| {
        let api = match &err {
            JsonPayloadError::ContentType => ApiError::UnsupportedMediaType,
            JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. } => {
                ApiError::PayloadTooLarge { limit }
            }
            JsonPayloadError::Deserialize(e) if e.is_data() => {
                let field = missing_or_bad_field(&e.to_string());
                ApiError::invalid(field.clone(), format!("字段 {field} 缺失或格式不正确"))
            }
            _ => ApiError::MalformedJson,
        };
        actix_web::error::InternalError::from_response(err, api.error_response()).into()
    }
}

/// Pulls the field name out of serde's message ("missing field `code`", "unknown field `x`").
fn missing_or_bad_field(message: &str) -> String {
    message
        .split('`')
        .nth(1)
        .filter(|f| !f.is_empty() && f.len() < 64 && !f.contains(' '))
        .unwrap_or("body")
        .to_string()
}

pub fn query_error(
    err: actix_web::error::QueryPayloadError,
    _req: &actix_web::HttpRequest,
) -> actix_web::Error {
    let field = missing_or_bad_field(&err.to_string());
    let api = ApiError::invalid(field, "查询参数格式不正确");
    actix_web::error::InternalError::from_response(err, api.error_response()).into()
}

/// Gives every error answer that is not already JSON (unknown routes, wrong methods, the
/// framework's own refusals) the API's error shape, so clients meet one format. Pages the
/// service renders itself (the survey page's "expired" and "unknown link") stay pages.
pub fn json_errors<B: MessageBody + 'static>() -> ErrorHandlers<B> {
    ErrorHandlers::new().default_handler(|res: ServiceResponse<B>| {
        let ours = res
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/html"));
        if ours {
            return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
        }
        let api = ApiError::for_status(res.status());
        let (req, _) = res.into_parts();
        let response: HttpResponse<BoxBody> = api.error_response();
        Ok(ErrorHandlerResponse::Response(
            ServiceResponse::new(req, response).map_into_right_body(),
        ))
    })
}
