//! The one error type of the HTTP API. Each variant knows its status, its stable `code` and
//! the Chinese message the mini-program shows. Internal causes are logged with the request id
//! and never sent to the client.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use crate::app::citizen_auth::CitizenLoginError;
use crate::app::staff_auth::{AuthError, LoginError};
use crate::counters::CounterError;
use crate::integrations::wechat::WechatError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("unauthenticated")]
    Unauthenticated { message: &'static str },
    #[error("forbidden")]
    Forbidden,
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("invalid request: {field}")]
    Invalid { field: String, message: String },
    #[error("malformed json")]
    MalformedJson,
    #[error("unsupported media type")]
    UnsupportedMediaType,
    #[error("payload too large")]
    PayloadTooLarge { limit: usize },
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("account locked")]
    AccountLocked { until: DateTime<Utc> },
    #[error("rate limited")]
    RateLimited {
        retry_after_secs: u64,
        message: &'static str,
    },
    #[error("wechat login failed")]
    WechatLoginFailed { message: &'static str },
    #[error("unavailable: {part}")]
    Unavailable {
        part: &'static str,
        message: &'static str,
    },
    #[error("conflict: {code}")]
    Conflict { code: &'static str, message: String },
    #[error("import rejected")]
    ImportRejected {
        message: String,
        rows: Vec<crate::domain::import::RowError>,
    },
    /// A refusal by a rule of the service (quotas, windows, ballots), with its own code and
    /// details.
    #[error("refused: {code}")]
    Refused {
        status: StatusCode,
        code: &'static str,
        message: String,
        details: Map<String, Value>,
    },
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// 429 `rate_limited`, with `Retry-After` rounded up to whole seconds.
    pub fn rate_limited(wait: std::time::Duration) -> Self {
        Self::RateLimited {
            retry_after_secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
            message: "操作过于频繁，请稍后再试",
        }
    }

    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthenticated { .. } => "unauthenticated",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Invalid { .. } => "invalid_request",
            Self::MalformedJson => "malformed_json",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::InvalidCredentials => "invalid_credentials",
            Self::AccountLocked { .. } => "account_locked",
            Self::RateLimited { .. } => "rate_limited",
            Self::WechatLoginFailed { .. } => "wechat_login_failed",
            Self::Unavailable { .. } => "unavailable",
            Self::Conflict { code, .. } => code,
            Self::ImportRejected { .. } => "import_rejected",
            Self::Refused { code, .. } => code,
            Self::Internal(_) => "internal",
        }
    }

    fn message(&self) -> String {
        match self {
            Self::Unauthenticated { message } => (*message).into(),
            Self::Forbidden => "您没有权限进行此操作".into(),
            Self::NotFound => "请求的内容不存在".into(),
            Self::MethodNotAllowed => "不支持该请求方法".into(),
            Self::Invalid { message, .. } => message.clone(),
            Self::MalformedJson => "请求内容不是有效的JSON格式".into(),
            Self::UnsupportedMediaType => "请求内容类型须为 application/json".into(),
            Self::PayloadTooLarge { limit } => format!("请求内容过大，不能超过{}KB", limit / 1024),
            Self::InvalidCredentials => "用户名或密码错误".into(),
            Self::AccountLocked { .. } => "登录失败次数过多，账号已临时锁定，请稍后再试".into(),
            Self::RateLimited { message, .. } => (*message).into(),
            Self::WechatLoginFailed { message } => (*message).into(),
            Self::Unavailable { message, .. } => (*message).into(),
            Self::Conflict { message, .. } | Self::ImportRejected { message, .. } => {
                message.clone()
            }
            Self::Refused { message, .. } => message.clone(),
            Self::Internal(_) => "服务器内部错误，请稍后再试".into(),
        }
    }

    fn retry_after(&self) -> Option<u64> {
        match self {
            Self::AccountLocked { until } => {
                Some((*until - Utc::now()).num_seconds().max(1) as u64)
            }
            Self::RateLimited {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            Self::Unavailable { .. } => Some(5),
            Self::Refused { details, .. } => details
                .get("resets_at")
                .and_then(Value::as_str)
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| (t.with_timezone(&Utc) - Utc::now()).num_seconds().max(1) as u64),
            _ => None,
        }
    }

    /// The JSON body: `{"error": {"code", "message", ...details}}`.
    pub fn body(&self) -> Value {
        let mut error = Map::new();
        error.insert("code".into(), self.code().into());
        error.insert("message".into(), self.message().into());
        match self {
            Self::Invalid { field, .. } => {
                error.insert("field".into(), field.clone().into());
            }
            Self::AccountLocked { until } => {
                error.insert("locked_until".into(), until.to_rfc3339().into());
            }
            Self::Unavailable { part, .. } => {
                error.insert("part".into(), (*part).into());
            }
            Self::Refused { details, .. } => {
                error.extend(details.clone());
            }
            Self::ImportRejected { rows, .. } => {
                error.insert(
                    "rows".into(),
                    serde_json::to_value(rows).unwrap_or_default(),
                );
            }
            _ => {}
        }
        json!({ "error": error })
    }

    /// An error answer for a bare status the framework produced (unknown route and the like).
    pub fn for_status(status: StatusCode) -> Self {
        match status.as_u16() {
            401 => Self::Unauthenticated {
                message: "请先登录",
            },
            403 => Self::Forbidden,
            404 => Self::NotFound,
            405 => Self::MethodNotAllowed,
            413 => Self::PayloadTooLarge { limit: 64 * 1024 },
            415 => Self::UnsupportedMediaType,
            400 | 422 => Self::invalid("request", "请求参数不正确"),
            429 => Self::RateLimited {
                retry_after_secs: 1,
                message: "请求过于频繁，请稍后再试",
            },
            503 => Self::Unavailable {
                part: "service",
                message: "服务暂时不可用，请稍后再试",
            },
            _ => Self::Internal(format!("status {status}")),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Unauthenticated { .. }
            | Self::InvalidCredentials
            | Self::WechatLoginFailed { .. } => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Invalid { .. } | Self::ImportRejected { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::MalformedJson => StatusCode::BAD_REQUEST,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::AccountLocked { .. } | Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Refused { status, .. } => *status,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Internal(cause) = self {
            tracing::error!(cause = %cause, "internal error");
        }
        let mut response = HttpResponse::build(self.status_code()).json(self.body());
        if let Some(secs) = self.retry_after()
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::NotFound,
            StoreError::Invalid(f) => Self::Invalid {
                field: f.field,
                message: f.message,
            },
            StoreError::BadTransition { from, to } => Self::Conflict {
                code: "invalid_status_change",
                message: format!(
                    "候选人当前状态为“{}”，不能改为“{}”",
                    status_name(&from),
                    status_name(&to)
                ),
            },
            StoreError::Published => Self::Conflict {
                code: "campaign_published",
                message: "本活动结果已发布，不能再作任何更改".into(),
            },
            StoreError::HeadMoved => Self::Conflict {
                code: "try_again",
                message: "活动数据正在变化，请稍后再试".into(),
            },
            StoreError::Closed(code) => Self::Conflict {
                code,
                message: match code {
                    "scoring_closed" => "结果已冻结，评审打分已截止".into(),
                    "not_in_publicity" => "当前不在公示期，暂不受理异议".into(),
                    "scoring_started" => {
                        "专家已开始评分，评分规则（rules.results）不能再更改".into()
                    }
                    _ => "当前状态下不能进行此操作".into(),
                },
            },
            StoreError::Conflict("expert score") => Self::Conflict {
                code: "score_already_submitted",
                message: "您已为该候选人提交评分，提交后不能修改".into(),
            },
            StoreError::Conflict("objection answered") => Self::Conflict {
                code: "objection_already_answered",
                message: "该异议已答复".into(),
            },
            StoreError::Conflict(what) => Self::Conflict {
                code: "already_exists",
                message: match what {
                    "username" => "用户名已存在".into(),
                    "category name" => "同名类别已存在".into(),
                    "target code" => "参评对象编码已存在".into(),
                    _ => "记录已存在".into(),
                },
            },
            StoreError::Database(ref cause) if is_unreachable(cause) => {
                tracing::error!(error = %e, "database unavailable");
                Self::Unavailable {
                    part: "database",
                    message: "数据库暂时不可用，请稍后再试",
                }
            }
            StoreError::Unavailable(_) => Self::Unavailable {
                part: "database",
                message: "数据库暂时不可用，请稍后再试",
            },
            other => Self::Internal(other.to_string()),
        }
    }
}

