//! The PostgreSQL ledger: the production record.

use std::collections::HashMap;
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
    /// Per campaign, where this instance expects the chain's head to be once the ballot
    /// batches it has sent have committed (see `record_ballot_batch`). Only a guess: the
    /// statement that writes after it checks it.
    heads: std::sync::Mutex<HashMap<i64, HeadGuess>>,
}

/// A campaign's chain head as this instance expects it: after the last batch it sent, or as
/// the last checked write left it; `None` when not known. `generation` moves on whenever the
/// guess is set anew or given up, so that a failed batch gives up only the guess it made.
#[derive(Default)]
struct HeadGuess {
    head: Option<(i64, String)>,
    generation: u64,
    /// Closes when the batch linked last is done (its sender is dropped), whatever came of it.
    last_done: Option<tokio::sync::watch::Receiver<()>>,
}

/// A batch's place after the guessed head: the head it expects, its entries, the guess's
/// generation, the batch linked before it (to wait for), and its own end (dropped when done).
struct Planned {
    expected: (i64, String),
    linked: Linked,
    generation: u64,
    before: Option<tokio::sync::watch::Receiver<()>>,
    _done: tokio::sync::watch::Sender<()>,
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
        Ok(Self {
            pool,
            heads: Default::default(),
        })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

sql_store!(store: PgStore, db: Postgres, kind: DatabaseKind::Postgres, begin: "BEGIN", snapshot: "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", lock: " FOR UPDATE", share: " FOR SHARE", campaign_lock: " FOR NO KEY UPDATE", skip_locked: " FOR UPDATE SKIP LOCKED", ballot_writer: write_ballots_under_lock, ballot_batch: record_ballot_batch);

/// A batch of ballots, most often in one statement and one round trip: when every ballot
/// was checked against the campaign's current version (the vote path's cached view) and
/// this instance knows the chain's head, the statement itself makes sure that both still
/// hold, and writes nothing otherwise. Then, or when the ballots were not all checked alike,
/// the batch is checked again in a transaction under the head's lock, as before.
///
/// Batches are pipelined: a batch is linked after the head the batch sent before it will
/// leave, and sent at once, without waiting for that batch to commit. Its statement queues in
/// PostgreSQL on the head's row lock and starts the moment the batch before commits, with no
/// round trip to the service in between; so the chain's one line is held by PostgreSQL's
/// work alone. A guess that proves wrong (the batch before failed, another instance appended,
/// an organizer changed the campaign) costs one statement that wrote nothing, counted in
/// `ballot_batch_rechecked_total`; the batches sent after it fail the same way, and the next
/// ones are checked until a checked write tells the head again.
async fn record_ballot_batch(
    store: &PgStore,
    batch: &[NewBallot],
) -> StoreResult<Vec<StoreResult<Ballot>>> {
    let Some(first) = batch.first() else {
        return Ok(Vec::new());
    };
    let campaign_id = first.campaign_id;
    if batch.iter().any(|b| b.campaign_id != campaign_id) {
        return store.record_ballots_checked(batch).await;
    }
    if let Some(version) = first.checked_version
        && batch.iter().all(|b| b.checked_version == Some(version))
    {
        let bodies = canonical_bodies(batch.iter().map(NewBallot::entry_body).collect())?;
        if let Some(mut plan) = store.link_after_guess(campaign_id, bodies)? {
            loop {
                let wrote = store
                    .write_if_unchanged(campaign_id, version, &plan.expected, &plan.linked, batch)
                    .await;
                match wrote {
                    Ok(Appended::Written(ballots)) => {
                        return Ok(ballots.into_iter().map(Ok).collect());
                    }
                    // Sent after the batch before it but arrived first: once that batch is
                    // done, the head is the one expected (or that batch failed, and the
                    // second try says so). Sent again once only: `before` is taken.
                    Ok(Appended::Early) if plan.before.is_some() => {
                        metrics::counter!("ballot_batch_resent_total").increment(1);
                        if let Some(mut before) = plan.before.take() {
                            let _ = before.changed().await;
                        }
                    }
                    Ok(Appended::Early | Appended::Moved) => {
                        metrics::counter!("ballot_batch_rechecked_total").increment(1);
                        store.give_up_guess(campaign_id, plan.generation);
                        break;
                    }
                    Err(e) => {
                        store.give_up_guess(campaign_id, plan.generation);
                        return Err(e);
                    }
                }
            }
        }
    }
    let results = store.record_ballots_checked(batch).await;
    // The checked path appends the batch's entries last, under the head's lock: the head is
    // its last ballot's entry (unknown when none was written).
    let head = results
        .as_ref()
        .ok()
        .and_then(|r| r.iter().flatten().max_by_key(|b| b.seq))
        .map(|b| (b.seq, b.receipt.clone()));
    store.set_guess(campaign_id, head);
    results
}

impl PgStore {
    fn guesses(&self) -> std::sync::MutexGuard<'_, HashMap<i64, HeadGuess>> {
        self.heads.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Links `bodies` after the head this instance expects, and expects the head they leave
    /// from now on; `None` when the head is not known.
    fn link_after_guess(
        &self,
        campaign_id: i64,
        bodies: Vec<(serde_json::Value, String)>,
    ) -> StoreResult<Option<Planned>> {
        let mut guesses = self.guesses();
        let guess = guesses.entry(campaign_id).or_default();
        let Some(expected) = guess.head.take() else {
            return Ok(None);
        };
        let linked = link_after(expected.clone(), bodies)?;
        guess.head = Some(linked.head.clone());
        let (done, done_rx) = tokio::sync::watch::channel(());
        Ok(Some(Planned {
            expected,
            linked,
            generation: guess.generation,
            before: guess.last_done.replace(done_rx),
            _done: done,
        }))
    }

