//! The one SQL implementation of `Store`, expanded for each backend.
//!
//! PostgreSQL and SQLite accept the same SQL here (`$n` parameters, `RETURNING`,
//! `ON CONFLICT`), so the queries are written once. The two differences are parameters of the
//! macro: how a write transaction begins (SQLite: `BEGIN IMMEDIATE`, taking the write lock at
//! once so that two writers never deadlock upgrading), how a read-only snapshot begins
//! (PostgreSQL: `REPEATABLE READ`), and the row-lock suffixes (PostgreSQL: `FOR UPDATE`,
//! `FOR SHARE`, `FOR NO KEY UPDATE`; SQLite needs none, its write lock covers the whole
//! database).
//!
//! Parameters are numbered in order of first use: SQLite numbers `$n` by first appearance.

macro_rules! campaign_columns {
    () => {
        "id, kind, title, description, timezone, phases, rules, is_draft, created_at, version, \
         (SELECT sealed_seq FROM audit_heads h WHERE h.campaign_id = campaigns.id) AS published_seq"
    };
}

macro_rules! candidate_columns {
    () => {
        "id, campaign_id, category_id, number, name, unit, department, title, photo_url, story, status, reason"
    };
}

macro_rules! ballot_columns {
    () => {
        "id, campaign_id, voter_id, candidate_ids, request_hash, remaining_today, seq, receipt, status, cast_at"
    };
}

macro_rules! rating_columns {
    () => {
        "r.id, r.campaign_id, r.target_id, r.voter_id, r.rater_group, r.level, r.period, r.request_hash, r.seq, \
         r.receipt, r.status, r.rated_at, o.id AS opinion_id"
    };
}

macro_rules! opinion_columns {
    () => {
        "id, campaign_id, target_id, unit_code, comment, status, verified, action, created_at, answered_at, closed_at"
    };
}

macro_rules! objection_columns {
    () => {
        "id, campaign_id, candidate_id, name_enc, contact_enc, content, status, verdict, answer, seq, created_at, answered_at"
    };
}

