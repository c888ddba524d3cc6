//! Settings: built-in defaults, then an optional `minyi.toml`, then the environment.
//!
//! Everything is parsed and checked here, once, at start: a bad value stops the process with
//! one line that names the setting, so that nothing later has to second-guess configuration.
//! The environment names are the ones in the README's table: `DATABASE_URL` and `REDIS_URL`
//! without a prefix (the conventional names), everything else under `MINYI_`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::domain::rate::RateSpec;

/// Raw settings as they come from the layers; `Settings::load` validates them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    bind: String,
    database_url: String,
    db_max_connections: u32,
    redis_url: Option<String>,
    redis_prefix: String,
    secret: Option<String>,
    #[serde(deserialize_with = "flag")]
    dev_login: bool,
    wechat_appid: Option<String>,
    wechat_secret: Option<String>,
    wechat_api_base: String,
    wechat_timeout_ms: u64,
    log_format: String,
    log_level: String,
    staff_token_ttl_secs: u64,
    citizen_token_ttl_secs: u64,
    login_max_failures: u32,
    login_lockout_secs: u64,
    max_body_bytes: usize,
    shutdown_timeout_secs: u64,
    trusted_proxies: String,
    workers: usize,
    ballot_batch_max: usize,
    ballot_batch_wait_ms: u64,
    rate_login_per_ip: String,
    rate_objections_per_ip: String,
    rate_ballots_per_ip: String,
    rate_ballots_per_voter: String,
    rate_reads_per_ip: String,
    rate_limiter_max_keys: usize,
    phone_key: Option<String>,
    survey_retention_days: u32,
    sms_gateway: String,
    #[serde(deserialize_with = "flag")]
    sms_sender: bool,
    sms_per_second: u32,
    sms_api_base: Option<String>,
    sms_secret_id: Option<String>,
    sms_secret_key: Option<String>,
    sms_app_id: Option<String>,
    sms_sign_name: Option<String>,
    sms_template_id: Option<String>,
    sms_region: String,
    sms_timeout_ms: u64,
    sms_unknown_horizon_hours: u32,
    survey_ttl_days: u32,
    public_base_url: String,
}

impl Default for RawSettings {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8080".into(),
            database_url: "sqlite:minyi.db".into(),
            db_max_connections: 16,
            redis_url: None,
            redis_prefix: "minyi".into(),
            secret: None,
            dev_login: false,
            wechat_appid: None,
            wechat_secret: None,
            wechat_api_base: "https://api.weixin.qq.com".into(),
            wechat_timeout_ms: 5_000,
            log_format: "text".into(),
            log_level: "info".into(),
            staff_token_ttl_secs: 8 * 3600,
            citizen_token_ttl_secs: 24 * 3600,
            login_max_failures: 5,
            login_lockout_secs: 15 * 60,
            max_body_bytes: 64 * 1024,
            shutdown_timeout_secs: 30,
            trusted_proxies: String::new(),
            workers: 0,
            ballot_batch_max: 64,
            ballot_batch_wait_ms: 2,
            rate_login_per_ip: "30/min".into(),
            rate_objections_per_ip: "5/hour".into(),
            // A hospital's or a village's clients may share one address: generous per
            // address, strict per voter.
            rate_ballots_per_ip: "600/min".into(),
            rate_ballots_per_voter: "20/min".into(),
            rate_reads_per_ip: "1200/min".into(),
            rate_limiter_max_keys: 1_000_000,
            phone_key: None,
            survey_retention_days: 180,
            sms_gateway: "log".into(),
            sms_sender: true,
            sms_per_second: 10,
            sms_api_base: None,
            sms_secret_id: None,
            sms_secret_key: None,
            sms_app_id: None,
            sms_sign_name: None,
            sms_template_id: None,
            sms_region: "ap-guangzhou".into(),
            sms_timeout_ms: 5_000,
            sms_unknown_horizon_hours: 24,
            survey_ttl_days: 14,
            public_base_url: "http://127.0.0.1:8080".into(),
        }
    }
}

/// Which relational backend the database URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseKind {
    Postgres,
    Sqlite,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Validated settings. Secrets are wrapped so that `Debug` never prints them.
