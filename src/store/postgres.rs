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

sql_store!(store: PgStore, db: Postgres, kind: DatabaseKind::Postgres, begin: "BEGIN", snapshot: "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", lock: " FOR UPDATE", share: " FOR SHARE", campaign_lock: " FOR NO KEY UPDATE", skip_locked: " FOR UPDATE SKIP LOCKED", ballot_writer: write_ballots_at_once);

/// Records one campaign's share of a ballot batch after its locked head in one statement:
/// the entries, the new head, the ballots and their votes. The head's lock is what every
/// batch of the campaign queues on, and each statement under it costs a round trip; this
/// writer holds it for this statement and the commit only. The arrays are bound whole
/// (`UNNEST`), so the statement has one shape whatever the batch size and is prepared once
/// per connection. Returns the ballots in the order of `members`.
async fn write_ballots_at_once(
    conn: &mut sqlx::PgConnection,
    campaign_id: i64,
    linked: &Linked,
    members: &[&NewBallot],
) -> StoreResult<Vec<Ballot>> {
    let e = &linked.entries;
    let mut ids = Vec::with_capacity(members.len());
    for b in members {
        ids.push(candidate_ids_text(b)?);
    }
    let (vote_seqs, vote_candidates): (Vec<i64>, Vec<i64>) = members
        .iter()
        .zip(e)
        .flat_map(|(b, entry)| b.candidate_ids.iter().map(move |c| (entry.seq, *c)))
        .unzip();
    let rows = sqlx::query(concat!(
        "WITH entries AS (
            INSERT INTO audit_entries (campaign_id, seq, kind, body, prev_hash, hash)
            SELECT $1, * FROM UNNEST($2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[])
        ), head AS (
            UPDATE audit_heads SET seq = $7, hash = $8 WHERE campaign_id = $1
        ), ballots AS (
            INSERT INTO ballots (campaign_id, voter_id, candidate_ids, idempotency_key, request_hash,
                                 remaining_today, seq, receipt, cast_at, quota_day,
                                 status, flags, device_hash, ip_hash, network_hash)
            SELECT $1, * FROM UNNEST($9::text[], $10::text[], $11::text[], $12::text[], $13::int[],
                                     $2::bigint[], $6::text[], $14::timestamptz[], $15::text[],
                                     $18::text[], $19::text[], $20::text[], $21::text[], $22::text[])
            RETURNING ",
        ballot_columns!(),
        "
        ), votes AS (
            INSERT INTO ballot_votes (ballot_id, campaign_id, candidate_id)
            SELECT b.id, $1, v.candidate_id
            FROM UNNEST($16::bigint[], $17::bigint[]) AS v (seq, candidate_id)
            JOIN ballots b ON b.seq = v.seq
        )
        SELECT * FROM ballots"
    ))
    .bind(campaign_id)
    .bind(e.iter().map(|x| x.seq).collect::<Vec<_>>())
    .bind(e.iter().map(|x| x.kind.clone()).collect::<Vec<_>>())
    .bind(&linked.texts)
    .bind(e.iter().map(|x| x.prev_hash.clone()).collect::<Vec<_>>())
    .bind(e.iter().map(|x| x.hash.clone()).collect::<Vec<_>>())
    .bind(linked.head.0)
    .bind(&linked.head.1)
    .bind(members.iter().map(|b| b.voter_id.clone()).collect::<Vec<_>>())
    .bind(&ids)
    .bind(members.iter().map(|b| b.idempotency_key.clone()).collect::<Vec<_>>())
    .bind(members.iter().map(|b| b.request_hash.clone()).collect::<Vec<_>>())
    .bind(members.iter().map(|b| b.remaining_today as i32).collect::<Vec<_>>())
    .bind(members.iter().map(|b| b.cast_at).collect::<Vec<_>>())
    .bind(members.iter().map(|b| b.quota_day.to_string()).collect::<Vec<_>>())
    .bind(vote_seqs)
    .bind(vote_candidates)
    .bind(members.iter().map(|b| b.status).collect::<Vec<_>>())
    .bind(members.iter().map(|b| b.flags_text()).collect::<Vec<_>>())
    .bind(members.iter().map(|b| b.device_hash.clone()).collect::<Vec<_>>())
    .bind(members.iter().map(|b| b.ip_hash.clone()).collect::<Vec<_>>())
    .bind(members.iter().map(|b| b.network_hash.clone()).collect::<Vec<_>>())
    .fetch_all(&mut *conn)
    .await?;
    in_member_order(&rows, e)
}
