//! The PostgreSQL ledger: the production record.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Postgres, QueryBuilder, Row};

use sqlx::AssertSqlSafe;

use super::*;

pub struct PgStore {
    pool: PgPool,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl PgStore {
    pub async fn connect(url: &str, max_connections: u32) -> StoreResult<Self> {
        let options: PgConnectOptions = url.parse()?;
        Self::connect_with(options, max_connections).await
    }

    pub async fn connect_with(
        options: PgConnectOptions,
        max_connections: u32,
    ) -> StoreResult<Self> {
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

fn conflict(e: sqlx::Error, what: &'static str) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict(what),
        _ => StoreError::Database(e),
    }
}

fn campaign_from_row(r: &PgRow) -> StoreResult<Campaign> {
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
    })
}

fn candidate_from_row(r: &PgRow) -> StoreResult<Candidate> {
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
    })
}

const CAMPAIGN_COLUMNS: &str =
    "id, kind, title, description, timezone, phases, rules, is_draft, created_at";
const CANDIDATE_COLUMNS: &str = "id, campaign_id, category_id, number, name, unit, department, \
     title, photo_url, story, status";

#[async_trait]
impl Store for PgStore {
    fn kind(&self) -> DatabaseKind {
        DatabaseKind::Postgres
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn local_secret(&self) -> StoreResult<String> {
        let mut bytes = [0u8; 32];
        rand::fill(&mut bytes);
        sqlx::query(
            "INSERT INTO local_secret (id, secret) VALUES (1, $1) ON CONFLICT (id) DO NOTHING",
        )
        .bind(hex::encode(bytes))
        .execute(&self.pool)
        .await?;
        Ok(
            sqlx::query_scalar("SELECT secret FROM local_secret WHERE id = 1")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn create_staff(
        &self,
        username: &str,
        password_hash: &str,
        role: Role,
    ) -> StoreResult<i64> {
        sqlx::query_scalar(
            "INSERT INTO staff_users (username, password_hash, role, created_at) \
             VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(username)
        .bind(password_hash)
        .bind(role.as_str())
        .bind(Utc::now())
        .fetch_one(&self.pool)
        .await
        .map_err(|e| conflict(e, "username"))
    }

    async fn find_staff(&self, username: &str) -> StoreResult<Option<StaffAccount>> {
        let row = sqlx::query(
            "SELECT id, username, role, password_hash, failed_logins, locked_until, disabled \
             FROM staff_users WHERE username = $1",
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
        let rows =
            sqlx::query("SELECT id, username, role, created_at FROM staff_users ORDER BY id")
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
        sqlx::query("UPDATE staff_users SET failed_logins = 0, locked_until = $2 WHERE id = $1")
            .bind(staff_id)
            .bind(until)
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

    async fn create_session(
        &self,
        digest: &str,
        staff_id: i64,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO staff_sessions (token_digest, staff_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
        )
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
            "SELECT s.staff_id, u.username, u.role, s.expires_at FROM staff_sessions s \
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
                expires_at: r.try_get("expires_at")?,
            })
        })
        .transpose()
    }

    async fn revoke_session(&self, digest: &str, at: DateTime<Utc>) -> StoreResult<()> {
        sqlx::query("UPDATE staff_sessions SET revoked_at = $2 WHERE token_digest = $1 AND revoked_at IS NULL")
            .bind(digest)
            .bind(at)
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

    async fn create_campaign(&self, c: &NewCampaign) -> StoreResult<i64> {
        Ok(sqlx::query_scalar(
            "INSERT INTO campaigns (kind, title, description, timezone, phases, rules, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(c.kind.as_str())
        .bind(&c.title)
        .bind(&c.description)
        .bind(&c.timezone)
        .bind(serde_json::to_string(&c.phases).map_err(|e| StoreError::Corrupt(e.to_string()))?)
        .bind(serde_json::to_string(&c.rules).map_err(|e| StoreError::Corrupt(e.to_string()))?)
        .bind(Utc::now())
        .fetch_one(&self.pool)
        .await?)
    }

    async fn set_campaign_open(&self, campaign_id: i64) -> StoreResult<()> {
        let done = sqlx::query("UPDATE campaigns SET is_draft = FALSE WHERE id = $1")
            .bind(campaign_id)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn add_category(&self, campaign_id: i64, name: &str, winners: u32) -> StoreResult<i64> {
        sqlx::query_scalar(
            "INSERT INTO categories (campaign_id, name, winners) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(campaign_id)
        .bind(name)
        .bind(winners as i32)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| conflict(e, "category name"))
    }

    async fn add_candidate(
        &self,
        campaign_id: i64,
        c: &NewCandidate,
        status: CandidateStatus,
    ) -> StoreResult<Candidate> {
        let mut tx = self.pool.begin().await?;
        // The row lock on the campaign serializes number allocation: numbers are never reused.
        let number: i64 = sqlx::query_scalar(
            "UPDATE campaigns SET next_candidate_number = next_candidate_number + 1 \
             WHERE id = $1 RETURNING next_candidate_number - 1",
        )
        .bind(campaign_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound)?;
        let row = sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO candidates (campaign_id, category_id, number, name, unit, department, title, \
             photo_url, story, status, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
             RETURNING {CANDIDATE_COLUMNS}"
        )))
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
        .bind(Utc::now())
        .fetch_one(&mut *tx)
        .await?;
        let candidate = candidate_from_row(&row)?;
        tx.commit().await?;
        Ok(candidate)
    }

    async fn list_campaigns(&self, include_drafts: bool) -> StoreResult<Vec<Campaign>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE $1 OR NOT is_draft ORDER BY id DESC"
        )))
        .bind(include_drafts)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(campaign_from_row).collect()
    }

    async fn get_campaign(&self, campaign_id: i64) -> StoreResult<Campaign> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE id = $1"
        )))
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
        rows.iter()
            .map(|r| {
                Ok(Category {
                    id: r.try_get("id")?,
                    campaign_id: r.try_get("campaign_id")?,
                    name: r.try_get("name")?,
                    winners: r.try_get::<i32, _>("winners")?.max(0) as u32,
                })
            })
            .collect()
    }

    async fn list_candidates(
        &self,
        campaign_id: i64,
        status: CandidateStatus,
        q: &CandidateQuery,
    ) -> StoreResult<Vec<Candidate>> {
        let mut sql: QueryBuilder<Postgres> = QueryBuilder::new(format!(
            "SELECT {CANDIDATE_COLUMNS} FROM candidates WHERE campaign_id = "
        ));
        sql.push_bind(campaign_id)
            .push(" AND status = ")
            .push_bind(status.as_str());
        if let Some(category) = q.category_id {
            sql.push(" AND category_id = ").push_bind(category);
        }
        if let Some(text) = &q.text {
            let pattern = like_pattern(text);
            sql.push(" AND (name LIKE ").push_bind(pattern.clone());
            sql.push(" ESCAPE '\\' OR unit LIKE ")
                .push_bind(pattern)
                .push(" ESCAPE '\\'");
            if let Ok(n) = text.trim().parse::<i64>() {
                sql.push(" OR number = ").push_bind(n);
            }
            sql.push(")");
        }
        if let Some(after) = q.after_number {
            sql.push(" AND number > ").push_bind(after);
        }
        sql.push(" ORDER BY number LIMIT ")
            .push_bind(q.limit as i64);
        let rows = sql.build().fetch_all(&self.pool).await?;
        rows.iter().map(candidate_from_row).collect()
    }

    async fn get_candidate(&self, campaign_id: i64, candidate_id: i64) -> StoreResult<Candidate> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {CANDIDATE_COLUMNS} FROM candidates WHERE campaign_id = $1 AND id = $2"
        )))
        .bind(campaign_id)
        .bind(candidate_id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound)?;
        candidate_from_row(&row)
    }
}