#[derive(Debug, Clone)]
pub struct Settings {
    pub bind: SocketAddr,
    pub database_url: Secret,
    pub database_kind: DatabaseKind,
    pub db_max_connections: u32,
    pub redis_url: Option<Secret>,
    pub redis_prefix: String,
    /// `None` only on SQLite: the store then keeps a generated secret of its own.
    pub secret: Option<Secret>,
    pub dev_login: bool,
    pub wechat: WechatSettings,
    pub log_format: LogFormat,
    pub log_level: String,
    pub staff_token_ttl: Duration,
    pub citizen_token_ttl: Duration,
    pub login_max_failures: u32,
    pub login_lockout: Duration,
    pub max_body_bytes: usize,
    pub shutdown_timeout: Duration,
    pub trusted_proxies: Vec<IpNet>,
    /// 0 means one worker per core.
    pub workers: usize,
    /// Group commit: the most ballots in one ledger transaction, and how long a batch waits
    /// for more after its first ballot.
    pub ballot_batch_max: usize,
    pub ballot_batch_wait: Duration,
    pub rates: RateSettings,
    /// The AES-256 key of stored phone numbers (`None`: derived from the service secret).
    pub phone_key: Option<[u8; 32]>,
    /// How long a service record keeps its phone number.
    pub survey_retention: Duration,
    pub sms: SmsSettings,
}

/// How survey links are sent.
#[derive(Debug, Clone)]
pub struct SmsSettings {
    /// `log`: each link is written to the log (never the number), for the demo and tests.
    pub gateway: String,
    /// Whether this instance sends (several may: each send is claimed by one).
    pub sender: bool,
    /// The gateway's rate: sends per second at most.
    pub per_second: u32,
    /// How long a survey link can be answered after its SMS.
    pub survey_ttl: Duration,
    /// Where citizens reach the service: links are `<base>/s/<token>`.
    pub public_base_url: String,
    /// How long after a send of unknown outcome the gateway is asked about it (and its
    /// answers trusted): past it, a send the gateway cannot tell about is failed.
    pub unknown_horizon: Duration,
    /// The gateway's account, for `tencent` and `aliyun`.
    pub account: Option<GatewayAccount>,
}

/// An SMS gateway account (Tencent Cloud or Aliyun).
#[derive(Debug, Clone)]
pub struct GatewayAccount {
    pub api_base: String,
    /// Tencent's `SecretId`, Aliyun's `AccessKeyId`.
    pub secret_id: String,
    pub secret_key: Secret,
    /// Tencent only: the region header and `SmsSdkAppId`.
    pub region: String,
    pub app_id: String,
    /// The approved signature (签名) and template (模板).
    pub sign_name: String,
    pub template_id: String,
    pub timeout: Duration,
}

/// Rate limits per route class (`None`: off), and how many keys each in-process limiter
/// keeps at most.
#[derive(Debug, Clone)]
pub struct RateSettings {
    pub login_per_ip: Option<RateSpec>,
    /// Objections to a draft result (公示异议) per client address.
    pub objections_per_ip: Option<RateSpec>,
    pub ballots_per_ip: Option<RateSpec>,
    pub ballots_per_voter: Option<RateSpec>,
    pub reads_per_ip: Option<RateSpec>,
    pub max_keys: usize,
}

#[derive(Debug, Clone)]
pub struct WechatSettings {
    pub appid: Option<String>,
    pub secret: Option<Secret>,
    pub api_base: String,
    pub timeout: Duration,
}

/// A string that is never printed by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A configuration error: the setting at fault and what is wrong with it.
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {setting}: {problem}")]
pub struct ConfigError {
    pub setting: String,
    pub problem: String,
}

fn bad(setting: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        setting: setting.into(),
        problem: problem.into(),
    }
}

/// The minimum length of `MINYI_SECRET`: it keys voter ids and tokens, so it must not be
/// guessable.
pub const MIN_SECRET_LEN: usize = 32;

