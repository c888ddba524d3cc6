//! The review of suspicious ballots for organizers: clusters grouped by device, address,
//! network or identical ballots within time windows, with their counts per candidate; and
//! decisions (release, invalidate, hold) on a cluster or on listed ballots, each one entry in
//! the campaign's chain, the public counts following at once. See `docs/review.md`.

use std::collections::BTreeMap;

use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::ApiError;
use super::extract::Staff;
use super::{Page, id_as_string, parse_id};
use crate::app::{Services, review};
use crate::domain::review::{Action, Cluster, ClusterBy};
use crate::domain::staff::Role;
use crate::store::{Decision, Selection};

const DECIDERS: &[Role] = &[Role::Admin, Role::Organizer];
const READERS: &[Role] = &[Role::Admin, Role::Organizer, Role::Auditor];

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ClusterQuery {
    /// `network` (default: /24 or /64), `ip`, `device`, or `ballot` (identical ballots).
    pub by: Option<String>,
    /// Width of the time windows, seconds (60 to 86400; default 3600).
    pub window_secs: Option<i64>,
    /// `suspicious` (default: flagged or not counted) or `all`.
    pub scope: Option<String>,
    /// Only ballots cast at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Only ballots cast before this time.
    pub to: Option<DateTime<Utc>>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CandidateVotes {
    #[serde(serialize_with = "id_as_string")]
    #[schema(value_type = String)]
    pub candidate_id: i64,
    pub votes: u64,
}

#[derive(Serialize, ToSchema)]
pub struct ClusterView {
    pub by: &'static str,
    /// The keyed hash the ballots share (never the address or device id itself), or for
    /// `ballot` the candidate ids in order.
    pub key: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub ballots: u64,
    pub voters: u64,
    /// Ballots by status (`counted`, `quarantined`, `invalidated`).
    pub statuses: BTreeMap<String, u64>,
    /// Ballots carrying each risk flag.
    pub flags: BTreeMap<String, u64>,
    /// Votes per candidate in the cluster's ballots, most first.
    pub candidates: Vec<CandidateVotes>,
}

impl From<Cluster> for ClusterView {
    fn from(c: Cluster) -> Self {
        let mut candidates: Vec<CandidateVotes> = c
            .votes
            .into_iter()
            .map(|(candidate_id, votes)| CandidateVotes {
                candidate_id,
                votes,
            })
            .collect();
        candidates.sort_by(|a, b| {
            b.votes
                .cmp(&a.votes)
                .then(a.candidate_id.cmp(&b.candidate_id))
        });
        Self {
            by: c.by.as_str(),
            key: c.key,
            from: c.from,
            to: c.to,
            ballots: c.ballots,
            voters: c.voters,
            statuses: c.statuses,
            flags: c.flags,
            candidates,
        }
    }
}

fn parse_by(raw: Option<&str>, field: &str) -> Result<ClusterBy, ApiError> {
    match raw.unwrap_or("network") {
        "network" => Ok(ClusterBy::Network),
        "ip" => Ok(ClusterBy::Ip),
        "device" => Ok(ClusterBy::Device),
        "ballot" => Ok(ClusterBy::Ballot),
        _ => Err(ApiError::invalid(
            field,
            "分组方式须为 network、ip、device 或 ballot",
        )),
    }
}

fn campaign_id(raw: &str) -> Result<i64, ApiError> {
    parse_id(raw).ok_or(ApiError::NotFound)
}

/// Suspicious ballots of the campaign grouped into clusters, largest first.
#[utoipa::path(tag = "staff", params(("campaign_id" = String, Path), ClusterQuery), responses(
    (status = 200, body = Page<ClusterView>),
    (status = 422, description = "`invalid_request` with the field"),
), security(("staff" = [])))]
#[get("/admin/campaigns/{campaign_id}/review/clusters")]
pub async fn clusters(
    services: web::Data<Services>,
    staff: Staff,
    path: web::Path<String>,
    query: web::Query<ClusterQuery>,
) -> Result<HttpResponse, ApiError> {
    staff.require(READERS)?;
    let id = campaign_id(&path)?;
    services.store.get_campaign(id).await?;
    let by = parse_by(query.by.as_deref(), "by")?;
    let window = query.window_secs.unwrap_or(3600);
    if !(60..=86_400).contains(&window) {
        return Err(ApiError::invalid(
            "window_secs",
            "时间窗口须在60到86400秒之间",
        ));
    }
    let suspicious_only = match query.scope.as_deref().unwrap_or("suspicious") {
        "suspicious" => true,
        "all" => false,
        _ => return Err(ApiError::invalid("scope", "范围须为 suspicious 或 all")),
    };
    let limit = query.limit.unwrap_or(50).clamp(1, 500) as usize;
    let skip: usize = match &query.cursor {
        Some(c) => c
            .parse()
            .map_err(|_| ApiError::invalid("cursor", "分页游标无效"))?,
        None => 0,
    };
    let from = query.from.unwrap_or(DateTime::UNIX_EPOCH);
    let to = query
        .to
        .unwrap_or_else(|| services.now() + chrono::Duration::days(1));
    let all = review::clusters(&services, id, by, window, suspicious_only, from, to).await?;
    let next_cursor = (all.len() > skip + limit).then(|| (skip + limit).to_string());
    let items: Vec<ClusterView> = all
        .into_iter()
        .skip(skip)
        .take(limit)
        .map(Into::into)
        .collect();
    Ok(HttpResponse::Ok().json(Page { items, next_cursor }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClusterSelector {
    /// `network`, `ip`, `device` or `ballot`, as in the cluster.
    pub by: String,
    pub key: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionBody {
    /// `release` (quarantined → counted), `invalidate` (counted or quarantined →
    /// invalidated, for good) or `hold` (counted → quarantined).
    pub action: String,
    /// Why: kept in the chain (1 to 500 characters).
    pub reason: String,
    /// The ballots by seq (at most 10,000) …
    pub seqs: Option<Vec<i64>>,
    /// … or a cluster as the cluster list gives it.
    pub cluster: Option<ClusterSelector>,
}

#[derive(Serialize, ToSchema)]
pub struct VoteChange {
    #[serde(serialize_with = "id_as_string")]
    #[schema(value_type = String)]
    pub candidate_id: i64,
    /// How the candidate's public count moved.
    pub change: i64,
}

#[derive(Serialize, ToSchema)]
pub struct DecisionView {
    /// The decision's entry in the chain.
    pub seq: i64,
    pub hash: String,
    pub action: &'static str,
    /// The seqs of the ballots it moved.
    pub ballots: Vec<i64>,
    pub votes: Vec<VoteChange>,
}

fn read_decision(id: i64, body: &DecisionBody, at: DateTime<Utc>) -> Result<Decision, ApiError> {
    let action = match body.action.as_str() {
        "release" => Action::Release,
        "invalidate" => Action::Invalidate,
        "hold" => Action::Hold,
        _ => {
            return Err(ApiError::invalid(
                "action",
                "操作须为 release、invalidate 或 hold",
            ));
        }
    };
    let reason = body.reason.trim();
    if !(1..=500).contains(&reason.chars().count()) {
        return Err(ApiError::invalid("reason", "请填写原因（不超过500字）"));
    }
    let select = match (&body.seqs, &body.cluster) {
        (Some(seqs), None) if (1..=10_000).contains(&seqs.len()) => Selection::Seqs(seqs.clone()),
        (Some(_), None) => {
            return Err(ApiError::invalid("seqs", "请列出1到10000张选票的序号"));
        }
        (None, Some(c)) => {
            if c.to <= c.from {
                return Err(ApiError::invalid("cluster.to", "结束时间须晚于开始时间"));
            }
            Selection::Cluster {
                by: parse_by(Some(&c.by), "cluster.by")?,
                key: c.key.clone(),
                from: c.from,
                to: c.to,
            }
        }
        _ => {
            return Err(ApiError::invalid(
                "seqs",
                "请指定选票序号（seqs）或一个聚类（cluster），二者选一",
            ));
        }
    };
    Ok(Decision {
        campaign_id: id,
        action,
        reason: reason.to_string(),
        select,
        at,
    })
}

/// Releases, invalidates or holds the selected ballots, on the record; the public counts
/// follow at once.
#[utoipa::path(tag = "staff", params(("campaign_id" = String, Path)), request_body = DecisionBody, responses(
    (status = 200, body = DecisionView),
    (status = 409, description = "`nothing_to_decide`: no selected ballot has a status this action can change"),
    (status = 422, description = "`invalid_request` with the field"),
), security(("staff" = [])))]
#[post("/admin/campaigns/{campaign_id}/review/decisions")]
pub async fn decide(
    services: web::Data<Services>,
    staff: Staff,
    path: web::Path<String>,
    body: web::Json<DecisionBody>,
) -> Result<HttpResponse, ApiError> {
    staff.require(DECIDERS)?;
    let id = campaign_id(&path)?;
    let decision = read_decision(id, &body, services.now())?;
    services.store.get_campaign(id).await?;
    let Some(d) = review::decide(&services, &staff.actor(), &decision).await? else {
        return Err(ApiError::Conflict {
            code: "nothing_to_decide",
            message: "所选选票中没有可以执行此操作的选票".into(),
        });
    };
    Ok(HttpResponse::Ok().json(DecisionView {
        seq: d.seq,
        hash: d.hash,
        action: d.action.as_str(),
        ballots: d.ballots,
        votes: d
            .votes
            .into_iter()
            .map(|(candidate_id, change)| VoteChange {
                candidate_id,
                change,
            })
            .collect(),
    }))
}