fn status_name(s: &str) -> &str {
    match s {
        "nominated" => "待审核",
        "approved" => "已通过",
        "rejected" => "未通过",
        "withdrawn" => "已撤回",
        other => other,
    }
}

fn is_unreachable(e: &sqlx::Error) -> bool {
    matches!(
        e,
        sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_)
    )
}

impl From<CounterError> for ApiError {
    fn from(e: CounterError) -> Self {
        tracing::error!(error = %e, "counter store unavailable");
        Self::Unavailable {
            part: "counters",
            message: "计数服务暂时不可用，请稍后再试",
        }
    }
}

impl ApiError {
    pub fn refused(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self::Refused {
            status,
            code,
            message: message.into(),
            details: Map::new(),
        }
    }

    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        if let Self::Refused { details, .. } = &mut self {
            details.insert(key.into(), value.into());
        }
        self
    }
}

impl From<crate::app::vote::VoteError> for ApiError {
    fn from(e: crate::app::vote::VoteError) -> Self {
        use crate::app::vote::VoteError as V;
        let when = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        match e {
            V::NotFound => Self::NotFound,
            V::VotingClosed => {
                Self::refused(StatusCode::CONFLICT, "voting_closed", "当前不在投票时间内")
            }
            V::Invalid(message) => {
                Self::refused(StatusCode::UNPROCESSABLE_ENTITY, "invalid_ballot", message)
            }
            V::DailyExhausted { resets_at } => Self::refused(
                StatusCode::TOO_MANY_REQUESTS,
                "daily_quota_exhausted",
                "今日票数已用完，请明天再来",
            )
            .with("resets_at", when(resets_at)),
            V::CandidateLimit {
                candidate_id,
                resets_at,
            } => Self::refused(
                StatusCode::TOO_MANY_REQUESTS,
                "candidate_daily_limit",
                "今天已为该候选人投过票，请明天再来",
            )
            .with("candidate_id", candidate_id.to_string())
            .with("resets_at", when(resets_at)),
            V::CampaignExhausted => Self::refused(
                StatusCode::TOO_MANY_REQUESTS,
                "campaign_quota_exhausted",
                "您在本次活动中的票数已用完",
            )
            .with("resets_at", Value::Null),
            V::RateLimited(wait) => Self::rate_limited(wait),
            V::ChallengeRequired(c) => Self::refused(
                StatusCode::PRECONDITION_REQUIRED,
                "challenge_required",
                "请完成安全验证后再投票",
            )
            .with("challenge", c.text)
            .with("bits", c.bits)
            .with("expires_at", c.expires_at.to_rfc3339()),
            V::VoterBlocked => Self::refused(
                StatusCode::FORBIDDEN,
                "voter_blocked",
                "您的账号或网络已被限制在本活动中投票，如有疑问请联系主办方",
            ),
            V::KeyReused => Self::refused(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "该请求编号已用于另一次投票",
            ),
            V::InProgress => Self::refused(
                StatusCode::CONFLICT,
                "idempotency_in_progress",
                "相同请求正在处理中，请稍后查看投票记录",
            ),
            V::Counters(c) => c.into(),
            V::Store(s) => match s {
                StoreError::Database(_)
                | StoreError::BatchFailed(_)
                | StoreError::Unavailable(_) => {
                    tracing::error!(error = %s, "ballot not recorded");
                    Self::Unavailable {
                        part: "database",
                        message: "投票服务暂时不可用，您的投票未被记录，请稍后再试",
                    }
                }
                other => other.into(),
            },
        }
    }
}