    /// Forgets the guess of `generation`, which a batch found wrong (or could not tell):
    /// the batches linked after it are wrong too, and the next ones are checked.
    fn give_up_guess(&self, campaign_id: i64, generation: u64) {
        let mut guesses = self.guesses();
        let guess = guesses.entry(campaign_id).or_default();
        if guess.generation == generation {
            guess.head = None;
            guess.generation += 1;
        }
    }

    /// The head a checked write left (`None`: unknown).
    fn set_guess(&self, campaign_id: i64, head: Option<(i64, String)>) {
        let mut guesses = self.guesses();
        let guess = guesses.entry(campaign_id).or_default();
        // Two checked writes can report in the other order than they committed, and a batch
        // may be linked after the head already: a head behind the guess is not the newer one.
        if let (Some(new), Some(known)) = (&head, &guess.head)
            && new.0 < known.0
        {
            return;
        }
        guess.head = head;
        guess.generation += 1;
    }

    /// The fast path of `record_ballot_batch`: what the one statement did. A refusal
    /// PostgreSQL makes before committing answers `Moved` too (a repeated key, say, that the
    /// checked path then refuses); any other error may have come after the commit (a broken
    /// connection, a server shutting down) and is returned: writing the batch again could
    /// record it twice, so it fails, as a failed commit does.
    async fn write_if_unchanged(
        &self,
        campaign_id: i64,
        version: i64,
        expected: &(i64, String),
        linked: &Linked,
        batch: &[NewBallot],
    ) -> StoreResult<Appended> {
        let members: Vec<&NewBallot> = batch.iter().collect();
        let mut conn = self.pool.acquire().await?;
        match write_ballots_at_once(&mut conn, campaign_id, version, expected, linked, &members)
            .await
        {
            // Committed with the statement: nothing can fail after it but the reading of its
            // rows, which every batch does.
            Ok(appended) => Ok(appended),
            // Refusals that PostgreSQL makes before a statement commits: a repeated key, a
            // lock or serialization conflict. Any other error may have come after the commit.
            Err(StoreError::Database(sqlx::Error::Database(e)))
                if matches!(
                    e.code().as_deref(),
                    Some("23505" | "23503" | "40001" | "40P01" | "55P03")
                ) =>
            {
                tracing::info!(error = %e, campaign_id, "ballot batch refused in one statement; checking it again");
                Ok(Appended::Moved)
            }
            Err(e) => Err(e),
        }
    }
}

/// Records one campaign's share of a ballot batch in one statement: the entries, the new
/// head, the ballots and their votes, provided the campaign is still at `version` and its
/// chain at `expected` (nothing written otherwise, and the answer says whether the head was
/// behind or elsewhere). The campaign's row is share-locked first, as every change of the
/// campaign locks it for update (and its writes move the version on). Then the head's row,
/// the lock every batch of the campaign queues on, held from this statement to its commit:
/// locking it waits for the batch before to commit and reads the head that batch left (a
/// plain `WHERE` on the head would judge the version of the row this statement's snapshot
/// saw, and give up on a head that is just moving). The arrays are bound whole (`UNNEST`),
/// so the statement has one shape whatever the batch size and is prepared once per
/// connection.
async fn write_ballots_at_once(
    conn: &mut sqlx::PgConnection,
    campaign_id: i64,
    version: i64,
    expected: &(i64, String),
    linked: &Linked,
    members: &[&NewBallot],
) -> StoreResult<Appended> {
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
        "WITH unchanged AS (
            SELECT id FROM campaigns WHERE id = $1 AND version = $23 FOR SHARE
        ), locked AS (
            SELECT seq, hash, sealed_seq FROM audit_heads
            WHERE campaign_id = $1 AND EXISTS (SELECT 1 FROM unchanged)
            FOR UPDATE
        ), head AS (
            UPDATE audit_heads SET seq = $7, hash = $8
            WHERE campaign_id = $1
              AND EXISTS (SELECT 1 FROM locked WHERE seq = $24 AND hash = $25 AND sealed_seq IS NULL)
            RETURNING campaign_id
        ), entries AS (
            INSERT INTO audit_entries (campaign_id, seq, kind, body, prev_hash, hash)
            SELECT head.campaign_id, u.*
            FROM head, UNNEST($2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[]) AS u
        ), ballots AS (
            INSERT INTO ballots (campaign_id, voter_id, candidate_ids, idempotency_key, request_hash,
                                 remaining_today, seq, receipt, cast_at, quota_day,
                                 status, flags, device_hash, ip_hash, network_hash)
            SELECT head.campaign_id, u.*
            FROM head, UNNEST($9::text[], $10::text[], $11::text[], $12::text[], $13::int[],
                              $2::bigint[], $6::text[], $14::timestamptz[], $15::text[],
                              $18::text[], $19::text[], $20::text[], $21::text[], $22::text[]) AS u
            RETURNING ",
        ballot_columns!(),
        "
        ), votes AS (
            INSERT INTO ballot_votes (ballot_id, campaign_id, candidate_id)
            SELECT b.id, $1, v.candidate_id
            FROM UNNEST($16::bigint[], $17::bigint[]) AS v (seq, candidate_id)
            JOIN ballots b ON b.seq = v.seq
        )
        SELECT l.seq AS head_seq, b.* FROM locked l LEFT JOIN ballots b ON true"
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
    .bind(version)
    .bind(expected.0)
    .bind(&expected.1)
    .fetch_all(&mut *conn)
    .await?;
    let Some(first) = rows.first() else {
        return Ok(Appended::Moved);
    };
    if first.try_get::<Option<i64>, _>("id")?.is_none() {
        let seen: i64 = first.try_get("head_seq")?;
        return Ok(if seen < expected.0 {
            Appended::Early
        } else {
            Appended::Moved
        });
    }
    in_member_order(&rows, e).map(Appended::Written)
}

/// `write_ballots_at_once` for the checked path, which holds the head's lock itself.
async fn write_ballots_under_lock(
    conn: &mut sqlx::PgConnection,
    campaign_id: i64,
    version: i64,
    expected: &(i64, String),
    linked: &Linked,
    members: &[&NewBallot],
) -> StoreResult<Option<Vec<Ballot>>> {
    Ok(
        match write_ballots_at_once(conn, campaign_id, version, expected, linked, members).await? {
            Appended::Written(ballots) => Some(ballots),
            Appended::Early | Appended::Moved => None,
        },
    )
}

/// What the one-statement write did.
enum Appended {
    /// The ballots, in the order of the batch.
    Written(Vec<Ballot>),
    /// Nothing: the head was behind the one expected (the batch linked before has not
    /// committed yet: its statement reached PostgreSQL after this one).
    Early,
    /// Nothing: the campaign's version or its head is not the one expected.
    Moved,
}