impl Settings {
    /// Loads from defaults, the optional file (`MINYI_CONFIG`, else `./minyi.toml` if it
    /// exists) and the process environment.
    pub fn load() -> Result<Self, ConfigError> {
        let file = std::env::var_os("MINYI_CONFIG")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("minyi.toml"));
        Self::from_figment(Self::figment(&file))
    }

    fn figment(file: &Path) -> Figment {
        Figment::from(Serialized::defaults(RawSettings::default()))
            .merge(Toml::file(file))
            .merge(
                Env::raw()
                    .only(&["DATABASE_URL", "REDIS_URL"])
                    .map(|k| k.as_str().to_ascii_lowercase().into()),
            )
            .merge(Env::prefixed("MINYI_").ignore(&["CONFIG"]))
    }

    fn from_figment(figment: Figment) -> Result<Self, ConfigError> {
        let raw: RawSettings = figment.extract().map_err(|e| {
            let setting = e
                .path
                .first()
                .map(|p| env_name(p))
                .unwrap_or_else(|| "configuration".into());
            bad(&setting, e.kind.to_string())
        })?;
        Self::validate(raw)
    }

    /// Builds settings from explicit overrides on top of the defaults, ignoring the file
    /// and the environment. Tests and the demo use it.
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(RawSettings::default()));
        for (key, value) in pairs {
            let value: figment::value::Value = value.parse().unwrap_or_else(|_| (*value).into());
            figment = figment.merge((*key, value));
        }
        Self::from_figment(figment)
    }

    fn validate(raw: RawSettings) -> Result<Self, ConfigError> {
        let bind: SocketAddr = raw.bind.parse().map_err(|_| {
            bad(
                "MINYI_BIND",
                format!("`{}` is not an address like 127.0.0.1:8080", raw.bind),
            )
        })?;
        let database_kind = if raw.database_url.starts_with("postgres://")
            || raw.database_url.starts_with("postgresql://")
        {
            DatabaseKind::Postgres
        } else if raw.database_url.starts_with("sqlite:") {
            DatabaseKind::Sqlite
        } else {
            return Err(bad(
                "DATABASE_URL",
                "must start with sqlite: or postgres://",
            ));
        };
        if raw.db_max_connections == 0 {
            return Err(bad("MINYI_DB_MAX_CONNECTIONS", "must be at least 1"));
        }
        if let Some(url) = &raw.redis_url
            && !(url.starts_with("redis://") || url.starts_with("rediss://"))
        {
            return Err(bad("REDIS_URL", "must start with redis:// or rediss://"));
        }
        if raw.redis_prefix.is_empty() || raw.redis_prefix.contains(['{', '}', ' ']) {
            return Err(bad(
                "MINYI_REDIS_PREFIX",
                "must be non-empty, without braces or spaces",
            ));
        }
        let secret = match raw.secret.filter(|s| !s.is_empty()) {
            Some(s) if s.len() < MIN_SECRET_LEN => {
                return Err(bad(
                    "MINYI_SECRET",
                    format!("must be at least {MIN_SECRET_LEN} characters"),
                ));
            }
            Some(s) => Some(Secret(s)),
            None if database_kind == DatabaseKind::Postgres => {
                return Err(bad(
                    "MINYI_SECRET",
                    "is required with a PostgreSQL DATABASE_URL (a production deployment must not run on a default secret)",
                ));
            }
            None => None,
        };
        if !(raw.wechat_api_base.starts_with("http://")
            || raw.wechat_api_base.starts_with("https://"))
        {
            return Err(bad(
                "MINYI_WECHAT_API_BASE",
                "must be an http:// or https:// URL",
            ));
        }
        let log_format = match raw.log_format.as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                return Err(bad(
                    "MINYI_LOG_FORMAT",
                    format!("`{other}` is not text or json"),
                ));
            }
        };
        if tracing_subscriber::EnvFilter::try_new(&raw.log_level).is_err() {
            return Err(bad(
                "MINYI_LOG_LEVEL",
                format!("`{}` is not a log filter", raw.log_level),
            ));
        }
        let positive = |name: &str, v: u64| {
            if v == 0 {
                Err(bad(name, "must be greater than 0"))
            } else {
                Ok(Duration::from_secs(v))
            }
        };
        let staff_token_ttl = positive("MINYI_STAFF_TOKEN_TTL_SECS", raw.staff_token_ttl_secs)?;
        let citizen_token_ttl =
            positive("MINYI_CITIZEN_TOKEN_TTL_SECS", raw.citizen_token_ttl_secs)?;
        let login_lockout = positive("MINYI_LOGIN_LOCKOUT_SECS", raw.login_lockout_secs)?;
        if raw.login_max_failures == 0 {
            return Err(bad("MINYI_LOGIN_MAX_FAILURES", "must be at least 1"));
        }
        if raw.max_body_bytes < 1024 {
            return Err(bad("MINYI_MAX_BODY_BYTES", "must be at least 1024"));
        }
        if raw.wechat_timeout_ms == 0 {
            return Err(bad("MINYI_WECHAT_TIMEOUT_MS", "must be greater than 0"));
        }
        let trusted_proxies =
            parse_cidrs(&raw.trusted_proxies).map_err(|e| bad("MINYI_TRUSTED_PROXIES", e))?;
        let rate = |name: &str, text: &str| RateSpec::parse(text).map_err(|e| bad(name, e));
        if raw.rate_limiter_max_keys < 1000 {
            return Err(bad("MINYI_RATE_LIMITER_MAX_KEYS", "must be at least 1000"));
        }
        let phone_key = match raw.phone_key.filter(|k| !k.is_empty()) {
            None => None,
            Some(k) => Some(
                hex::decode(k.trim())
                    .ok()
                    .and_then(|b| <[u8; 32]>::try_from(b).ok())
                    .ok_or_else(|| {
                        bad(
                            "MINYI_PHONE_KEY",
                            "must be 64 hexadecimal digits (32 bytes)",
                        )
                    })?,
            ),
        };
        let account = match raw.sms_gateway.as_str() {
            "log" => None,
            gateway @ ("tencent" | "aliyun") => {
                let need = |name: &str, v: &Option<String>| {
                    v.clone().filter(|v| !v.trim().is_empty()).ok_or_else(|| {
                        bad(
                            name,
                            format!("is required with MINYI_SMS_GATEWAY={gateway}"),
                        )
                    })
                };
                let api_base = raw.sms_api_base.clone().unwrap_or_else(|| {
                    match gateway {
                        "tencent" => "https://sms.tencentcloudapi.com",
                        _ => "https://dysmsapi.aliyuncs.com",
                    }
                    .into()
                });
                if !(api_base.starts_with("http://") || api_base.starts_with("https://")) {
                    return Err(bad(
                        "MINYI_SMS_API_BASE",
                        "must be an http:// or https:// URL",
                    ));
                }
                // A send must end well within its lease's last minute (see `app::sms`).
                if !(1..=30_000).contains(&raw.sms_timeout_ms) {
                    return Err(bad("MINYI_SMS_TIMEOUT_MS", "must be between 1 and 30000"));
                }
                Some(GatewayAccount {
                    api_base,
                    secret_id: need("MINYI_SMS_SECRET_ID", &raw.sms_secret_id)?,
                    secret_key: Secret(need("MINYI_SMS_SECRET_KEY", &raw.sms_secret_key)?),
                    region: raw.sms_region.clone(),
                    app_id: if gateway == "tencent" {
                        need("MINYI_SMS_APP_ID", &raw.sms_app_id)?
                    } else {
                        String::new()
                    },
                    sign_name: need("MINYI_SMS_SIGN_NAME", &raw.sms_sign_name)?,
                    template_id: need("MINYI_SMS_TEMPLATE_ID", &raw.sms_template_id)?,
                    timeout: Duration::from_millis(raw.sms_timeout_ms),
                })
            }
            other => {
                return Err(bad(
                    "MINYI_SMS_GATEWAY",
                    format!("`{other}`: use log, tencent or aliyun"),
                ));
            }
        };
        if !(1..=1000).contains(&raw.sms_per_second) {
            return Err(bad("MINYI_SMS_PER_SECOND", "must be between 1 and 1000"));
        }
        // Longer than a gateway takes to show a send (Tencent: an hour), shorter than its
        // status query reaches back (Tencent: seven days) by a day.
        if !(2..=144).contains(&raw.sms_unknown_horizon_hours) {
            return Err(bad(
                "MINYI_SMS_UNKNOWN_HORIZON_HOURS",
                "must be between 2 and 144",
            ));
        }
        if !(1..=90).contains(&raw.survey_ttl_days) {
            return Err(bad("MINYI_SURVEY_TTL_DAYS", "must be between 1 and 90"));
        }
        if !(raw.public_base_url.starts_with("http://")
            || raw.public_base_url.starts_with("https://"))
        {
            return Err(bad(
                "MINYI_PUBLIC_BASE_URL",
                "must be an http:// or https:// URL",
            ));
        }
        if !(1..=3650).contains(&raw.survey_retention_days) {
            return Err(bad(
                "MINYI_SURVEY_RETENTION_DAYS",
                "must be between 1 and 3650",
            ));
        }
        let rates = RateSettings {
            login_per_ip: rate("MINYI_RATE_LOGIN_PER_IP", &raw.rate_login_per_ip)?,
            objections_per_ip: rate("MINYI_RATE_OBJECTIONS_PER_IP", &raw.rate_objections_per_ip)?,
            ballots_per_ip: rate("MINYI_RATE_BALLOTS_PER_IP", &raw.rate_ballots_per_ip)?,
            ballots_per_voter: rate("MINYI_RATE_BALLOTS_PER_VOTER", &raw.rate_ballots_per_voter)?,
            reads_per_ip: rate("MINYI_RATE_READS_PER_IP", &raw.rate_reads_per_ip)?,
            max_keys: raw.rate_limiter_max_keys,
        };
        Ok(Self {
            bind,
            database_url: Secret(raw.database_url),
            database_kind,
            db_max_connections: raw.db_max_connections,
            redis_url: raw.redis_url.filter(|u| !u.is_empty()).map(Secret),
            redis_prefix: raw.redis_prefix,
            secret,
            dev_login: raw.dev_login,
            wechat: WechatSettings {
                appid: raw.wechat_appid.filter(|s| !s.is_empty()),
                secret: raw.wechat_secret.filter(|s| !s.is_empty()).map(Secret),
                api_base: raw.wechat_api_base.trim_end_matches('/').to_string(),
                timeout: Duration::from_millis(raw.wechat_timeout_ms),
            },
            log_format,
            log_level: raw.log_level,
            staff_token_ttl,
            citizen_token_ttl,
            login_max_failures: raw.login_max_failures,
            login_lockout,
            max_body_bytes: raw.max_body_bytes,
            shutdown_timeout: Duration::from_secs(raw.shutdown_timeout_secs),
            trusted_proxies,
            workers: raw.workers,
            ballot_batch_max: raw.ballot_batch_max,
            ballot_batch_wait: Duration::from_millis(raw.ballot_batch_wait_ms),
            rates,
            phone_key,
            survey_retention: Duration::from_secs(u64::from(raw.survey_retention_days) * 86_400),
            sms: SmsSettings {
                gateway: raw.sms_gateway,
                sender: raw.sms_sender,
                per_second: raw.sms_per_second,
                survey_ttl: Duration::from_secs(u64::from(raw.survey_ttl_days) * 86_400),
                public_base_url: raw.public_base_url.trim_end_matches('/').to_string(),
                unknown_horizon: Duration::from_secs(
                    u64::from(raw.sms_unknown_horizon_hours) * 3600,
                ),
                account,
            },
        })
    }
}

