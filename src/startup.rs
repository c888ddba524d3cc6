//! Wiring: `Application::build(settings)` opens the store and the counter store, makes the
//! clients, binds the listener (port 0 works: tests read the bound port) and returns a server
//! ready to run. The command line, the demo and the tests all start the service this way.

use std::net::TcpListener;
use std::sync::{Arc, Once};

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use tracing_actix_web::TracingLogger;
use utoipa_actix_web::AppExt;

use crate::app::Services;
use crate::app::batcher::Lanes;
use crate::config::{DatabaseKind, Settings};
use crate::domain::keyed::ServiceKey;
use crate::http::{self, OpenApiDoc, error::ApiError, observe};
use crate::integrations::wechat::WechatClient;
use crate::{counters, store, telemetry};

pub struct Application {
    port: u16,
    server: Server,
    services: Services,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("database: {0}")]
    Store(#[from] store::StoreError),
    #[error("counter store: {0}")]
    Counters(#[from] counters::CounterError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("HTTP client: {0}")]
    Client(String),
}

/// rustls needs one crypto provider chosen per process; we use ring.
fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Opens the backing services the settings name (migrating the database) without serving.
pub async fn services(settings: Settings) -> Result<Services, StartError> {
    install_crypto_provider();
    let store = store::connect(&settings).await?;
    let key = match &settings.secret {
        Some(secret) => ServiceKey::new(secret.expose().as_bytes()),
        None => {
            debug_assert_eq!(settings.database_kind, DatabaseKind::Sqlite);
            tracing::info!("MINYI_SECRET not set: using the secret kept in the SQLite database");
            ServiceKey::new(store.local_secret().await?.as_bytes())
        }
    };
    let counters = counters::connect(&settings)?;
    let wechat = WechatClient::new(settings.wechat.clone())
        .map_err(|e| StartError::Client(e.to_string()))?;
    if !wechat.is_configured() {
        tracing::warn!(
            "MINYI_WECHAT_APPID / MINYI_WECHAT_SECRET not set: WeChat login answers 503"
        );
    }
    // PostgreSQL: two batches of a campaign in flight, four in all (each holds a connection
    // of the pool while it waits for the one before it).
    let (writers, lanes) = match settings.database_kind {
        DatabaseKind::Postgres => ((2, 4), Lanes::PerCampaign),
        DatabaseKind::Sqlite => ((1, 1), Lanes::One),
    };
    let ballots = crate::app::batcher::Batcher::start(
        store.clone(),
        counters.clone(),
        settings.ballot_batch_max,
        settings.ballot_batch_wait,
        writers,
        lanes,
    );
    let limits = crate::app::limits::Limits::new(&settings.rates, counters.clone());
    limits.start_sweeping();
    let vault = Arc::new(crate::app::vault::PhoneVault::new(&key, settings.phone_key));
    Ok(Services {
        vault,
        settings: Arc::new(settings),
        store,
        counters,
        wechat,
        key,
        ballots,
        limits,
        campaigns: Default::default(),
        clock: Arc::new(chrono::Utc::now),
    })
}

/// Recounts every campaign's live counts from the ledger, in the background: a crashed
/// instance may have committed batches it never counted. Ballots go on meanwhile (the
/// recount is exact while they do); the database or Redis may still be down, so it retries.
async fn recount_at_start(services: Services) {
    for attempt in 1..=10u32 {
        match crate::app::recount::recount_all(&services).await {
            Ok(n) => {
                tracing::info!(campaigns = n, "live counts recounted from the ledger");
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, attempt, "live counts not recounted yet; retrying");
                tokio::time::sleep(std::time::Duration::from_secs(3)).await;
            }
        }
    }
    tracing::error!("live counts not recounted at start; run `minyi reconcile`");
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartError> {
        Self::build_with_clock(settings, None).await
    }

    /// As `build`, with another clock for the vote path (tests only: the command line and
    /// configuration always use the system clock).
    pub async fn build_with_clock(
        settings: Settings,
        clock: Option<crate::app::Clock>,
    ) -> Result<Self, StartError> {
        let addr = settings.bind.to_string();
        let listener =
            TcpListener::bind(&addr).map_err(|source| StartError::Bind { addr, source })?;
        let mut services = services(settings).await?;
        if let Some(clock) = clock {
            services.clock = clock;
        }
        Self::serve(services, listener)
    }

    fn serve(services: Services, listener: TcpListener) -> Result<Self, StartError> {
        let settings = services.settings.clone();
        let port = listener
            .local_addr()
            .map_err(|source| StartError::Bind {
                addr: "?".into(),
                source,
            })?
            .port();
        let dev_login = settings.dev_login;
        if dev_login {
            tracing::warn!(
                "MINYI_DEV_LOGIN is on: POST /api/v1/auth/dev logs anyone in without WeChat"
            );
        }
        let doc = {
            let (_, routes) =
                http::routes(App::new().into_utoipa_app(), dev_login).split_for_parts();
            let mut doc = http::openapi_base();
            doc.merge(routes);
            web::Data::new(OpenApiDoc(serde_json::to_string(&doc).unwrap_or_default()))
        };
        let metrics = web::Data::new(telemetry::metrics_handle());
        let data = web::Data::new(services.clone());
        let limit = settings.max_body_bytes;
        let server = HttpServer::new(move || {
            let (app, _) = http::routes(App::new().into_utoipa_app(), dev_login).split_for_parts();
            app.app_data(data.clone())
                .app_data(metrics.clone())
                .app_data(doc.clone())
                .app_data(
                    web::JsonConfig::default()
                        .limit(limit)
                        .error_handler(http::json_error(limit)),
                )
                .app_data(web::PayloadConfig::default().limit(limit))
                .app_data(web::QueryConfig::default().error_handler(http::query_error))
                .default_service(web::to(|| async {
                    Err::<actix_web::HttpResponse, _>(ApiError::NotFound)
                }))
                .wrap(from_fn(http::limit::rate_limit))
                .wrap(http::json_errors())
                .wrap(from_fn(observe::metrics_and_request_id))
                .wrap(TracingLogger::<observe::MinyiRootSpan>::new())
        })
        .shutdown_timeout(settings.shutdown_timeout.as_secs());
        let server = if settings.workers > 0 {
            server.workers(settings.workers)
        } else {
            server
        };
        let server = server
            .listen(listener)
            .map_err(|source| StartError::Bind {
                addr: "listener".into(),
                source,
            })?
            .run();
        tracing::info!(port, database = ?settings.database_kind, counters = services.counters.backend(), "listening");
        tokio::spawn(recount_at_start(services.clone()));
        tokio::spawn(crate::app::surveys::purge_phones_forever(services.clone()));
        if services.settings.sms.sender {
            tokio::spawn(crate::app::sms::send_forever(services.clone()));
        }
        Ok(Self {
            port,
            server,
            services,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn services(&self) -> &Services {
        &self.services
    }

    /// Serves until the server stops (SIGTERM/SIGINT: in-flight requests finish first, up to
    /// `MINYI_SHUTDOWN_TIMEOUT_SECS`).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }

    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }
}
