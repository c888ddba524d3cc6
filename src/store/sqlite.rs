//! The SQLite ledger: the embedded default, a single file and no services.
//!
//! SQLite has one writer at a time: write transactions start with `BEGIN IMMEDIATE` so that
//! two of them never deadlock upgrading a read lock, and WAL with `synchronous = FULL` keeps
//! every acknowledged commit across a crash.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite};

use super::*;
use crate::domain::record::{self, kinds};
use crate::domain::{audit, campaign};

pub struct SqliteStore {
    pool: SqlitePool,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

impl SqliteStore {
    pub async fn connect(url: &str, max_connections: u32) -> StoreResult<Self> {
        let options: SqliteConnectOptions = url.parse()?;
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Self { pool })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

sql_store!(store: SqliteStore, db: Sqlite, kind: DatabaseKind::Sqlite, begin: "BEGIN IMMEDIATE", snapshot: "BEGIN", lock: "", share: "");