/// A yes/no setting: `true`/`false`, `1`/`0`, `yes`/`no` or `on`/`off`.
fn flag<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Flag {
        Bool(bool),
        Int(i64),
        Text(String),
    }
    match Flag::deserialize(d)? {
        Flag::Bool(b) => Ok(b),
        Flag::Int(0) => Ok(false),
        Flag::Int(1) => Ok(true),
        Flag::Text(t) => match t.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" | "" => Ok(false),
            _ => Err(serde::de::Error::custom(format!(
                "`{t}` is not true/false, 1/0, yes/no or on/off"
            ))),
        },
        Flag::Int(n) => Err(serde::de::Error::custom(format!("`{n}` is not 1 or 0"))),
    }
}

/// The environment variable that sets a field, for error messages.
fn env_name(field: &str) -> String {
    match field {
        "database_url" | "redis_url" => field.to_ascii_uppercase(),
        other => format!("MINYI_{}", other.to_ascii_uppercase()),
    }
}

/// Parses a comma-separated list of CIDRs; a bare address counts as a single host.
pub fn parse_cidrs(list: &str) -> Result<Vec<IpNet>, String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| format!("`{s}` is not an address or CIDR range"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_embedded_deployment() {
        let s = Settings::from_pairs(&[]).unwrap();
        assert_eq!(s.database_kind, DatabaseKind::Sqlite);
        assert!(s.redis_url.is_none());
        assert!(!s.dev_login);
        assert_eq!(s.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(s.wechat.api_base, "https://api.weixin.qq.com");
    }

    #[test]
    fn postgres_without_a_secret_is_refused_naming_the_setting() {
        let e = Settings::from_pairs(&[("database_url", "postgres://x@localhost/db")]).unwrap_err();
        assert_eq!(e.setting, "MINYI_SECRET");
    }

    #[test]
    fn the_phone_key_is_32_bytes_of_hex_and_retention_is_bounded() {
        let key = "ab".repeat(32);
        let s = Settings::from_pairs(&[("phone_key", key.as_str())]).unwrap();
        assert_eq!(s.phone_key, Some([0xab; 32]));
        assert_eq!(s.survey_retention, Duration::from_secs(180 * 86_400));
        for bad in ["abcd", "zz".repeat(32).as_str()] {
            let e = Settings::from_pairs(&[("phone_key", bad)]).unwrap_err();
            assert_eq!(e.setting, "MINYI_PHONE_KEY");
        }
        let e = Settings::from_pairs(&[("survey_retention_days", "0")]).unwrap_err();
        assert_eq!(e.setting, "MINYI_SURVEY_RETENTION_DAYS");
    }

    #[test]
    fn the_unknown_outcome_horizon_and_the_gateway_timeout_are_bounded() {
        let s = Settings::from_pairs(&[]).unwrap();
        assert_eq!(s.sms.unknown_horizon, Duration::from_secs(24 * 3600));
        for hours in ["1", "145"] {
            let e = Settings::from_pairs(&[("sms_unknown_horizon_hours", hours)]).unwrap_err();
            assert_eq!(e.setting, "MINYI_SMS_UNKNOWN_HORIZON_HOURS");
        }
        let aliyun = [
            ("sms_gateway", "aliyun"),
            ("sms_secret_id", "id"),
            ("sms_secret_key", "key"),
            ("sms_sign_name", "示例"),
            ("sms_template_id", "SMS_1"),
        ];
        assert!(Settings::from_pairs(&aliyun).is_ok());
        let slow = [aliyun.as_slice(), &[("sms_timeout_ms", "30001")]].concat();
        let e = Settings::from_pairs(&slow).unwrap_err();
        assert_eq!(e.setting, "MINYI_SMS_TIMEOUT_MS");
    }

    #[test]
    fn a_short_secret_is_refused() {
        let e = Settings::from_pairs(&[("secret", "short")]).unwrap_err();
        assert_eq!(e.setting, "MINYI_SECRET");
    }

    #[test]
    fn a_wrong_type_names_the_environment_variable() {
        let e = Settings::from_pairs(&[("login_max_failures", "many")]).unwrap_err();
        assert_eq!(e.setting, "MINYI_LOGIN_MAX_FAILURES");
        let e = Settings::from_pairs(&[("database_url", "mysql://x")]).unwrap_err();
        assert_eq!(e.setting, "DATABASE_URL");
    }

    #[test]
    fn flags_accept_the_usual_spellings() {
        for (text, expected) in [
            ("1", true),
            ("true", true),
            ("yes", true),
            ("0", false),
            ("off", false),
        ] {
            assert_eq!(
                Settings::from_pairs(&[("dev_login", text)])
                    .unwrap()
                    .dev_login,
                expected,
                "{text}"
            );
        }
        assert_eq!(
            Settings::from_pairs(&[("dev_login", "maybe")])
                .unwrap_err()
                .setting,
            "MINYI_DEV_LOGIN"
        );
    }

    #[test]
    fn trusted_proxies_parse_as_cidrs_and_hosts() {
        let nets = parse_cidrs("10.0.0.0/8, 127.0.0.1").unwrap();
        assert_eq!(nets.len(), 2);
        assert!(parse_cidrs("10.0.0.0/99").is_err());
    }
}