macro_rules! sql_store {
    (store: $store:ident, db: $db:ty, kind: $kind:expr, begin: $begin:literal, snapshot: $snapshot:literal, lock: $lock:literal, share: $share:literal, campaign_lock: $campaign_lock:literal, skip_locked: $skip_locked:literal, ballot_writer: $writer:ident, ballot_batch: $batch:ident) => {
        type DbRow = <$db as sqlx::Database>::Row;
        type DbConn = <$db as sqlx::Database>::Connection;

        fn conflict(e: sqlx::Error, what: &'static str) -> StoreError {
            match &e {
                sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict(what),
                _ => StoreError::Database(e),
            }
        }

        fn campaign_from_row(r: &DbRow) -> StoreResult<Campaign> {
            Ok(Campaign {
                id: r.try_get("id")?,
                kind: decode_kind(r.try_get("kind")?)?,
                title: r.try_get("title")?,
                description: r.try_get("description")?,
                timezone: r.try_get("timezone")?,
                phases: decode_json("phases", r.try_get("phases")?)?,
                rules: decode_json("rules", r.try_get("rules")?)?,
                is_draft: r.try_get("is_draft")?,
                created_at: r.try_get("created_at")?,
                published_seq: r.try_get("published_seq")?,
                version: r.try_get("version")?,
            })
        }

        fn category_from_row(r: &DbRow) -> StoreResult<Category> {
            Ok(Category {
                id: r.try_get("id")?,
                campaign_id: r.try_get("campaign_id")?,
                name: r.try_get("name")?,
                winners: r.try_get::<i32, _>("winners")?.max(0) as u32,
            })
        }

        fn candidate_from_row(r: &DbRow) -> StoreResult<Candidate> {
            Ok(Candidate {
                id: r.try_get("id")?,
                campaign_id: r.try_get("campaign_id")?,
                category_id: r.try_get("category_id")?,
                number: r.try_get("number")?,
                name: r.try_get("name")?,
                unit: r.try_get("unit")?,
                department: r.try_get("department")?,
                title: r.try_get("title")?,
                photo_url: r.try_get("photo_url")?,
                story: r.try_get("story")?,
                status: decode_status(r.try_get("status")?)?,
                reason: r.try_get("reason")?,
            })
        }

        fn objection_from_row(r: &DbRow) -> StoreResult<Objection> {
            Ok(Objection {
                id: r.try_get("id")?,
                campaign_id: r.try_get("campaign_id")?,
                candidate_id: r.try_get("candidate_id")?,
                name_enc: r.try_get("name_enc")?,
                contact_enc: r.try_get("contact_enc")?,
                content: r.try_get("content")?,
                status: r.try_get("status")?,
                verdict: r.try_get("verdict")?,
                answer: r.try_get("answer")?,
                seq: r.try_get("seq")?,
                created_at: r.try_get("created_at")?,
                answered_at: r.try_get("answered_at")?,
            })
        }

        fn target_from_row(r: &DbRow) -> StoreResult<Target> {
            Ok(Target {
                id: r.try_get("id")?,
                campaign_id: r.try_get("campaign_id")?,
                code: r.try_get("code")?,
                name: r.try_get("name")?,
                parent_id: r.try_get("parent_id")?,
            })
        }

        fn json_text<T: serde::Serialize>(value: &T) -> StoreResult<String> {
            serde_json::to_string(value).map_err(|e| StoreError::Corrupt(e.to_string()))
        }

        /// Appends entries to a campaign's chain inside the caller's transaction. The head row
        /// is locked first, so concurrent appends queue and the chain never forks.
        async fn append(conn: &mut DbConn, campaign_id: i64, bodies: Vec<serde_json::Value>) -> StoreResult<Vec<Entry>> {
            let head = lock_head(conn, campaign_id).await?;
            append_at(conn, campaign_id, head, bodies).await
        }

        /// Locks the campaign's chain head for the rest of the transaction: its seq and hash.
        /// A sealed chain (published results) refuses: every change appends, so this is
        /// where "nothing changes after publication" holds.
        async fn lock_head(conn: &mut DbConn, campaign_id: i64) -> StoreResult<(i64, String)> {
            let head = sqlx::query(concat!("SELECT seq, hash, sealed_seq FROM audit_heads WHERE campaign_id = $1", $lock))
                .bind(campaign_id)
                .fetch_optional(&mut *conn)
                .await?
                .ok_or(StoreError::NotFound)?;
            if head.try_get::<Option<i64>, _>("sealed_seq")?.is_some() {
                return Err(StoreError::Published);
            }
            Ok((head.try_get("seq")?, head.try_get("hash")?))
        }

        /// Appends after `head`, which the caller locked with `lock_head`.
        async fn append_at(conn: &mut DbConn, campaign_id: i64, head: (i64, String), bodies: Vec<serde_json::Value>) -> StoreResult<Vec<Entry>> {
            let linked = chain(head, bodies)?;
            insert_entries(conn, campaign_id, &linked).await?;
            Ok(linked.entries)
        }

        /// Writes linked entries and moves the head past them.
        async fn insert_entries(conn: &mut DbConn, campaign_id: i64, linked: &Linked) -> StoreResult<()> {
            // Few statements for a whole batch: rows of 6 parameters in chunks of 1,000, under
            // either backend's limit on bound parameters (an import can hold 10,000 rows).
            let rows: Vec<(&Entry, &String)> = linked.entries.iter().zip(&linked.texts).collect();
            for chunk in rows.chunks(1000) {
                let mut insert: QueryBuilder<$db> =
                    QueryBuilder::new("INSERT INTO audit_entries (campaign_id, seq, kind, body, prev_hash, hash) ");
                insert.push_values(chunk, |mut row, (e, text)| {
                    row.push_bind(campaign_id)
                        .push_bind(e.seq)
                        .push_bind(e.kind.clone())
                        .push_bind((*text).clone())
                        .push_bind(e.prev_hash.clone())
                        .push_bind(e.hash.clone());
                });
                insert.build().execute(&mut *conn).await?;
            }
            sqlx::query("UPDATE audit_heads SET seq = $1, hash = $2 WHERE campaign_id = $3")
                .bind(linked.head.0)
                .bind(&linked.head.1)
                .bind(campaign_id)
                .execute(&mut *conn)
                .await?;
            Ok(())
        }

        /// Records one campaign's share of a ballot batch after its head (statement by
        /// statement; PostgreSQL has a one-statement writer of its own). Returns the ballots
        /// in the order of `members`.
        #[allow(dead_code)]
        /// The ballot writer of a backend that writes only under the head's lock, taken by
        /// the caller: the version and the expected head are then the campaign's for sure.
        async fn write_ballots_plain(conn: &mut DbConn, campaign_id: i64, _version: i64, _expected: &(i64, String), linked: &Linked, members: &[&NewBallot]) -> StoreResult<Option<Vec<Ballot>>> {
            insert_entries(conn, campaign_id, linked).await?;
            let mut insert: QueryBuilder<$db> = QueryBuilder::new(
                "INSERT INTO ballots (campaign_id, voter_id, candidate_ids, idempotency_key, request_hash, \
                 remaining_today, seq, receipt, cast_at, quota_day, status, flags, device_hash, ip_hash, network_hash) ",
            );
            let mut id_texts = Vec::with_capacity(members.len());
            for b in members {
                id_texts.push(candidate_ids_text(b)?);
            }
            insert.push_values(members.iter().zip(&linked.entries).zip(&id_texts), |mut row, ((b, entry), ids)| {
                row.push_bind(b.campaign_id)
                    .push_bind(b.voter_id.clone())
                    .push_bind(ids.clone())
                    .push_bind(b.idempotency_key.clone())
                    .push_bind(b.request_hash.clone())
                    .push_bind(b.remaining_today as i32)
                    .push_bind(entry.seq)
                    .push_bind(entry.hash.clone())
                    .push_bind(b.cast_at)
                    .push_bind(b.quota_day.to_string())
                    .push_bind(b.status)
                    .push_bind(b.flags_text())
                    .push_bind(b.device_hash.clone())
                    .push_bind(b.ip_hash.clone())
                    .push_bind(b.network_hash.clone());
            });
            insert.push(concat!(" RETURNING ", ballot_columns!()));
            let found = insert.build().fetch_all(&mut *conn).await?;
            let ballots = in_member_order(&found, &linked.entries)?;
            let mut pairs = Vec::new();
            for (ballot, b) in ballots.iter().zip(members) {
                for c in &b.candidate_ids {
                    pairs.push((ballot.id, *c));
                }
            }
            // Up to 100 candidates a ballot: chunks keep each insert under the
            // backends' limits on bound parameters.
            for chunk in pairs.chunks(5000) {
                let mut votes: QueryBuilder<$db> =
                    QueryBuilder::new("INSERT INTO ballot_votes (ballot_id, campaign_id, candidate_id) ");
                votes.push_values(chunk, |mut v, (ballot_id, candidate)| {
                    v.push_bind(*ballot_id).push_bind(campaign_id).push_bind(*candidate);
                });
                votes.build().execute(&mut *conn).await?;
            }
            Ok(Some(ballots))
        }

        /// Returned ballot rows in the order of their entries: matched by seq, never by
        /// position (RETURNING promises no order).
        fn in_member_order(rows: &[DbRow], entries: &[Entry]) -> StoreResult<Vec<Ballot>> {
            let mut by_seq = std::collections::HashMap::new();
            for row in rows {
                let ballot = ballot_from_row(row)?;
                by_seq.insert(ballot.seq, ballot);
            }
            entries
                .iter()
                .map(|e| by_seq.remove(&e.seq).ok_or_else(|| StoreError::Corrupt("ballot row not returned".into())))
                .collect()
        }

        /// Counted ratings per target, rater group and level (of the periods `LIKE period`).
        async fn rating_counts_in(conn: &mut DbConn, campaign_id: i64, period: Option<&str>) -> StoreResult<Vec<RatingCount>> {
            let rows = sqlx::query(
                "SELECT target_id, rater_group, level, COUNT(*) AS n FROM ratings \
                 WHERE campaign_id = $1 AND status = 'counted' AND ($2 IS NULL OR period LIKE $2) \
                 GROUP BY target_id, rater_group, level ORDER BY target_id, rater_group, level",
            )
            .bind(campaign_id)
            .bind(period)
            .fetch_all(&mut *conn)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(RatingCount {
                        target_id: r.try_get("target_id")?,
                        group: r.try_get("rater_group")?,
                        level: r.try_get("level")?,
                        n: r.try_get::<i64, _>("n")?.max(0) as u64,
                    })
                })
                .collect()
        }

        /// The stage (`draft`, `final`) of the latest results frozen, if any.
        async fn last_frozen_stage(conn: &mut DbConn, campaign_id: i64) -> StoreResult<Option<String>> {
            Ok(sqlx::query_scalar("SELECT stage FROM results WHERE campaign_id = $1 ORDER BY seq DESC LIMIT 1")
                .bind(campaign_id)
                .fetch_optional(&mut *conn)
                .await?)
        }

        /// The campaign row, locked for the rest of the transaction against other changes
        /// and ballots (which share it); what the change writes moves the campaign's version
        /// on (the database's triggers, migration 0015). PostgreSQL: `FOR NO KEY UPDATE`,
        /// which leaves the key-share locks of foreign-key checks alone: a writer that holds the chain's head
        /// and inserts a row referring to the campaign (a score, an objection, an entry) must
        /// not wait for a change that is itself waiting for the head.
        async fn lock_campaign(conn: &mut DbConn, campaign_id: i64) -> StoreResult<Campaign> {
            let row = sqlx::query(concat!("SELECT ", campaign_columns!(), " FROM campaigns WHERE id = $1", $campaign_lock))
                .bind(campaign_id)
                .fetch_optional(&mut *conn)
                .await?
                .ok_or(StoreError::NotFound)?;
            let c = campaign_from_row(&row)?;
            // Published: nothing changes, not even to the same value.
            if c.published_seq.is_some() {
                return Err(StoreError::Published);
            }
            Ok(c)
        }

        async fn write_campaign(conn: &mut DbConn, c: &Campaign) -> StoreResult<()> {
            sqlx::query(
                "UPDATE campaigns SET title = $1, description = $2, timezone = $3, phases = $4, rules = $5, is_draft = $6 WHERE id = $7",
            )
            .bind(&c.title)
            .bind(&c.description)
            .bind(&c.timezone)
            .bind(json_text(&c.phases)?)
            .bind(json_text(&c.rules)?)
            .bind(c.is_draft)
            .bind(c.id)
            .execute(&mut *conn)
            .await?;
            Ok(())
        }

        async fn fetch_candidate(conn: &mut DbConn, campaign_id: i64, candidate_id: i64) -> StoreResult<Candidate> {
            let row = sqlx::query(concat!("SELECT ", candidate_columns!(), " FROM candidates WHERE campaign_id = $1 AND id = $2"))
                .bind(campaign_id)
                .bind(candidate_id)
                .fetch_optional(&mut *conn)
                .await?
                .ok_or(StoreError::NotFound)?;
            candidate_from_row(&row)
        }

        /// Counted votes per candidate and the chain head they go with; inside a snapshot
        /// transaction the two agree.
        async fn tally(conn: &mut DbConn, campaign_id: i64) -> StoreResult<crate::counters::Tally> {
            let through_seq: i64 = sqlx::query_scalar("SELECT seq FROM audit_heads WHERE campaign_id = $1")
                .bind(campaign_id)
                .fetch_optional(&mut *conn)
                .await?
                .unwrap_or(0);
            let rows = sqlx::query(
                "SELECT v.candidate_id, COUNT(*) AS n FROM ballot_votes v JOIN ballots b ON b.id = v.ballot_id \
                 WHERE v.campaign_id = $1 AND b.status = 'counted' GROUP BY v.candidate_id",
            )
            .bind(campaign_id)
            .fetch_all(&mut *conn)
            .await?;
            let votes = rows.iter().map(|r| Ok((r.try_get("candidate_id")?, r.try_get("n")?))).collect::<StoreResult<_>>()?;
            Ok(crate::counters::Tally { through_seq, votes })
        }

        /// Among `ids`, the campaign's approved candidates; among `voters`, those blocked in
        /// it. One round trip for both.
        async fn approved_and_blocked(
            conn: &mut DbConn,
            campaign_id: i64,
            ids: &[i64],
            voters: &[&str],
        ) -> StoreResult<(std::collections::HashSet<i64>, std::collections::HashSet<String>)> {
            let mut sql: QueryBuilder<$db> = QueryBuilder::new(
                "SELECT 'c' AS k, CAST(id AS TEXT) AS v FROM candidates WHERE status = 'approved' AND campaign_id = ",
            );
            sql.push_bind(campaign_id).push(" AND id IN (");
            let mut list = sql.separated(", ");
            for id in ids {
                list.push_bind(*id);
            }
            sql.push(") UNION ALL SELECT 'v' AS k, value AS v FROM blocks WHERE subject = 'voter' AND blocked AND campaign_id = ");
            sql.push_bind(campaign_id).push(" AND value IN (");
            let mut list = sql.separated(", ");
            for voter in voters {
                list.push_bind(voter.to_string());
            }
            sql.push(")");
            let (mut approved, mut blocked) = (std::collections::HashSet::new(), std::collections::HashSet::new());
            for row in sql.build().fetch_all(&mut *conn).await? {
                let (k, v): (String, String) = (row.try_get("k")?, row.try_get("v")?);
                if k == "c" {
                    approved.insert(v.parse().map_err(|_| StoreError::Corrupt("candidate id".into()))?);
                } else {
                    blocked.insert(v);
                }
            }
            Ok((approved, blocked))
        }

        /// The (voter, key) pairs among `keyed` that already have a ballot in the campaign.
        async fn used_keys(conn: &mut DbConn, campaign_id: i64, keyed: &[(&str, &str)]) -> StoreResult<std::collections::HashSet<(String, String)>> {
            if keyed.is_empty() {
                return Ok(Default::default());
            }
            let mut sql: QueryBuilder<$db> =
                QueryBuilder::new("SELECT voter_id, idempotency_key FROM ballots WHERE campaign_id = ");
            sql.push_bind(campaign_id).push(" AND (voter_id, idempotency_key) IN (");
            let mut list = sql.separated(", ");
            for (voter, key) in keyed {
                list.push("(").push_bind_unseparated(voter.to_string()).push_unseparated(", ")
                    .push_bind_unseparated(key.to_string()).push_unseparated(")");
            }
            sql.push(")");
            let rows = sql.build().fetch_all(&mut *conn).await?;
            rows.iter().map(|r| Ok((r.try_get("voter_id")?, r.try_get("idempotency_key")?))).collect()
        }

        fn rating_from_row(r: &DbRow) -> StoreResult<Rating> {
            Ok(Rating {
                id: r.try_get("id")?,
                campaign_id: r.try_get("campaign_id")?,
                target_id: r.try_get("target_id")?,
                voter_id: r.try_get("voter_id")?,
                group: r.try_get("rater_group")?,
                level: r.try_get("level")?,
                period: r.try_get("period")?,
                request_hash: r.try_get("request_hash")?,
                seq: r.try_get("seq")?,
                receipt: r.try_get("receipt")?,
                status: r.try_get("status")?,
                rated_at: r.try_get("rated_at")?,
                opinion_id: r.try_get("opinion_id")?,
            })
        }

        fn opinion_from_row(r: &DbRow) -> StoreResult<Opinion> {
            Ok(Opinion {
                id: r.try_get("id")?,
                campaign_id: r.try_get("campaign_id")?,
                target_id: r.try_get("target_id")?,
                unit_code: r.try_get("unit_code")?,
                comment: r.try_get("comment")?,
                status: r.try_get("status")?,
                verified: r.try_get("verified")?,
                action: r.try_get("action")?,
                created_at: r.try_get("created_at")?,
                answered_at: r.try_get("answered_at")?,
                closed_at: r.try_get("closed_at")?,
            })
        }

        /// The code of the top of a target's tree: the unit that answers for it.
        async fn unit_of(conn: &mut DbConn, campaign_id: i64, target_id: i64) -> StoreResult<Option<String>> {
            let mut id = target_id;
            // Trees are a few levels deep; the bound only guards against a cycle.
            for _ in 0..32 {
                let Some(row) = sqlx::query("SELECT code, parent_id FROM targets WHERE campaign_id = $1 AND id = $2")
                    .bind(campaign_id)
                    .bind(id)
                    .fetch_optional(&mut *conn)
                    .await?
                else {
                    return Ok(None);
                };
                match row.try_get::<Option<i64>, _>("parent_id")? {
                    Some(parent) => id = parent,
                    None => return Ok(Some(row.try_get("code")?)),
                }
            }
            Err(StoreError::Corrupt("target tree too deep".into()))
        }

        /// The column a cluster's key is matched against, and the key as stored there.
        fn cluster_column(by: review::ClusterBy, key: &str) -> StoreResult<(&'static str, String)> {
            Ok(match by {
                review::ClusterBy::Device => ("device_hash", key.to_string()),
                review::ClusterBy::Ip => ("ip_hash", key.to_string()),
                review::ClusterBy::Network => ("network_hash", key.to_string()),
                review::ClusterBy::Ballot => {
                    let ids: Vec<&str> = key.split(',').collect();
                    ("candidate_ids", json_text(&ids)?)
                }
            })
        }

        fn review_ballot_from_row(r: &DbRow) -> StoreResult<review::ReviewBallot> {
            let ids: Vec<String> = decode_json("candidate_ids", r.try_get("candidate_ids")?)?;
            Ok(review::ReviewBallot {
                seq: r.try_get("seq")?,
                voter_id: r.try_get("voter_id")?,
                cast_at: r.try_get("cast_at")?,
                status: r.try_get("status")?,
                flags: decode_json("flags", r.try_get("flags")?)?,
                candidate_ids: ids.iter().filter_map(|i| i.parse().ok()).collect(),
                device_hash: r.try_get("device_hash")?,
                ip_hash: r.try_get("ip_hash")?,
                network_hash: r.try_get("network_hash")?,
            })
        }

        fn ballot_from_row(r: &DbRow) -> StoreResult<Ballot> {
            let ids: Vec<String> = decode_json("candidate_ids", r.try_get("candidate_ids")?)?;
            Ok(Ballot {
                id: r.try_get("id")?,
                campaign_id: r.try_get("campaign_id")?,
                voter_id: r.try_get("voter_id")?,
                candidate_ids: ids.iter().filter_map(|i| i.parse().ok()).collect(),
                request_hash: r.try_get("request_hash")?,
                remaining_today: r.try_get::<i32, _>("remaining_today")?.max(0) as u32,
                seq: r.try_get("seq")?,
                receipt: r.try_get("receipt")?,
                status: r.try_get("status")?,
                cast_at: r.try_get("cast_at")?,
            })
        }

        impl $store {
            /// Records a batch of ballots in one transaction, checking each again against the
            /// campaign as the transaction sees it (see `Store::record_ballots`).
            async fn record_ballots_checked(&self, batch: &[NewBallot]) -> StoreResult<Vec<StoreResult<Ballot>>> {
                let mut results: Vec<Option<StoreResult<Ballot>>> = batch.iter().map(|_| None).collect();
                let mut campaigns: Vec<i64> = batch.iter().map(|b| b.campaign_id).collect();
                campaigns.sort_unstable();
                campaigns.dedup();
                let mut tx = self.pool.begin_with($begin).await?;
                // Campaigns in id order, so two batches never wait on each other's heads.
                for campaign_id in campaigns {
                    // The campaign row is shared-locked first, as every change of the campaign
                    // (its rules, candidates, blocklist) locks it for update first: what is read
                    // here is what every change before this batch left and none after, so the
                    // checks the vote path made against its cache are made again, exactly,
                    // before the chain head is locked (the head is the one lock all of a
                    // campaign's batches queue on, so it is held for as few statements as can
                    // be). Keys used by batches that commit meanwhile are caught by the unique
                    // index (the idempotency claim makes that all but impossible).
                    let row = sqlx::query(concat!("SELECT ", campaign_columns!(), " FROM campaigns WHERE id = $1", $share))
                        .bind(campaign_id)
                        .fetch_optional(&mut *tx)
                        .await?
                        .ok_or(StoreError::NotFound)?;
                    let campaign = campaign_from_row(&row)?;
                    let mine: Vec<usize> = (0..batch.len()).filter(|i| batch[*i].campaign_id == campaign_id).collect();
                    let mut wanted: Vec<i64> = mine.iter().flat_map(|i| batch[*i].candidate_ids.iter().copied()).collect();
                    wanted.sort_unstable();
                    wanted.dedup();
                    let voters: Vec<&str> = mine.iter().map(|i| batch[*i].voter_id.as_str()).collect();
                    let (approved, blocked) = approved_and_blocked(&mut tx, campaign_id, &wanted, &voters).await?;
                    let keyed: Vec<(&str, &str)> = mine
                        .iter()
                        .filter_map(|i| Some((batch[*i].voter_id.as_str(), batch[*i].idempotency_key.as_deref()?)))
                        .collect();
                    let used = used_keys(&mut tx, campaign_id, &keyed).await?;
                    let mut keys_in_batch: std::collections::HashSet<(&str, &str)> = Default::default();
                    let mut members = Vec::new();
                    for i in mine {
                        let b = &batch[i];
                        let voting = campaign.kind == campaign::Kind::Selection
                            && campaign::current_phase(campaign.is_draft, &campaign.phases, b.cast_at)
                                == campaign::CurrentPhase::Voting;
                        let refusal = if !voting {
                            Some(StoreError::Refused(BallotRefusal::VotingClosed))
                        } else if blocked.contains(&b.voter_id) {
                            Some(StoreError::Refused(BallotRefusal::VoterBlocked))
                        } else if !b.candidate_ids.iter().all(|c| approved.contains(c)) {
                            Some(StoreError::Refused(BallotRefusal::NotApproved))
                        } else if let Some(key) = b.idempotency_key.as_deref() {
                            // A repeat is refused here rather than failing the whole batch on
                            // the unique index.
                            let pair = (b.voter_id.as_str(), key);
                            let seen = used.contains(&(pair.0.to_string(), pair.1.to_string()));
                            (seen || !keys_in_batch.insert(pair)).then_some(StoreError::Conflict("idempotency key"))
                        } else {
                            None
                        };
                        match refusal {
                            Some(e) => results[i] = Some(Err(e)),
                            None => members.push(i),
                        }
                    }
                    if members.is_empty() {
                        continue;
                    }
                    let bodies = members.iter().map(|i| batch[*i].entry_body()).collect();
                    let head = match lock_head(&mut tx, campaign_id).await {
                        Err(StoreError::Published) => {
                            for i in members {
                                results[i] = Some(Err(StoreError::Published));
                            }
                            continue;
                        }
                        head => head?,
                    };
                    let expected = head.clone();
                    let linked = chain(head, bodies)?;
                    let rows: Vec<&NewBallot> = members.iter().map(|i| &batch[*i]).collect();
                    // Under the head's lock and the campaign's share lock, nothing can have moved.
                    let ballots = $writer(&mut tx, campaign_id, campaign.version, &expected, &linked, &rows)
                        .await?
                        .ok_or(StoreError::HeadMoved)?;
                    for (i, ballot) in members.into_iter().zip(ballots) {
                        results[i] = Some(Ok(ballot));
                    }
                }
                tx.commit().await?;
                Ok(results.into_iter().map(|r| r.unwrap_or(Err(StoreError::NotFound))).collect())
            }
        }

        #[async_trait]
        impl Store for $store {
            async fn set_block(
                &self,
                actor: &Actor,
                campaign_id: i64,
                subject: BlockSubject,
                value: &str,
                blocked: bool,
                reason: &str,
            ) -> StoreResult<Block> {
                let mut tx = self.pool.begin_with($begin).await?;
                lock_campaign(&mut tx, campaign_id).await?;
                let block = Block {
                    subject,
                    value: value.to_string(),
                    blocked,
                    reason: reason.to_string(),
                    updated_at: Utc::now(),
                };
                sqlx::query(
                    "INSERT INTO blocks (campaign_id, subject, value, blocked, reason, updated_at) VALUES ($1, $2, $3, $4, $5, $6) \
                     ON CONFLICT (campaign_id, subject, value) DO UPDATE SET blocked = $4, reason = $5, updated_at = $6",
                )
                .bind(campaign_id)
                .bind(subject.as_str())
                .bind(value)
                .bind(blocked)
                .bind(reason)
                .bind(block.updated_at)
                .execute(&mut *tx)
                .await?;
                let body = record::body(kinds::BLOCK_CHANGED, actor, block.updated_at, campaign_id, json!({"block": block.state()}));
                append(&mut tx, campaign_id, vec![body]).await?;
                tx.commit().await?;
                Ok(block)
            }

            async fn list_blocks(&self, campaign_id: i64) -> StoreResult<Vec<Block>> {
                let rows = sqlx::query(
                    "SELECT subject, value, blocked, reason, updated_at FROM blocks WHERE campaign_id = $1 ORDER BY subject, value",
                )
                .bind(campaign_id)
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| {
                        let subject: String = r.try_get("subject")?;
                        Ok(Block {
                            subject: BlockSubject::parse(&subject).ok_or_else(|| StoreError::Corrupt(format!("block subject {subject}")))?,
                            value: r.try_get("value")?,
                            blocked: r.try_get("blocked")?,
                            reason: r.try_get("reason")?,
                            updated_at: r.try_get("updated_at")?,
                        })
                    })
                    .collect()
            }

            async fn approved_candidates(&self, campaign_id: i64) -> StoreResult<Vec<i64>> {
                Ok(sqlx::query_scalar("SELECT id FROM candidates WHERE status = 'approved' AND campaign_id = $1")
                    .bind(campaign_id)
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn record_ballots(&self, batch: &[NewBallot]) -> StoreResult<Vec<StoreResult<Ballot>>> {
                $batch(self, batch).await
            }

            async fn ballot_by_key(&self, campaign_id: i64, voter_id: &str, key: &str) -> StoreResult<Option<Ballot>> {
                let row = sqlx::query(
                    concat!("SELECT ", ballot_columns!(), " \
                     FROM ballots WHERE campaign_id = $1 AND voter_id = $2 AND idempotency_key = $3"),
                )
                .bind(campaign_id)
                .bind(voter_id)
                .bind(key)
                .fetch_optional(&self.pool)
                .await?;
                row.as_ref().map(ballot_from_row).transpose()
            }

            async fn ballot_by_receipt(&self, receipt: &str) -> StoreResult<Option<Ballot>> {
                let row = sqlx::query(
                    concat!("SELECT ", ballot_columns!(), " \
                     FROM ballots WHERE receipt = $1"),
                )
                .bind(receipt)
                .fetch_optional(&self.pool)
                .await?;
                row.as_ref().map(ballot_from_row).transpose()
            }

            async fn ballots_of_voter(&self, voter_id: &str, campaign_id: Option<i64>, before_id: Option<i64>, limit: u32) -> StoreResult<Vec<Ballot>> {
                let rows = sqlx::query(
                    concat!("SELECT ", ballot_columns!(), " \
                     FROM ballots WHERE voter_id = $1 AND ($2 IS NULL OR campaign_id = $2) AND ($3 IS NULL OR id < $3) \
                     ORDER BY id DESC LIMIT $4"),
                )
                .bind(voter_id)
                .bind(campaign_id)
                .bind(before_id)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(ballot_from_row).collect()
            }

            async fn ledger_rebuild(&self, campaign_id: i64, day: chrono::NaiveDate) -> StoreResult<crate::counters::Rebuild> {
                // One snapshot, so that the quotas and the tally agree with one chain head.
                let mut tx = self.pool.begin_with($snapshot).await?;
                let mut r = crate::counters::Rebuild { tally: tally(&mut tx, campaign_id).await?, day, ..Default::default() };
                // Quotas count every ballot taken, whatever its status later.
                let rows = sqlx::query(
                    "SELECT b.voter_id, COUNT(*) AS n FROM ballot_votes v JOIN ballots b ON b.id = v.ballot_id \
                     WHERE v.campaign_id = $1 GROUP BY b.voter_id",
                )
                .bind(campaign_id)
                .fetch_all(&mut *tx)
                .await?;
                for row in rows {
                    r.totals.insert(row.try_get("voter_id")?, row.try_get("n")?);
                }
                let rows = sqlx::query(
                    "SELECT b.voter_id, v.candidate_id, COUNT(*) AS n FROM ballot_votes v JOIN ballots b ON b.id = v.ballot_id \
                     WHERE v.campaign_id = $1 AND b.quota_day = $2 GROUP BY b.voter_id, v.candidate_id",
                )
                .bind(campaign_id)
                .bind(day.to_string())
                .fetch_all(&mut *tx)
                .await?;
                for row in rows {
                    let voter: String = row.try_get("voter_id")?;
                    r.day_votes.entry(voter).or_default().insert(row.try_get("candidate_id")?, row.try_get("n")?);
                }
                tx.commit().await?;
                Ok(r)
            }

            async fn ledger_votes(&self, campaign_id: i64) -> StoreResult<crate::counters::Tally> {
                let mut tx = self.pool.begin_with($snapshot).await?;
                let t = tally(&mut tx, campaign_id).await?;
                tx.commit().await?;
                Ok(t)
            }

            async fn record_rating(&self, r: &NewRating) -> StoreResult<Rating> {
                let refuse = |why| Err(StoreError::RatingRefused(why));
                let mut tx = self.pool.begin_with($begin).await?;
                // Shared with other writers of the campaign, exclusive of its changes (as
                // for ballots): the window read here holds until the commit.
                let row = sqlx::query(concat!("SELECT ", campaign_columns!(), " FROM campaigns WHERE id = $1", $share))
                    .bind(r.campaign_id)
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or(StoreError::NotFound)?;
                let campaign = campaign_from_row(&row)?;
                let open = campaign.kind == campaign::Kind::Evaluation
                    && campaign::current_phase(campaign.is_draft, &campaign.phases, r.rated_at)
                        == campaign::CurrentPhase::Voting;
                if !open {
                    return refuse(RatingRefusal::VotingClosed);
                }
                let Some(unit_code) = unit_of(&mut tx, r.campaign_id, r.target_id).await? else {
                    return refuse(RatingRefusal::UnknownTarget);
                };
                let rated: Option<i64> = sqlx::query_scalar(
                    "SELECT id FROM ratings WHERE campaign_id = $1 AND voter_id = $2 AND target_id = $3 AND period = $4",
                )
                .bind(r.campaign_id)
                .bind(&r.voter_id)
                .bind(r.target_id)
                .bind(&r.period)
                .fetch_optional(&mut *tx)
                .await?;
                if rated.is_some() {
                    return refuse(RatingRefusal::AlreadyRated);
                }
                // The day's count, taken under the row's lock until the commit.
                let used: i32 = sqlx::query_scalar(
                    "INSERT INTO rating_quota (campaign_id, voter_id, quota_day, used) VALUES ($1, $2, $3, 1) \
                     ON CONFLICT (campaign_id, voter_id, quota_day) DO UPDATE SET used = rating_quota.used + 1 \
                     RETURNING used",
                )
                .bind(r.campaign_id)
                .bind(&r.voter_id)
                .bind(r.quota_day.to_string())
                .fetch_one(&mut *tx)
                .await?;
                if used as i64 > i64::from(r.per_day) {
                    return refuse(RatingRefusal::DailyExhausted);
                }
                let head = lock_head(&mut tx, r.campaign_id).await?;
                let linked = chain(head, vec![r.entry_body()])?;
                insert_entries(&mut tx, r.campaign_id, &linked).await?;
                let entry = &linked.entries[0];
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO ratings (campaign_id, target_id, voter_id, rater_group, channel, level, comment, period, \
                     quota_day, idempotency_key, request_hash, seq, receipt, rated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id",
                )
                .bind(r.campaign_id)
                .bind(r.target_id)
                .bind(&r.voter_id)
                .bind(r.group.as_str())
                .bind(r.group.channel())
                .bind(r.level.as_str())
                .bind(&r.comment)
                .bind(&r.period)
                .bind(r.quota_day.to_string())
                .bind(&r.idempotency_key)
                .bind(&r.request_hash)
                .bind(entry.seq)
                .bind(&entry.hash)
                .bind(r.rated_at)
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| conflict(e, "rating"))?;
                if let Some(record) = r.survey_record_id {
                    let marked = sqlx::query(
                        "UPDATE survey_records SET answered_at = $1, rating_id = $2 WHERE id = $3 AND answered_at IS NULL",
                    )
                    .bind(r.rated_at)
                    .bind(id)
                    .bind(record)
                    .execute(&mut *tx)
                    .await?;
                    if marked.rows_affected() == 0 {
                        return refuse(RatingRefusal::SurveyAnswered);
                    }
                }
                let mut opinion_id = None;
                if r.level == Level::Unsatisfied && !r.comment.is_empty() {
                    opinion_id = Some(
                        sqlx::query_scalar(
                            "INSERT INTO opinions (campaign_id, rating_id, target_id, unit_code, comment, created_at) \
                             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                        )
                        .bind(r.campaign_id)
                        .bind(id)
                        .bind(r.target_id)
                        .bind(&unit_code)
                        .bind(&r.comment)
                        .bind(r.rated_at)
                        .fetch_one(&mut *tx)
                        .await?,
                    );
                }
                tx.commit().await?;
                Ok(Rating {
                    id,
                    campaign_id: r.campaign_id,
                    target_id: r.target_id,
                    voter_id: r.voter_id.clone(),
                    group: r.group.as_str().into(),
                    level: r.level.as_str().into(),
                    period: r.period.clone(),
                    request_hash: r.request_hash.clone(),
                    seq: entry.seq,
                    receipt: entry.hash.clone(),
                    status: "counted".into(),
                    rated_at: r.rated_at,
                    opinion_id,
                })
            }

            async fn rating_by_key(&self, campaign_id: i64, voter_id: &str, key: &str) -> StoreResult<Option<Rating>> {
                let row = sqlx::query(concat!(
                    "SELECT ", rating_columns!(), " FROM ratings r LEFT JOIN opinions o ON o.rating_id = r.id \
                     WHERE r.campaign_id = $1 AND r.voter_id = $2 AND r.idempotency_key = $3"
                ))
                .bind(campaign_id)
                .bind(voter_id)
                .bind(key)
                .fetch_optional(&self.pool)
                .await?;
                row.as_ref().map(rating_from_row).transpose()
            }

            async fn rating_by_receipt(&self, receipt: &str) -> StoreResult<Option<Rating>> {
                let row = sqlx::query(concat!(
                    "SELECT ", rating_columns!(), " FROM ratings r LEFT JOIN opinions o ON o.rating_id = r.id WHERE r.receipt = $1"
                ))
                .bind(receipt)
                .fetch_optional(&self.pool)
                .await?;
                row.as_ref().map(rating_from_row).transpose()
            }

            async fn rating_counts(&self, campaign_id: i64, period: Option<&str>) -> StoreResult<Vec<RatingCount>> {
                let mut conn = self.pool.acquire().await?;
                rating_counts_in(&mut conn, campaign_id, period).await
            }

            async fn list_opinions(&self, q: &OpinionQuery) -> StoreResult<Vec<Opinion>> {
                let mut sql: QueryBuilder<$db> = QueryBuilder::new(concat!("SELECT ", opinion_columns!(), " FROM opinions WHERE 1 = 1"));
                if let Some(c) = q.campaign_id {
                    sql.push(" AND campaign_id = ").push_bind(c);
                }
                if let Some(u) = &q.unit_code {
                    sql.push(" AND unit_code = ").push_bind(u.clone());
                }
                if let Some(s) = &q.status {
                    sql.push(" AND status = ").push_bind(s.clone());
                }
                if let Some(after) = q.after_id {
                    sql.push(" AND id > ").push_bind(after);
                }
                sql.push(" ORDER BY id LIMIT ").push_bind(i64::from(q.limit));
                let rows = sql.build().fetch_all(&self.pool).await?;
                rows.iter().map(opinion_from_row).collect()
            }

            async fn get_opinion(&self, id: i64) -> StoreResult<Opinion> {
                let row = sqlx::query(concat!("SELECT ", opinion_columns!(), " FROM opinions WHERE id = $1"))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?
                    .ok_or(StoreError::NotFound)?;
                opinion_from_row(&row)
            }

            async fn answer_opinion(&self, actor: &Actor, id: i64, a: &OpinionAnswer) -> StoreResult<Opinion> {
                let mut tx = self.pool.begin_with($begin).await?;
                let row = sqlx::query(concat!("SELECT ", opinion_columns!(), " FROM opinions WHERE id = $1", $lock))
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or(StoreError::NotFound)?;
                let before = opinion_from_row(&row)?;
                if before.status == "closed" {
                    return Err(StoreError::BadTransition { from: "closed".into(), to: "answered".into() });
                }
                let status = if a.close { "closed" } else { "answered" };
                let staff_id = match actor {
                    Actor::Staff { id, .. } => Some(*id),
                    Actor::System(_) => None,
                };
                sqlx::query(
                    "UPDATE opinions SET status = $1, verified = $2, action = $3, answered_by = $4, answered_at = $5, \
                     closed_at = $6 WHERE id = $7",
                )
                .bind(status)
                .bind(a.verified)
                .bind(&a.action)
                .bind(staff_id)
                .bind(a.at)
                .bind(a.close.then_some(a.at))
                .bind(id)
                .execute(&mut *tx)
                .await?;
                let body = record::body(
                    kinds::OPINION_ANSWERED,
                    actor,
                    a.at,
                    before.campaign_id,
                    json!({"opinion": {
                        "id": id.to_string(),
                        "target_id": before.target_id.to_string(),
                        "status": status,
                        "verified": a.verified,
                        "action": a.action,
                    }}),
                );
                append(&mut tx, before.campaign_id, vec![body]).await?;
                tx.commit().await?;
                Ok(Opinion {
                    status: status.into(),
                    verified: Some(a.verified),
                    action: a.action.clone(),
                    answered_at: Some(a.at),
                    closed_at: a.close.then_some(a.at),
                    ..before
                })
            }

            async fn enter_component(&self, actor: &Actor, c: &EnteredPoints) -> StoreResult<()> {
                let mut tx = self.pool.begin_with($begin).await?;
                // As every change of the campaign (the handler checked its kind, which never
                // changes).
                lock_campaign(&mut tx, c.campaign_id).await?;
                let parent: Option<Option<i64>> = sqlx::query_scalar("SELECT parent_id FROM targets WHERE campaign_id = $1 AND id = $2")
                    .bind(c.campaign_id)
                    .bind(c.target_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                match parent {
                    None => return Err(StoreError::NotFound),
                    Some(Some(_)) => {
                        return Err(StoreError::Invalid(FieldError {
                            field: "target_id".into(),
                            message: "年度考评按单位计分，请选择单位（而非科室）".into(),
                        }));
                    }
                    Some(None) => {}
                }
                let staff_id = match actor {
                    Actor::Staff { id, .. } => Some(*id),
                    Actor::System(_) => None,
                };
                sqlx::query(
                    "INSERT INTO annual_components (campaign_id, target_id, year, component, points, entered_by, entered_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (campaign_id, target_id, year, component) \
                     DO UPDATE SET points = $5, entered_by = $6, entered_at = $7",
                )
                .bind(c.campaign_id)
                .bind(c.target_id)
                .bind(&c.year)
                .bind(c.component.as_str())
                .bind(c.points.to_string())
                .bind(staff_id)
                .bind(c.at)
                .execute(&mut *tx)
                .await?;
                let body = record::body(
                    kinds::COMPONENT_ENTERED,
                    actor,
                    c.at,
                    c.campaign_id,
                    json!({"component": {
                        "target_id": c.target_id.to_string(),
                        "year": c.year,
                        "component": c.component.as_str(),
                        "points": c.points.to_string(),
                    }}),
                );
                append(&mut tx, c.campaign_id, vec![body]).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn annual_components(&self, campaign_id: i64, year: &str) -> StoreResult<Vec<(i64, Component, rust_decimal::Decimal)>> {
                let rows = sqlx::query("SELECT target_id, component, points FROM annual_components WHERE campaign_id = $1 AND year = $2")
                    .bind(campaign_id)
                    .bind(year)
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter()
                    .map(|r| {
                        let name: String = r.try_get("component")?;
                        let points: String = r.try_get("points")?;
                        Ok((
                            r.try_get("target_id")?,
                            Component::parse_entered(&name).ok_or_else(|| StoreError::Corrupt(format!("component {name}")))?,
                            points.parse().map_err(|_| StoreError::Corrupt(format!("points {points}")))?,
                        ))
                    })
                    .collect()
            }

            async fn import_survey_records(
                &self,
                actor: &Actor,
                campaign_id: i64,
                records: &[NewSurveyRecord],
                at: DateTime<Utc>,
            ) -> StoreResult<Vec<bool>> {
                let mut tx = self.pool.begin_with($begin).await?;
                lock_campaign(&mut tx, campaign_id).await?;
                let mut imported = Vec::with_capacity(records.len());
                for r in records {
                    let id: Option<i64> = sqlx::query_scalar(
                        "INSERT INTO survey_records (campaign_id, target_id, visited_on, phone_hash, phone_enc, next_attempt_at, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $6) \
                         ON CONFLICT (campaign_id, phone_hash, target_id, visited_on) DO NOTHING RETURNING id",
                    )
                    .bind(campaign_id)
                    .bind(r.target_id)
                    .bind(r.visited_on.to_string())
                    .bind(&r.phone_hash)
                    .bind(&r.phone_enc)
                    .bind(at)
                    .fetch_optional(&mut *tx)
                    .await?;
                    imported.push(id.is_some());
                }
                let count = imported.iter().filter(|i| **i).count();
                if count > 0 {
                    let body = record::body(
                        kinds::SURVEY_RECORDS_IMPORTED,
                        actor,
                        at,
                        campaign_id,
                        json!({"import": {"survey_records": count}}),
                    );
                    append(&mut tx, campaign_id, vec![body]).await?;
                }
                tx.commit().await?;
                Ok(imported)
            }

            async fn purge_phones(&self, before: DateTime<Utc>) -> StoreResult<u64> {
                let done = sqlx::query(
                    "UPDATE survey_records SET phone_enc = NULL, phone_hash = NULL, token_enc = NULL \
                     WHERE created_at < $1 AND phone_hash IS NOT NULL",
                )
                .bind(before)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected())
            }

            async fn claim_sends(
                &self,
                now: DateTime<Utc>,
                lease_until: DateTime<Utc>,
                tokens: &[NewToken],
                expires_at: DateTime<Utc>,
            ) -> StoreResult<Claimed> {
                let mut tx = self.pool.begin_with($begin).await?;
                let rows = sqlx::query(concat!(
                    "SELECT id, campaign_id, phone_enc, attempts, token_hash, token_enc, answered_at IS NOT NULL AS answered \
                     FROM survey_records WHERE send_status = 'queued' AND next_attempt_at <= $1 ORDER BY next_attempt_at, id LIMIT $2",
                    $skip_locked
                ))
                .bind(now)
                .bind(tokens.len() as i64)
                .fetch_all(&mut *tx)
                .await?;
                let mut claimed = Claimed::default();
                for (i, r) in rows.iter().enumerate() {
                    let id: i64 = r.try_get("id")?;
                    if r.try_get::<bool, _>("answered")? {
                        // Answered through the link of an earlier attempt: that SMS arrived.
                        sqlx::query(
                            "UPDATE survey_records SET send_status = 'sent', sent_at = COALESCE(sent_at, attempted_at, answered_at), \
                             last_error = NULL, token_enc = NULL WHERE id = $1",
                        )
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                        claimed.answered += 1;
                        continue;
                    }
                    let kept = (
                        r.try_get::<Option<String>, _>("token_hash")?,
                        r.try_get::<Option<String>, _>("token_enc")?,
                    );
                    let token = if let (Some(hash), Some(sealed)) = kept {
                        sqlx::query(
                            "UPDATE survey_records SET send_status = 'sending', next_attempt_at = $1, expires_at = $2, \
                             attempts = attempts + 1, attempted_at = $3 WHERE id = $4",
                        )
                        .bind(lease_until)
                        .bind(expires_at)
                        .bind(now)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                        ClaimedToken::Kept { hash, sealed }
                    } else {
                        sqlx::query(
                            "UPDATE survey_records SET send_status = 'sending', next_attempt_at = $1, token_hash = $2, \
                             token_enc = $3, expires_at = $4, attempts = attempts + 1, attempted_at = $5 WHERE id = $6",
                        )
                        .bind(lease_until)
                        .bind(&tokens[i].hash)
                        .bind(&tokens[i].sealed)
                        .bind(expires_at)
                        .bind(now)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                        ClaimedToken::Fresh(i)
                    };
                    claimed.sends.push(ClaimedSend {
                        id,
                        campaign_id: r.try_get("campaign_id")?,
                        phone_enc: r.try_get("phone_enc")?,
                        attempts: r.try_get::<i32, _>("attempts")?.max(0) as u32 + 1,
                        token,
                    });
                }
                tx.commit().await?;
                Ok(claimed)
            }

            async fn mark_sent(&self, id: i64, at: DateTime<Utc>) -> StoreResult<()> {
                sqlx::query(
                    "UPDATE survey_records SET send_status = 'sent', sent_at = $1, last_error = NULL, token_enc = NULL \
                     WHERE id = $2 AND send_status IN ('sending', 'unknown')",
                )
                .bind(at)
                .bind(id)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn mark_send_failed(&self, id: i64, error: &str, retry_at: Option<DateTime<Utc>>) -> StoreResult<()> {
                let status = if retry_at.is_some() { "queued" } else { "failed" };
                sqlx::query(
                    "UPDATE survey_records SET send_status = $1, last_error = $2, next_attempt_at = COALESCE($3, next_attempt_at), \
                     token_enc = CASE WHEN $1 = 'failed' THEN NULL ELSE token_enc END WHERE id = $4 AND send_status = 'sending'",
                )
                .bind(status)
                .bind(error)
                .bind(retry_at)
                .bind(id)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn release_send(&self, id: i64, now: DateTime<Utc>) -> StoreResult<()> {
                sqlx::query(
                    "UPDATE survey_records SET send_status = 'queued', attempts = attempts - 1, next_attempt_at = $1 \
                     WHERE id = $2 AND send_status = 'sending'",
                )
                .bind(now)
                .bind(id)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn mark_send_unknown(&self, id: i64, reason: &str, at: DateTime<Utc>, query_at: DateTime<Utc>) -> StoreResult<()> {
                sqlx::query(
                    "UPDATE survey_records SET send_status = 'unknown', last_error = $1, unknown_at = $2, \
                     next_attempt_at = $3, failed_queries = 0 WHERE id = $4 AND send_status = 'sending'",
                )
                .bind(reason)
                .bind(at)
                .bind(query_at)
                .bind(id)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn mark_interrupted_unknown(&self, now: DateTime<Utc>) -> StoreResult<u64> {
                // The lease's end stays the next query's time: past, so due at once.
                let done = sqlx::query(
                    "UPDATE survey_records SET send_status = 'unknown', last_error = 'interrupted: outcome unknown', \
                     unknown_at = $1, failed_queries = 0 WHERE send_status = 'sending' AND next_attempt_at < $1",
                )
                .bind(now)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected())
            }

            async fn claim_unknown_sends(
                &self,
                now: DateTime<Utc>,
                lease_until: DateTime<Utc>,
                limit: usize,
            ) -> StoreResult<Vec<UnknownSend>> {
                let mut tx = self.pool.begin_with($begin).await?;
                let rows = sqlx::query(concat!(
                    "SELECT id, campaign_id, phone_enc, attempts, last_error, attempted_at, unknown_at, failed_queries, \
                     answered_at IS NOT NULL AS answered \
                     FROM survey_records WHERE send_status = 'unknown' AND next_attempt_at <= $1 \
                     ORDER BY next_attempt_at, id LIMIT $2",
                    $skip_locked
                ))
                .bind(now)
                .bind(limit as i64)
                .fetch_all(&mut *tx)
                .await?;
                let mut claimed = Vec::with_capacity(rows.len());
                for r in &rows {
                    let id: i64 = r.try_get("id")?;
                    sqlx::query("UPDATE survey_records SET next_attempt_at = $1 WHERE id = $2")
                        .bind(lease_until)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    let unknown_at: Option<DateTime<Utc>> = r.try_get("unknown_at")?;
                    claimed.push(UnknownSend {
                        id,
                        campaign_id: r.try_get("campaign_id")?,
                        phone_enc: r.try_get("phone_enc")?,
                        attempts: r.try_get::<i32, _>("attempts")?.max(0) as u32,
                        reason: r.try_get::<Option<String>, _>("last_error")?.unwrap_or_else(|| "outcome unknown".into()),
                        attempted_at: r.try_get("attempted_at")?,
                        unknown_at: unknown_at.unwrap_or(now),
                        failed_queries: r.try_get::<i32, _>("failed_queries")?.max(0) as u32,
                        answered: r.try_get("answered")?,
                    });
                }
                tx.commit().await?;
                Ok(claimed)
            }

            async fn settle_unknown_send(&self, id: i64, settled: &Settled<'_>) -> StoreResult<()> {
                let (status, error, sent_at, retry_at) = match settled {
                    Settled::Sent { at } => ("sent", None, Some(*at), None),
                    Settled::Requeued { reason, retry_at } => ("queued", Some(*reason), None, Some(*retry_at)),
                    Settled::Failed { reason } => ("failed", Some(*reason), None, None),
                };
                sqlx::query(
                    "UPDATE survey_records SET send_status = $1, last_error = $2, sent_at = COALESCE($3, sent_at), \
                     next_attempt_at = COALESCE($4, next_attempt_at), token_enc = CASE WHEN $1 = 'queued' THEN token_enc ELSE NULL END \
                     WHERE id = $5 AND send_status = 'unknown'",
                )
                .bind(status)
                .bind(error)
                .bind(sent_at)
                .bind(retry_at)
                .bind(id)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn postpone_status_query(&self, id: i64, at: DateTime<Utc>, failed_query: bool) -> StoreResult<()> {
                sqlx::query(
                    "UPDATE survey_records SET next_attempt_at = $1, failed_queries = failed_queries + $2 \
                     WHERE id = $3 AND send_status = 'unknown'",
                )
                .bind(at)
                .bind(i32::from(failed_query))
                .bind(id)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn survey_by_token(&self, token_hash: &str) -> StoreResult<Option<SurveyView>> {
                let row = sqlx::query(
                    "SELECT s.id, s.campaign_id, s.target_id, t.name AS target_name, p.name AS unit_name, s.visited_on, \
                     s.expires_at, s.answered_at IS NOT NULL AS answered \
                     FROM survey_records s JOIN targets t ON t.id = s.target_id LEFT JOIN targets p ON p.id = t.parent_id \
                     WHERE s.token_hash = $1",
                )
                .bind(token_hash)
                .fetch_optional(&self.pool)
                .await?;
                row.map(|r| {
                    Ok(SurveyView {
                        record_id: r.try_get("id")?,
                        campaign_id: r.try_get("campaign_id")?,
                        target_id: r.try_get("target_id")?,
                        target_name: r.try_get("target_name")?,
                        unit_name: r.try_get("unit_name")?,
                        visited_on: r.try_get("visited_on")?,
                        expires_at: r.try_get("expires_at")?,
                        answered: r.try_get("answered")?,
                    })
                })
                .transpose()
            }

            async fn send_counts(&self, campaign_id: i64) -> StoreResult<Vec<(String, u64)>> {
                let rows = sqlx::query(
                    "SELECT send_status, COUNT(*) AS n FROM survey_records WHERE campaign_id = $1 GROUP BY send_status ORDER BY send_status",
                )
                .bind(campaign_id)
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| Ok((r.try_get("send_status")?, r.try_get::<i64, _>("n")?.max(0) as u64)))
                    .collect()
            }

            async fn decide(&self, actor: &Actor, d: &Decision) -> StoreResult<Option<Decided>> {
                let mut tx = self.pool.begin_with($begin).await?;
                // As every change of the campaign: ballot batches wait (they share-lock it), so
                // no ballot changes status between the read and the update below.
                lock_campaign(&mut tx, d.campaign_id).await?;
                let mut sql: QueryBuilder<$db> =
                    QueryBuilder::new("SELECT id, seq, candidate_ids, status FROM ballots WHERE campaign_id = ");
                sql.push_bind(d.campaign_id).push(" AND status IN (");
                let mut list = sql.separated(", ");
                for status in d.action.from_statuses() {
                    list.push_bind(*status);
                }
                sql.push(")");
                match &d.select {
                    Selection::Seqs(seqs) => {
                        sql.push(" AND seq IN (");
                        let mut list = sql.separated(", ");
                        for seq in seqs.iter().take(10_000) {
                            list.push_bind(*seq);
                        }
                        // An empty list never matches.
                        list.push_unseparated(if seqs.is_empty() { "NULL)" } else { ")" });
                    }
                    Selection::Cluster { by, key, from, to } => {
                        let (column, value) = cluster_column(*by, key)?;
                        sql.push(format_args!(" AND {column} = ")).push_bind(value);
                        sql.push(" AND cast_at >= ").push_bind(*from).push(" AND cast_at < ").push_bind(*to);
                    }
                }
                sql.push(" ORDER BY seq");
                let rows = sql.build().fetch_all(&mut *tx).await?;
                if rows.is_empty() {
                    return Ok(None);
                }
                let mut ids = Vec::with_capacity(rows.len());
                let mut seqs = Vec::with_capacity(rows.len());
                let mut votes = std::collections::BTreeMap::<i64, i64>::new();
                for r in &rows {
                    ids.push(r.try_get::<i64, _>("id")?);
                    seqs.push(r.try_get::<i64, _>("seq")?);
                    let change = d.action.count_change(&r.try_get::<String, _>("status")?);
                    let candidates: Vec<String> = decode_json("candidate_ids", r.try_get("candidate_ids")?)?;
                    if change != 0 {
                        for c in candidates {
                            let c: i64 = c.parse().map_err(|_| StoreError::Corrupt("candidate id".into()))?;
                            *votes.entry(c).or_default() += change;
                        }
                    }
                }
                for chunk in ids.chunks(5000) {
                    let mut update: QueryBuilder<$db> = QueryBuilder::new("UPDATE ballots SET status = ");
                    update.push_bind(d.action.to_status()).push(" WHERE id IN (");
                    let mut list = update.separated(", ");
                    for id in chunk {
                        list.push_bind(*id);
                    }
                    update.push(")");
                    update.build().execute(&mut *tx).await?;
                }
                let selection = match &d.select {
                    Selection::Seqs(_) => json!({"by": "seq"}),
                    Selection::Cluster { by, key, from, to } => json!({
                        "by": by.as_str(),
                        "key": key,
                        "from": from.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                        "to": to.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    }),
                };
                let moved: serde_json::Map<String, serde_json::Value> =
                    votes.iter().map(|(c, n)| (c.to_string(), json!(n))).collect();
                let body = record::body(
                    kinds::REVIEW_DECIDED,
                    actor,
                    d.at,
                    d.campaign_id,
                    json!({"decision": {
                        "action": d.action.as_str(),
                        "reason": d.reason,
                        "selection": selection,
                        "ballots": seqs,
                        "votes": moved,
                    }}),
                );
                let entry = append(&mut tx, d.campaign_id, vec![body]).await?.remove(0);
                tx.commit().await?;
                Ok(Some(Decided {
                    seq: entry.seq,
                    hash: entry.hash,
                    action: d.action,
                    ballots: seqs,
                    votes,
                }))
            }

            async fn review_ballots(
                &self,
                campaign_id: i64,
                suspicious_only: bool,
                from: DateTime<Utc>,
                to: DateTime<Utc>,
            ) -> StoreResult<Vec<review::ReviewBallot>> {
                // Suspicious: held, invalidated, or flagged by more than a young account (common
                // among honest citizens). Flags are stored in a fixed order, so the text of
                // "only new_account" is always the same.
                let sql = if suspicious_only {
                    "SELECT seq, voter_id, cast_at, status, flags, candidate_ids, device_hash, ip_hash, network_hash \
                     FROM ballots WHERE campaign_id = $1 AND cast_at >= $2 AND cast_at < $3 \
                     AND (status <> 'counted' OR flags NOT IN ('[]', '[\"new_account\"]')) ORDER BY seq"
                } else {
                    "SELECT seq, voter_id, cast_at, status, flags, candidate_ids, device_hash, ip_hash, network_hash \
                     FROM ballots WHERE campaign_id = $1 AND cast_at >= $2 AND cast_at < $3 ORDER BY seq"
                };
                let rows = sqlx::query(sql).bind(campaign_id).bind(from).bind(to).fetch_all(&self.pool).await?;
                rows.iter().map(review_ballot_from_row).collect()
            }

            async fn ballot_statuses(&self, campaign_id: i64) -> StoreResult<std::collections::BTreeMap<i64, String>> {
                let rows = sqlx::query("SELECT seq, status FROM ballots WHERE campaign_id = $1")
                    .bind(campaign_id)
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(|r| Ok((r.try_get("seq")?, r.try_get("status")?))).collect()
            }

            fn kind(&self) -> DatabaseKind {
                $kind
            }

            async fn ping(&self) -> StoreResult<()> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            async fn local_secret(&self) -> StoreResult<String> {
                let mut bytes = [0u8; 32];
                rand::fill(&mut bytes);
                sqlx::query("INSERT INTO local_secret (id, secret) VALUES (1, $1) ON CONFLICT (id) DO NOTHING")
                    .bind(hex::encode(bytes))
                    .execute(&self.pool)
                    .await?;
                Ok(sqlx::query_scalar("SELECT secret FROM local_secret WHERE id = 1").fetch_one(&self.pool).await?)
            }

            async fn create_staff(&self, username: &str, password_hash: &str, role: Role, unit: Option<&str>) -> StoreResult<i64> {
                sqlx::query_scalar(
                    "INSERT INTO staff_users (username, password_hash, role, unit, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
                )
                .bind(username)
                .bind(password_hash)
                .bind(role.as_str())
                .bind(unit)
                .bind(Utc::now())
                .fetch_one(&self.pool)
                .await
                .map_err(|e| conflict(e, "username"))
            }

            async fn find_staff(&self, username: &str) -> StoreResult<Option<StaffAccount>> {
                let row = sqlx::query(
                    "SELECT id, username, role, password_hash, failed_logins, locked_until, disabled FROM staff_users WHERE username = $1",
                )
                .bind(username)
                .fetch_optional(&self.pool)
                .await?;
                row.map(|r| {
                    Ok(StaffAccount {
                        id: r.try_get("id")?,
                        username: r.try_get("username")?,
                        role: decode_role(r.try_get("role")?)?,
                        password_hash: r.try_get("password_hash")?,
                        failed_logins: r.try_get::<i32, _>("failed_logins")?.max(0) as u32,
                        locked_until: r.try_get("locked_until")?,
                        disabled: r.try_get("disabled")?,
                    })
                })
                .transpose()
            }

            async fn list_staff(&self) -> StoreResult<Vec<StaffSummary>> {
                let rows = sqlx::query("SELECT id, username, role, created_at FROM staff_users ORDER BY id")
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter()
                    .map(|r| {
                        Ok(StaffSummary {
                            id: r.try_get("id")?,
                            username: r.try_get("username")?,
                            role: decode_role(r.try_get("role")?)?,
                            created_at: r.try_get("created_at")?,
                        })
                    })
                    .collect()
            }

            async fn add_login_failure(&self, staff_id: i64) -> StoreResult<u32> {
                let n: i32 = sqlx::query_scalar(
                    "UPDATE staff_users SET failed_logins = failed_logins + 1 WHERE id = $1 RETURNING failed_logins",
                )
                .bind(staff_id)
                .fetch_one(&self.pool)
                .await?;
                Ok(n.max(0) as u32)
            }

            async fn lock_staff(&self, staff_id: i64, until: DateTime<Utc>) -> StoreResult<()> {
                sqlx::query("UPDATE staff_users SET failed_logins = 0, locked_until = $1 WHERE id = $2")
                    .bind(until)
                    .bind(staff_id)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn reset_login_failures(&self, staff_id: i64) -> StoreResult<()> {
                sqlx::query("UPDATE staff_users SET failed_logins = 0, locked_until = NULL WHERE id = $1")
                    .bind(staff_id)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn create_session(&self, digest: &str, staff_id: i64, expires_at: DateTime<Utc>) -> StoreResult<()> {
                sqlx::query("INSERT INTO staff_sessions (token_digest, staff_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
                    .bind(digest)
                    .bind(staff_id)
                    .bind(Utc::now())
                    .bind(expires_at)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn find_session(&self, digest: &str) -> StoreResult<Option<StaffSession>> {
                let row = sqlx::query(
                    "SELECT s.staff_id, u.username, u.role, u.unit, u.rater_group, s.expires_at FROM staff_sessions s \
                     JOIN staff_users u ON u.id = s.staff_id \
                     WHERE s.token_digest = $1 AND s.revoked_at IS NULL AND NOT u.disabled",
                )
                .bind(digest)
                .fetch_optional(&self.pool)
                .await?;
                row.map(|r| {
                    Ok(StaffSession {
                        staff_id: r.try_get("staff_id")?,
                        username: r.try_get("username")?,
                        role: decode_role(r.try_get("role")?)?,
                        unit: r.try_get("unit")?,
                        rater_group: r
                            .try_get::<Option<String>, _>("rater_group")?
                            .map(|g| RaterGroup::parse(&g).ok_or_else(|| StoreError::Corrupt(format!("rater group {g}"))))
                            .transpose()?,
                        expires_at: r.try_get("expires_at")?,
                    })
                })
                .transpose()
            }

            async fn set_rater_group(&self, staff_id: i64, group: Option<RaterGroup>) -> StoreResult<()> {
                let done = sqlx::query("UPDATE staff_users SET rater_group = $1 WHERE id = $2")
                    .bind(group.map(RaterGroup::as_str))
                    .bind(staff_id)
                    .execute(&self.pool)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
                Ok(())
            }

            async fn revoke_session(&self, digest: &str, at: DateTime<Utc>) -> StoreResult<()> {
                sqlx::query("UPDATE staff_sessions SET revoked_at = $1 WHERE token_digest = $2 AND revoked_at IS NULL")
                    .bind(at)
                    .bind(digest)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn touch_voter(&self, voter: &VoterId, now: DateTime<Utc>) -> StoreResult<DateTime<Utc>> {
                Ok(sqlx::query_scalar(
                    "INSERT INTO voters (voter_id, first_seen_at, last_login_at) VALUES ($1, $2, $2) \
                     ON CONFLICT (voter_id) DO UPDATE SET last_login_at = $2, logins = voters.logins + 1 \
                     RETURNING first_seen_at",
                )
                .bind(voter.as_str())
                .bind(now)
                .fetch_one(&self.pool)
                .await?)
            }

            async fn create_campaign(&self, actor: &Actor, c: &NewCampaign) -> StoreResult<Campaign> {
                campaign::validate(&campaign::Settings {
                    title: c.title.clone(),
                    description: c.description.clone(),
                    timezone: c.timezone.clone(),
                    phases: c.phases.clone(),
                    rules: c.rules.clone(),
                })?;
                let now = Utc::now();
                let mut tx = self.pool.begin_with($begin).await?;
                let row = sqlx::query(
                    "INSERT INTO campaigns (kind, title, description, timezone, phases, rules, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING \
                     id, kind, title, description, timezone, phases, rules, is_draft, created_at, version, \
                     CAST(NULL AS BIGINT) AS published_seq",
                )
                .bind(c.kind.as_str())
                .bind(&c.title)
                .bind(&c.description)
                .bind(&c.timezone)
                .bind(json_text(&c.phases)?)
                .bind(json_text(&c.rules)?)
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
                let campaign = campaign_from_row(&row)?;
                sqlx::query("INSERT INTO audit_heads (campaign_id, seq, hash) VALUES ($1, 0, $2)")
                    .bind(campaign.id)
                    .bind(audit::to_hex(&audit::GENESIS))
                    .execute(&mut *tx)
                    .await?;
                let body = record::body(kinds::CAMPAIGN_CREATED, actor, now, campaign.id, json!({"campaign": campaign.state()}));
                append(&mut tx, campaign.id, vec![body]).await?;
                tx.commit().await?;
                Ok(campaign)
            }

            async fn update_campaign(&self, actor: &Actor, campaign_id: i64, patch: &CampaignPatch) -> StoreResult<Campaign> {
                let mut tx = self.pool.begin_with($begin).await?;
                let before = lock_campaign(&mut tx, campaign_id).await?;
                let mut after = before.clone();
                let mut changed: Vec<&str> = Vec::new();
                macro_rules! take {
                    ($field:ident) => {
                        if let Some(v) = &patch.$field {
                            if *v != after.$field {
                                after.$field = v.clone();
                                changed.push(stringify!($field));
                            }
                        }
                    };
                }
                take!(title);
                take!(description);
                take!(timezone);
                take!(phases);
                take!(rules);
                campaign::validate(&campaign::Settings {
                    title: after.title.clone(),
                    description: after.description.clone(),
                    timezone: after.timezone.clone(),
                    phases: after.phases.clone(),
                    rules: after.rules.clone(),
                })?;
                if changed.is_empty() {
                    return Ok(before);
                }
                write_campaign(&mut tx, &after).await?;
                // The head before the check: a score recorded meanwhile holds it first, so it
                // is seen here.
                let head = lock_head(&mut tx, campaign_id).await?;
                if before.rules.results != after.rules.results {
                    let scored: Option<i64> = sqlx::query_scalar("SELECT seq FROM expert_scores WHERE campaign_id = $1 LIMIT 1")
                        .bind(campaign_id)
                        .fetch_optional(&mut *tx)
                        .await?;
                    if scored.is_some() {
                        return Err(StoreError::Closed("scoring_started"));
                    }
                }
                let body = record::body(
                    kinds::CAMPAIGN_UPDATED,
                    actor,
                    Utc::now(),
                    campaign_id,
                    json!({"campaign": after.state(), "changed": changed}),
                );
                append_at(&mut tx, campaign_id, head, vec![body]).await?;
                tx.commit().await?;
                Ok(after)
            }

            async fn open_campaign(&self, actor: &Actor, campaign_id: i64) -> StoreResult<Campaign> {
                let mut tx = self.pool.begin_with($begin).await?;
                let mut c = lock_campaign(&mut tx, campaign_id).await?;
                if !c.is_draft {
                    return Ok(c);
                }
                if c.phases.is_empty() {
                    return Err(StoreError::Invalid(FieldError {
                        field: "phases".into(),
                        message: "活动至少需要设置一个阶段才能发布".into(),
                    }));
                }
                c.is_draft = false;
                write_campaign(&mut tx, &c).await?;
                let body = record::body(kinds::CAMPAIGN_OPENED, actor, Utc::now(), campaign_id, json!({"campaign": c.state()}));
                append(&mut tx, campaign_id, vec![body]).await?;
                tx.commit().await?;
                Ok(c)
            }

            async fn add_category(&self, actor: &Actor, campaign_id: i64, name: &str, winners: u32) -> StoreResult<Category> {
                let mut tx = self.pool.begin_with($begin).await?;
                lock_campaign(&mut tx, campaign_id).await?;
                let row = sqlx::query(
                    "INSERT INTO categories (campaign_id, name, winners) VALUES ($1, $2, $3) RETURNING id, campaign_id, name, winners",
                )
                .bind(campaign_id)
                .bind(name)
                .bind(winners as i32)
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| conflict(e, "category name"))?;
                let category = category_from_row(&row)?;
                let body = record::body(kinds::CATEGORY_CREATED, actor, Utc::now(), campaign_id, json!({"category": category.state()}));
                append(&mut tx, campaign_id, vec![body]).await?;
                tx.commit().await?;
                Ok(category)
            }

            async fn update_category(
                &self,
                actor: &Actor,
                campaign_id: i64,
                category_id: i64,
                name: Option<&str>,
                winners: Option<u32>,
            ) -> StoreResult<Category> {
                let mut tx = self.pool.begin_with($begin).await?;
                lock_campaign(&mut tx, campaign_id).await?;
                let row = sqlx::query(
                    "UPDATE categories SET name = COALESCE($1, name), winners = COALESCE($2, winners) \
                     WHERE id = $3 AND campaign_id = $4 RETURNING id, campaign_id, name, winners",
                )
                .bind(name)
                .bind(winners.map(|w| w as i32))
                .bind(category_id)
                .bind(campaign_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| conflict(e, "category name"))?
                .ok_or(StoreError::NotFound)?;
                let category = category_from_row(&row)?;
                let body = record::body(kinds::CATEGORY_UPDATED, actor, Utc::now(), campaign_id, json!({"category": category.state()}));
                append(&mut tx, campaign_id, vec![body]).await?;
                tx.commit().await?;
                Ok(category)
            }

            async fn add_candidates(
                &self,
                actor: &Actor,
                campaign_id: i64,
                list: &[NewCandidate],
                status: CandidateStatus,
                import: Option<&serde_json::Value>,
            ) -> StoreResult<Vec<Candidate>> {
                let now = Utc::now();
                let mut tx = self.pool.begin_with($begin).await?;
                lock_campaign(&mut tx, campaign_id).await?;
                let mut added = Vec::with_capacity(list.len());
                let mut bodies = Vec::with_capacity(list.len());
                // Each category once, not once per row: an import holds up to 10,000 rows.
                let mut categories: Vec<i64> = list.iter().map(|c| c.category_id).collect();
                categories.sort_unstable();
                categories.dedup();
                for category_id in categories {
                    let found: Option<i64> = sqlx::query_scalar("SELECT id FROM categories WHERE id = $1 AND campaign_id = $2")
                        .bind(category_id)
                        .bind(campaign_id)
                        .fetch_optional(&mut *tx)
                        .await?;
                    if found.is_none() {
                        return Err(StoreError::Invalid(FieldError { field: "category_id".into(), message: "类别不存在".into() }));
                    }
                }
                for c in list {
                    // The campaign row is locked, so numbers are handed out one at a time and
                    // never reused.
                    let number: i64 = sqlx::query_scalar(
                        "UPDATE campaigns SET next_candidate_number = next_candidate_number + 1 WHERE id = $1 \
                         RETURNING next_candidate_number - 1",
                    )
                    .bind(campaign_id)
                    .fetch_one(&mut *tx)
                    .await?;
                    let row = sqlx::query(concat!(
                        "INSERT INTO candidates (campaign_id, category_id, number, name, unit, department, title, \
                         photo_url, story, status, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING ",
                        candidate_columns!()
                    ))
                    .bind(campaign_id)
                    .bind(c.category_id)
                    .bind(number)
                    .bind(&c.name)
                    .bind(&c.unit)
                    .bind(&c.department)
                    .bind(&c.title)
                    .bind(&c.photo_url)
                    .bind(&c.story)
                    .bind(status.as_str())
                    .bind(now)
                    .fetch_one(&mut *tx)
                    .await?;
                    let candidate = candidate_from_row(&row)?;
                    let mut fields = json!({"candidate": candidate.state()});
                    if let Some(import) = import {
                        fields["import"] = import.clone();
                    }
                    bodies.push(record::body(kinds::CANDIDATE_NOMINATED, actor, now, campaign_id, fields));
                    added.push(candidate);
                }
                append(&mut tx, campaign_id, bodies).await?;
                tx.commit().await?;
                Ok(added)
            }

            async fn change_candidate_status(
                &self,
                actor: &Actor,
                campaign_id: i64,
                candidate_id: i64,
                to: CandidateStatus,
                reason: &str,
            ) -> StoreResult<Candidate> {
                let mut tx = self.pool.begin_with($begin).await?;
                lock_campaign(&mut tx, campaign_id).await?;
                let before = fetch_candidate(&mut tx, campaign_id, candidate_id).await?;
                if !campaign::status_change_allowed(before.status.as_str(), to.as_str()) {
                    return Err(StoreError::BadTransition { from: before.status.as_str().into(), to: to.as_str().into() });
                }
                sqlx::query("UPDATE candidates SET status = $1, reason = $2 WHERE id = $3")
                    .bind(to.as_str())
                    .bind(reason)
                    .bind(candidate_id)
                    .execute(&mut *tx)
                    .await?;
                let after = Candidate { status: to, reason: reason.to_string(), ..before.clone() };
                let body = record::body(
                    kinds::CANDIDATE_STATUS,
                    actor,
                    Utc::now(),
                    campaign_id,
                    json!({"candidate": after.state(), "from": before.status.as_str()}),
                );
                append(&mut tx, campaign_id, vec![body]).await?;
                tx.commit().await?;
                Ok(after)
            }

            async fn add_targets(
                &self,
                actor: &Actor,
                campaign_id: i64,
                list: &[NewTarget],
                import: Option<&serde_json::Value>,
            ) -> StoreResult<Vec<Target>> {
                let now = Utc::now();
                let mut tx = self.pool.begin_with($begin).await?;
                lock_campaign(&mut tx, campaign_id).await?;
                let mut added: Vec<Target> = Vec::with_capacity(list.len());
                let mut bodies = Vec::with_capacity(list.len());
                for t in list {
                    let parent_id = match &t.parent {
                        TargetParent::Root => None,
                        TargetParent::Id(id) => Some(*id),
                        TargetParent::Code(code) => sqlx::query_scalar("SELECT id FROM targets WHERE campaign_id = $1 AND code = $2")
                            .bind(campaign_id)
                            .bind(code)
                            .fetch_optional(&mut *tx)
                            .await?
                            .or(Some(-1)),
                    };
                    if let Some(pid) = parent_id {
                        let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM targets WHERE id = $1 AND campaign_id = $2")
                            .bind(pid)
                            .bind(campaign_id)
                            .fetch_optional(&mut *tx)
                            .await?;
                        if exists.is_none() {
                            return Err(StoreError::Invalid(FieldError { field: "parent_id".into(), message: "上级对象不存在".into() }));
                        }
                    }
                    let row = sqlx::query(
                        "INSERT INTO targets (campaign_id, code, name, parent_id) VALUES ($1, $2, $3, $4) \
                         RETURNING id, campaign_id, code, name, parent_id",
                    )
                    .bind(campaign_id)
                    .bind(&t.code)
                    .bind(&t.name)
                    .bind(parent_id)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(|e| conflict(e, "target code"))?;
                    let target = target_from_row(&row)?;
                    let mut fields = json!({"target": target.state()});
                    if let Some(import) = import {
                        fields["import"] = import.clone();
                    }
                    bodies.push(record::body(kinds::TARGET_CREATED, actor, now, campaign_id, fields));
                    added.push(target);
                }
                append(&mut tx, campaign_id, bodies).await?;
                tx.commit().await?;
                Ok(added)
            }

            async fn list_campaigns(&self, include_drafts: bool) -> StoreResult<Vec<Campaign>> {
                let rows = sqlx::query(concat!("SELECT ", campaign_columns!(), " FROM campaigns WHERE $1 OR NOT is_draft ORDER BY id DESC"))
                    .bind(include_drafts)
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(campaign_from_row).collect()
            }

            async fn get_campaign(&self, campaign_id: i64) -> StoreResult<Campaign> {
                let row = sqlx::query(concat!("SELECT ", campaign_columns!(), " FROM campaigns WHERE id = $1"))
                    .bind(campaign_id)
                    .fetch_optional(&self.pool)
                    .await?
                    .ok_or(StoreError::NotFound)?;
                campaign_from_row(&row)
            }

            async fn list_categories(&self, campaign_id: i64) -> StoreResult<Vec<Category>> {
                let rows = sqlx::query("SELECT id, campaign_id, name, winners FROM categories WHERE campaign_id = $1 ORDER BY id")
                    .bind(campaign_id)
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(category_from_row).collect()
            }

            async fn list_candidates(
                &self,
                campaign_id: i64,
                status: Option<CandidateStatus>,
                q: &CandidateQuery,
            ) -> StoreResult<Vec<Candidate>> {
                let mut sql: QueryBuilder<$db> =
                    QueryBuilder::new(concat!("SELECT ", candidate_columns!(), " FROM candidates WHERE campaign_id = "));
                sql.push_bind(campaign_id);
                if let Some(status) = status {
                    sql.push(" AND status = ").push_bind(status.as_str());
                }
                if let Some(category) = q.category_id {
                    sql.push(" AND category_id = ").push_bind(category);
                }
                if let Some(text) = &q.text {
                    let pattern = like_pattern(text);
                    sql.push(" AND (name LIKE ").push_bind(pattern.clone());
                    sql.push(" ESCAPE '\\' OR unit LIKE ").push_bind(pattern).push(" ESCAPE '\\'");
                    if let Ok(n) = text.trim().parse::<i64>() {
                        sql.push(" OR number = ").push_bind(n);
                    }
                    sql.push(")");
                }
                if let Some(after) = q.after_number {
                    sql.push(" AND number > ").push_bind(after);
                }
                sql.push(" ORDER BY number LIMIT ").push_bind(q.limit as i64);
                let rows = sql.build().fetch_all(&self.pool).await?;
                rows.iter().map(candidate_from_row).collect()
            }

            async fn get_candidate(&self, campaign_id: i64, candidate_id: i64) -> StoreResult<Candidate> {
                let mut conn = self.pool.acquire().await?;
                fetch_candidate(&mut conn, campaign_id, candidate_id).await
            }

            async fn list_targets(&self, campaign_id: i64) -> StoreResult<Vec<Target>> {
                let rows = sqlx::query("SELECT id, campaign_id, code, name, parent_id FROM targets WHERE campaign_id = $1 ORDER BY id")
                    .bind(campaign_id)
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(target_from_row).collect()
            }

            async fn audit_head(&self, campaign_id: i64) -> StoreResult<(i64, String)> {
                let row = sqlx::query("SELECT seq, hash FROM audit_heads WHERE campaign_id = $1")
                    .bind(campaign_id)
                    .fetch_optional(&self.pool)
                    .await?
                    .ok_or(StoreError::NotFound)?;
                Ok((row.try_get("seq")?, row.try_get("hash")?))
            }

            async fn audit_entries(&self, campaign_id: i64, after_seq: i64, limit: u32) -> StoreResult<Vec<Entry>> {
                self.audit_entries_raw(campaign_id, after_seq, limit)
                    .await?
                    .into_iter()
                    .map(|r| {
                        Ok(Entry {
                            seq: r.seq,
                            kind: r.kind,
                            body: decode_json("audit body", &r.body)?,
                            prev_hash: r.prev_hash,
                            hash: r.hash,
                        })
                    })
                    .collect()
            }

            async fn audit_entries_raw(&self, campaign_id: i64, after_seq: i64, limit: u32) -> StoreResult<Vec<RawEntry>> {
                let rows = sqlx::query(
                    "SELECT seq, kind, body, prev_hash, hash FROM audit_entries \
                     WHERE campaign_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                )
                .bind(campaign_id)
                .bind(after_seq)
                .bind(limit as i64)
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| {
                        Ok(RawEntry {
                            seq: r.try_get("seq")?,
                            kind: r.try_get("kind")?,
                            body: r.try_get("body")?,
                            prev_hash: r.try_get("prev_hash")?,
                            hash: r.try_get("hash")?,
                        })
                    })
                    .collect()
            }

            async fn snapshot(&self, campaign_id: i64) -> StoreResult<Snapshot> {
                let mut s = Snapshot::default();
                s.campaign = match self.get_campaign(campaign_id).await {
                    Ok(c) => Some((c.state(), 0)),
                    Err(StoreError::NotFound) => None,
                    Err(e) => return Err(e),
                };
                for c in self.list_categories(campaign_id).await? {
                    s.categories.insert(c.id, (c.state(), 0));
                }
                let all = CandidateQuery { limit: u32::MAX, ..Default::default() };
                for c in self.list_candidates(campaign_id, None, &all).await? {
                    s.candidates.insert(c.id, (c.state(), 0));
                }
                for t in self.list_targets(campaign_id).await? {
                    s.targets.insert(t.id, (t.state(), 0));
                }
                for b in self.list_blocks(campaign_id).await? {
                    let state = b.state();
                    s.blocks.insert(state.key(), (state, 0));
                }
                Ok(s)
            }

            async fn assign_expert(
                &self,
                actor: &Actor,
                campaign_id: i64,
                staff_id: i64,
                category_ids: &[i64],
                at: DateTime<Utc>,
            ) -> StoreResult<ExpertAssignment> {
                let mut tx = self.pool.begin_with($begin).await?;
                lock_campaign(&mut tx, campaign_id).await?;
                let row = sqlx::query("SELECT username, role FROM staff_users WHERE id = $1")
                    .bind(staff_id)
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or(StoreError::NotFound)?;
                if decode_role(row.try_get("role")?)? != Role::Expert {
                    return Err(StoreError::Invalid(FieldError {
                        field: "username".into(),
                        message: "该账号不是评委（expert）账号".into(),
                    }));
                }
                let username: String = row.try_get("username")?;
                let mut ids = category_ids.to_vec();
                ids.sort_unstable();
                ids.dedup();
                for id in &ids {
                    let known: Option<i64> = sqlx::query_scalar("SELECT id FROM categories WHERE campaign_id = $1 AND id = $2")
                        .bind(campaign_id)
                        .bind(id)
                        .fetch_optional(&mut *tx)
                        .await?;
                    if known.is_none() {
                        return Err(StoreError::Invalid(FieldError {
                            field: "category_ids".into(),
                            message: format!("本活动没有类别 {id}"),
                        }));
                    }
                }
                sqlx::query("DELETE FROM expert_assignments WHERE campaign_id = $1 AND staff_id = $2")
                    .bind(campaign_id)
                    .bind(staff_id)
                    .execute(&mut *tx)
                    .await?;
                for id in &ids {
                    sqlx::query("INSERT INTO expert_assignments (campaign_id, staff_id, category_id) VALUES ($1, $2, $3)")
                        .bind(campaign_id)
                        .bind(staff_id)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
                let body = record::body(
                    kinds::EXPERT_ASSIGNED,
                    actor,
                    at,
                    campaign_id,
                    json!({"expert": {
                        "staff_id": staff_id.to_string(),
                        "username": username,
                        "category_ids": ids.iter().map(|i| i.to_string()).collect::<Vec<_>>(),
                    }}),
                );
                append(&mut tx, campaign_id, vec![body]).await?;
                tx.commit().await?;
                Ok(ExpertAssignment { staff_id, username, category_ids: ids })
            }

            async fn expert_assignments(&self, campaign_id: i64) -> StoreResult<Vec<ExpertAssignment>> {
                let rows = sqlx::query(
                    "SELECT a.staff_id, s.username, a.category_id FROM expert_assignments a \
                     JOIN staff_users s ON s.id = a.staff_id WHERE a.campaign_id = $1 ORDER BY s.username, a.category_id",
                )
                .bind(campaign_id)
                .fetch_all(&self.pool)
                .await?;
                let mut out: Vec<ExpertAssignment> = Vec::new();
                for r in rows {
                    let staff_id: i64 = r.try_get("staff_id")?;
                    let category_id: i64 = r.try_get("category_id")?;
                    match out.last_mut() {
                        Some(a) if a.staff_id == staff_id => a.category_ids.push(category_id),
                        _ => out.push(ExpertAssignment {
                            staff_id,
                            username: r.try_get("username")?,
                            category_ids: vec![category_id],
                        }),
                    }
                }
                Ok(out)
            }

            async fn record_expert_score(&self, actor: &Actor, s: &NewExpertScore) -> StoreResult<ExpertScore> {
                let mut tx = self.pool.begin_with($begin).await?;
                // The head first: scores queue behind a freeze, and see it.
                let head = lock_head(&mut tx, s.campaign_id).await?;
                let frozen: Option<i64> = sqlx::query_scalar("SELECT seq FROM results WHERE campaign_id = $1 LIMIT 1")
                    .bind(s.campaign_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                if frozen.is_some() {
                    return Err(StoreError::Closed("scoring_closed"));
                }
                // The criteria as they are under the head's lock (a change of them takes it
                // too), not as the caller read them.
                let rules: String = sqlx::query_scalar("SELECT rules FROM campaigns WHERE id = $1")
                    .bind(s.campaign_id)
                    .fetch_one(&mut *tx)
                    .await?;
                let rules: campaign::Rules = decode_json("rules", &rules)?;
                if crate::domain::results::check_points(&rules.results, &s.points)? != s.total {
                    return Err(StoreError::Corrupt("an expert's total is not the sum of the points".into()));
                }
                let status: Option<String> = sqlx::query_scalar(
                    "SELECT c.status FROM candidates c JOIN expert_assignments a \
                     ON a.campaign_id = c.campaign_id AND a.category_id = c.category_id \
                     WHERE c.campaign_id = $1 AND c.id = $2 AND a.staff_id = $3",
                )
                .bind(s.campaign_id)
                .bind(s.candidate_id)
                .bind(s.staff_id)
                .fetch_optional(&mut *tx)
                .await?;
                match status.as_deref() {
                    None => return Err(StoreError::NotFound),
                    Some("approved") => {}
                    Some(_) => {
                        return Err(StoreError::Invalid(FieldError {
                            field: "candidate_id".into(),
                            message: "只能为已通过审核的候选人打分".into(),
                        }));
                    }
                }
                let body = record::body(
                    kinds::EXPERT_SCORED,
                    actor,
                    s.at,
                    s.campaign_id,
                    json!({"score": {
                        "expert_id": s.staff_id.to_string(),
                        "candidate_id": s.candidate_id.to_string(),
                        "points": s.points,
                        "total": s.total,
                    }}),
                );
                let linked = chain(head, vec![body])?;
                let entry = linked.entries[0].clone();
                sqlx::query(
                    "INSERT INTO expert_scores (campaign_id, staff_id, candidate_id, points, total, seq, receipt, scored_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(s.campaign_id)
                .bind(s.staff_id)
                .bind(s.candidate_id)
                .bind(json_text(&s.points)?)
                .bind(s.total)
                .bind(entry.seq)
                .bind(&entry.hash)
                .bind(s.at)
                .execute(&mut *tx)
                .await
                .map_err(|e| conflict(e, "expert score"))?;
                insert_entries(&mut tx, s.campaign_id, &linked).await?;
                tx.commit().await?;
                Ok(ExpertScore {
                    staff_id: s.staff_id,
                    candidate_id: s.candidate_id,
                    points: s.points.clone(),
                    total: s.total,
                    seq: entry.seq,
                    receipt: entry.hash,
                    scored_at: s.at,
                })
            }

            async fn expert_scores(&self, campaign_id: i64, staff_id: Option<i64>) -> StoreResult<Vec<ExpertScore>> {
                let rows = sqlx::query(
                    "SELECT staff_id, candidate_id, points, total, seq, receipt, scored_at FROM expert_scores \
                     WHERE campaign_id = $1 AND ($2 IS NULL OR staff_id = $2) ORDER BY seq",
                )
                .bind(campaign_id)
                .bind(staff_id)
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| {
                        Ok(ExpertScore {
                            staff_id: r.try_get("staff_id")?,
                            candidate_id: r.try_get("candidate_id")?,
                            points: decode_json("points", r.try_get("points")?)?,
                            total: r.try_get("total")?,
                            seq: r.try_get("seq")?,
                            receipt: r.try_get("receipt")?,
                            scored_at: r.try_get("scored_at")?,
                        })
                    })
                    .collect()
            }

            async fn result_inputs(&self, campaign_id: i64) -> StoreResult<ResultInputs> {
                let mut tx = self.pool.begin_with($snapshot).await?;
                let row = sqlx::query("SELECT seq, hash FROM audit_heads WHERE campaign_id = $1")
                    .bind(campaign_id)
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or(StoreError::NotFound)?;
                let head = (row.try_get("seq")?, row.try_get("hash")?);
                let row = sqlx::query(concat!("SELECT ", campaign_columns!(), " FROM campaigns WHERE id = $1"))
                    .bind(campaign_id)
                    .fetch_one(&mut *tx)
                    .await?;
                let campaign = campaign_from_row(&row)?;
                let categories = sqlx::query("SELECT id, campaign_id, name, winners FROM categories WHERE campaign_id = $1 ORDER BY id")
                    .bind(campaign_id)
                    .fetch_all(&mut *tx)
                    .await?
                    .iter()
                    .map(category_from_row)
                    .collect::<StoreResult<Vec<_>>>()?;
                let candidates = sqlx::query(concat!("SELECT ", candidate_columns!(), " FROM candidates WHERE campaign_id = $1 ORDER BY id"))
                    .bind(campaign_id)
                    .fetch_all(&mut *tx)
                    .await?
                    .iter()
                    .map(candidate_from_row)
                    .collect::<StoreResult<Vec<_>>>()?;
                let votes = tally(&mut tx, campaign_id).await?.votes.into_iter().collect();
                let mut expert_totals: std::collections::HashMap<i64, Vec<i64>> = Default::default();
                for r in sqlx::query("SELECT candidate_id, total FROM expert_scores WHERE campaign_id = $1")
                    .bind(campaign_id)
                    .fetch_all(&mut *tx)
                    .await?
                {
                    expert_totals.entry(r.try_get("candidate_id")?).or_default().push(r.try_get("total")?);
                }
                let targets = sqlx::query("SELECT id, campaign_id, code, name, parent_id FROM targets WHERE campaign_id = $1 ORDER BY id")
                    .bind(campaign_id)
                    .fetch_all(&mut *tx)
                    .await?
                    .iter()
                    .map(target_from_row)
                    .collect::<StoreResult<Vec<_>>>()?;
                let ratings = rating_counts_in(&mut tx, campaign_id, None).await?;
                let last = last_frozen_stage(&mut tx, campaign_id).await?;
                let open_objections: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM objections WHERE campaign_id = $1 AND status = 'open'")
                    .bind(campaign_id)
                    .fetch_one(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(ResultInputs {
                    head,
                    campaign,
                    categories,
                    candidates,
                    votes,
                    expert_totals,
                    targets,
                    ratings,
                    last_frozen: last.as_deref().map(decode_stage).transpose()?,
                    open_objections,
                })
            }

            async fn freeze_results(
                &self,
                actor: &Actor,
                r: &results::Results,
                snapshot_hash: &str,
                based_on: i64,
                at: DateTime<Utc>,
            ) -> StoreResult<Frozen> {
                let mut tx = self.pool.begin_with($begin).await?;
                // In the order every change of the campaign takes its locks.
                lock_campaign(&mut tx, r.campaign_id).await?;
                let head = lock_head(&mut tx, r.campaign_id).await?;
                if head.0 != based_on {
                    return Err(StoreError::HeadMoved);
                }
                let results_json = serde_json::to_value(r).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                let body = record::body(
                    r.stage.entry_kind(),
                    actor,
                    at,
                    r.campaign_id,
                    json!({
                        "results": results_json,
                        "snapshot_hash": snapshot_hash,
                        "audit_head": {"seq": head.0, "hash": head.1},
                    }),
                );
                let linked = chain(head.clone(), vec![body])?;
                insert_entries(&mut tx, r.campaign_id, &linked).await?;
                let seq = linked.entries[0].seq;
                sqlx::query(
                    "INSERT INTO results (campaign_id, seq, stage, body, snapshot_hash, head_seq, head_hash, frozen_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(r.campaign_id)
                .bind(seq)
                .bind(r.stage.as_str())
                .bind(json_text(r)?)
                .bind(snapshot_hash)
                .bind(head.0)
                .bind(&head.1)
                .bind(at)
                .execute(&mut *tx)
                .await?;
                if r.stage == results::Stage::Final {
                    sqlx::query("UPDATE audit_heads SET sealed_seq = $1 WHERE campaign_id = $2")
                        .bind(seq)
                        .bind(r.campaign_id)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(Frozen {
                    campaign_id: r.campaign_id,
                    seq,
                    results: r.clone(),
                    snapshot_hash: snapshot_hash.to_string(),
                    head_seq: head.0,
                    head_hash: head.1,
                    frozen_at: at,
                })
            }

            async fn frozen_results(&self, campaign_id: i64, stage: results::Stage) -> StoreResult<Option<Frozen>> {
                let row = sqlx::query(
                    "SELECT seq, body, snapshot_hash, head_seq, head_hash, frozen_at FROM results \
                     WHERE campaign_id = $1 AND stage = $2 ORDER BY seq DESC LIMIT 1",
                )
                .bind(campaign_id)
                .bind(stage.as_str())
                .fetch_optional(&self.pool)
                .await?;
                row.map(|r| {
                    Ok(Frozen {
                        campaign_id,
                        seq: r.try_get("seq")?,
                        results: decode_json("results", r.try_get("body")?)?,
                        snapshot_hash: r.try_get("snapshot_hash")?,
                        head_seq: r.try_get("head_seq")?,
                        head_hash: r.try_get("head_hash")?,
                        frozen_at: r.try_get("frozen_at")?,
                    })
                })
                .transpose()
            }

            async fn add_objection(&self, o: &NewObjection) -> StoreResult<Objection> {
                let mut tx = self.pool.begin_with($begin).await?;
                let head = lock_head(&mut tx, o.campaign_id).await?;
                if last_frozen_stage(&mut tx, o.campaign_id).await?.as_deref() != Some("draft") {
                    return Err(StoreError::Closed("not_in_publicity"));
                }
                if let Some(c) = o.candidate_id {
                    let known: Option<i64> = sqlx::query_scalar("SELECT id FROM candidates WHERE campaign_id = $1 AND id = $2")
                        .bind(o.campaign_id)
                        .bind(c)
                        .fetch_optional(&mut *tx)
                        .await?;
                    if known.is_none() {
                        return Err(StoreError::Invalid(FieldError {
                            field: "candidate_id".into(),
                            message: "本活动没有这位候选人".into(),
                        }));
                    }
                }
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO objections (campaign_id, candidate_id, name_enc, contact_enc, content, seq, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                )
                .bind(o.campaign_id)
                .bind(o.candidate_id)
                .bind(&o.name_enc)
                .bind(&o.contact_enc)
                .bind(&o.content)
                .bind(head.0 + 1)
                .bind(o.at)
                .fetch_one(&mut *tx)
                .await?;
                // The text itself stays off the chain (it may name people); its hash is on it.
                let digest = {
                    use sha2::Digest;
                    audit::to_hex(&sha2::Sha256::digest(o.content.as_bytes()).into())
                };
                let body = record::body(
                    kinds::OBJECTION_RECEIVED,
                    &Actor::System("public"),
                    o.at,
                    o.campaign_id,
                    json!({"objection": {
                        "id": id.to_string(),
                        "candidate_id": o.candidate_id.map(|c| c.to_string()),
                        "content_sha256": digest,
                    }}),
                );
                let entry = append_at(&mut tx, o.campaign_id, head, vec![body]).await?.remove(0);
                tx.commit().await?;
                Ok(Objection {
                    id,
                    campaign_id: o.campaign_id,
                    candidate_id: o.candidate_id,
                    name_enc: o.name_enc.clone(),
                    contact_enc: o.contact_enc.clone(),
                    content: o.content.clone(),
                    status: "open".into(),
                    verdict: None,
                    answer: None,
                    seq: entry.seq,
                    created_at: o.at,
                    answered_at: None,
                })
            }

            async fn list_objections(&self, campaign_id: i64) -> StoreResult<Vec<Objection>> {
                let rows = sqlx::query(concat!("SELECT ", objection_columns!(), " FROM objections WHERE campaign_id = $1 ORDER BY id"))
                    .bind(campaign_id)
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(objection_from_row).collect()
            }

            async fn answer_objection(
                &self,
                actor: &Actor,
                campaign_id: i64,
                objection_id: i64,
                upheld: bool,
                answer: &str,
                at: DateTime<Utc>,
            ) -> StoreResult<Objection> {
                let mut tx = self.pool.begin_with($begin).await?;
                let head = lock_head(&mut tx, campaign_id).await?;
                let verdict = if upheld { "upheld" } else { "rejected" };
                let answered = sqlx::query(concat!(
                    "UPDATE objections SET status = 'answered', verdict = $1, answer = $2, answered_at = $3, answer_seq = $4 \
                     WHERE campaign_id = $5 AND id = $6 AND status = 'open' RETURNING ",
                    objection_columns!()
                ))
                .bind(verdict)
                .bind(answer)
                .bind(at)
                .bind(head.0 + 1)
                .bind(campaign_id)
                .bind(objection_id)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(row) = answered else {
                    let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM objections WHERE campaign_id = $1 AND id = $2")
                        .bind(campaign_id)
                        .bind(objection_id)
                        .fetch_optional(&mut *tx)
                        .await?;
                    return Err(match exists {
                        Some(_) => StoreError::Conflict("objection answered"),
                        None => StoreError::NotFound,
                    });
                };
                let body = record::body(
                    kinds::OBJECTION_ANSWERED,
                    actor,
                    at,
                    campaign_id,
                    json!({"objection": {
                        "id": objection_id.to_string(),
                        "verdict": verdict,
                        "answer": answer,
                    }}),
                );
                append_at(&mut tx, campaign_id, head, vec![body]).await?;
                tx.commit().await?;
                objection_from_row(&row)
            }
        }
    };
}
