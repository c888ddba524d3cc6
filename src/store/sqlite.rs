//! The SQLite ledger: the embedded default, a single file and no services.
//!
//! SQLite has one writer at a time: write transactions start with `BEGIN IMMEDIATE` so that
//! two of them never deadlock upgrading a read lock, and WAL with `synchronous = FULL` keeps
//! every acknowledged commit across a crash. The WAL is copied back into the database file
//! by a background task, not by whichever commit happens to cross the threshold: that copy
//! and its fsync would otherwise stall a batch of ballots for tens of milliseconds.

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
            .foreign_keys(true)
            .pragma("wal_autocheckpoint", "0");
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        tokio::spawn(checkpoints(pool.clone()));
        Ok(Self { pool })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

/// Copies the WAL back into the database file every second, without waiting for readers or
/// writers (`PASSIVE`), until the pool closes.
async fn checkpoints(pool: SqlitePool) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    while !pool.is_closed() {
        tick.tick().await;
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&pool)
            .await
        {
            tracing::warn!(error = %e, "SQLite checkpoint failed; the next one retries");
        }
    }
}

sql_store!(store: SqliteStore, db: Sqlite, kind: DatabaseKind::Sqlite, begin: "BEGIN IMMEDIATE", snapshot: "BEGIN", lock: "", share: "", campaign_lock: "", skip_locked: "", ballot_writer: write_ballots_plain, ballot_batch: record_ballots_checked);

/// One writer at a time: every batch is checked again in its transaction.
async fn record_ballots_checked(
    store: &SqliteStore,
    batch: &[NewBallot],
) -> StoreResult<Vec<StoreResult<Ballot>>> {
    store.record_ballots_checked(batch).await
}
