//! The PostgreSQL ledger: the production record.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Postgres, QueryBuilder, Row};

use super::*;
use crate::domain::record::{self, kinds};
use crate::domain::{audit, campaign};

pub struct PgStore {
    pool: PgPool,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl PgStore {
    pub async fn connect(url: &str, max_connections: u32) -> StoreResult<Self> {
        let options: PgConnectOptions = url.parse()?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Self { pool })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

sql_store!(store: PgStore, db: Postgres, kind: DatabaseKind::Postgres, begin: "BEGIN", snapshot: "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", lock: " FOR UPDATE", share: " FOR SHARE");
