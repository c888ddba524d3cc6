//! WeChat mini-program login: `jscode2session` exchanges the code from `wx.login()` for the
//! user's openid. WeChat answers HTTP 200 even on errors, so the `errcode` field decides.
//!
//! The openid and the session key are secrets of the citizen's: `Session` never prints them,
//! and the session key is dropped as soon as the answer is read (we do not decrypt user data).

use std::time::Duration;

use serde::Deserialize;

use crate::config::WechatSettings;

/// What a successful login gives us.
pub struct Session {
    pub openid: String,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Session { openid: *** }")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WechatError {
    #[error("WeChat login is not configured")]
    NotConfigured,
    #[error("invalid or used code (40029)")]
    InvalidCode,
    #[error("login rate limit (45011)")]
    RateLimited,
    #[error("high-risk user blocked (40226)")]
    HighRisk,
    #[error("WeChat system busy (-1)")]
    Busy,
    #[error("WeChat error {0}")]
    Other(i64),
    #[error("WeChat did not answer in time")]
    Timeout,
    #[error("WeChat unreachable or answered badly: {0}")]
    Transport(String),
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    errcode: i64,
    #[serde(default)]
    openid: Option<String>,
}

#[derive(Clone)]
pub struct WechatClient {
    http: reqwest::Client,
    settings: WechatSettings,
}

impl WechatClient {
    pub fn new(settings: WechatSettings) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(3)))
            .build()?;
        Ok(Self { http, settings })
    }

    pub fn is_configured(&self) -> bool {
        self.settings.appid.is_some() && self.settings.secret.is_some()
    }

    #[tracing::instrument(name = "wechat.jscode2session", skip_all)]
    pub async fn code_to_session(&self, code: &str) -> Result<Session, WechatError> {
        let (Some(appid), Some(secret)) = (&self.settings.appid, &self.settings.secret) else {
            return Err(WechatError::NotConfigured);
        };
        let url = format!("{}/sns/jscode2session", self.settings.api_base);
        let response = self
            .http
            .get(url)
            .query(&[
                ("appid", appid.as_str()),
                ("secret", secret.expose()),
                ("js_code", code),
                ("grant_type", "authorization_code"),
            ])
            .send()
            .await
            .map_err(transport)?;
        if !response.status().is_success() {
            return Err(WechatError::Transport(format!(
                "HTTP {}",
                response.status()
            )));
        }
        // Read as text and parse ourselves: WeChat labels its JSON `text/plain`.
        let body = response.text().await.map_err(transport)?;
        let answer: Answer = serde_json::from_str(&body)
            .map_err(|_| WechatError::Transport("unreadable answer".into()))?;
        match (answer.errcode, answer.openid) {
            (0, Some(openid)) if !openid.is_empty() => Ok(Session { openid }),
            (0, _) => Err(WechatError::Transport("answer without openid".into())),
            (40029, _) => Err(WechatError::InvalidCode),
            (45011, _) => Err(WechatError::RateLimited),
            (40226, _) => Err(WechatError::HighRisk),
            (-1, _) => Err(WechatError::Busy),
            (code, _) => Err(WechatError::Other(code)),
        }
    }
}

fn transport(e: reqwest::Error) -> WechatError {
    if e.is_timeout() {
        WechatError::Timeout
    } else {
        // Without the URL: it carries the app secret and the code in its query.
        WechatError::Transport(e.without_url().to_string())
    }
}