impl From<crate::app::recount::RecountError> for ApiError {
    fn from(e: crate::app::recount::RecountError) -> Self {
        match e {
            crate::app::recount::RecountError::Counters(c) => c.into(),
            crate::app::recount::RecountError::Store(s) => s.into(),
        }
    }
}

impl From<LoginError> for ApiError {
    fn from(e: LoginError) -> Self {
        match e {
            LoginError::InvalidCredentials => Self::InvalidCredentials,
            LoginError::Locked(until) => Self::AccountLocked { until },
            LoginError::Store(s) => s.into(),
            LoginError::Internal(s) => Self::Internal(s),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Invalid => Self::Unauthenticated {
                message: "登录状态无效，请重新登录",
            },
            AuthError::Expired => Self::Unauthenticated {
                message: "登录已过期，请重新登录",
            },
            AuthError::Store(s) => s.into(),
        }
    }
}

impl From<CitizenLoginError> for ApiError {
    fn from(e: CitizenLoginError) -> Self {
        match e {
            CitizenLoginError::Store(s) => s.into(),
            CitizenLoginError::Wechat(w) => match w {
                WechatError::InvalidCode => Self::WechatLoginFailed {
                    message: "微信登录凭证无效或已使用，请重新进入小程序",
                },
                WechatError::HighRisk => Self::WechatLoginFailed {
                    message: "微信判定当前账号存在风险，暂时无法登录",
                },
                WechatError::Other(_) => Self::WechatLoginFailed {
                    message: "微信登录失败，请稍后重试",
                },
                WechatError::RateLimited => Self::RateLimited {
                    retry_after_secs: 60,
                    message: "登录过于频繁，请一分钟后再试",
                },
                WechatError::Busy | WechatError::Timeout | WechatError::Transport(_) => {
                    Self::Unavailable {
                        part: "wechat",
                        message: "微信服务繁忙，请稍后再试",
                    }
                }
                WechatError::NotConfigured => Self::Unavailable {
                    part: "wechat",
                    message: "微信登录尚未配置，请联系管理员",
                },
            },
        }
    }
}
