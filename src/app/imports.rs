//! Bulk imports of candidates and evaluation targets from CSV files: parse and check the
//! whole file first (every bad row reported), then write every row in one transaction, so
//! nothing is ever half-imported. Each imported object's audit entry names the file by its
//! SHA-256 and the row it came from.

use serde_json::json;
use sha2::{Digest, Sha256};

use crate::domain::import::{self, ImportError};
use crate::domain::record::Actor;
use crate::store::{
    Candidate, CandidateStatus, NewCandidate, NewTarget, Store, StoreError, Target, TargetParent,
};

#[derive(Debug, thiserror::Error)]
pub enum ImportFailed {
    #[error(transparent)]
    File(#[from] ImportError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn file_digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

pub async fn candidates(
    store: &dyn Store,
    actor: &Actor,
    campaign_id: i64,
    bytes: &[u8],
) -> Result<Vec<Candidate>, ImportFailed> {
    let categories = store.list_categories(campaign_id).await?;
    let names: Vec<String> = categories.iter().map(|c| c.name.clone()).collect();
    let rows = import::parse_candidates(bytes, &names)?;
    let list: Vec<NewCandidate> = rows
        .iter()
        .map(|r| NewCandidate {
            category_id: categories
                .iter()
                .find(|c| c.name == r.category)
                .map(|c| c.id)
                .unwrap_or_default(),
            name: r.name.clone(),
            unit: r.unit.clone(),
            department: r.department.clone(),
            title: r.title.clone(),
            photo_url: r.photo_url.clone(),
            story: r.story.clone(),
        })
        .collect();
    let digest = file_digest(bytes);
    let import = json!({"file_sha256": digest, "rows": rows.len()});
    let added = store
        .add_candidates(
            actor,
            campaign_id,
            &list,
            CandidateStatus::Nominated,
            Some(&import),
        )
        .await?;
    tracing::info!(campaign_id, rows = added.len(), file_sha256 = %digest, "candidates imported");
    Ok(added)
}

pub async fn targets(
    store: &dyn Store,
    actor: &Actor,
    campaign_id: i64,
    bytes: &[u8],
) -> Result<Vec<Target>, ImportFailed> {
    let existing: Vec<String> = store
        .list_targets(campaign_id)
        .await?
        .into_iter()
        .map(|t| t.code)
        .collect();
    let rows = import::parse_targets(bytes, &existing)?;
    let list: Vec<NewTarget> = rows
        .iter()
        .map(|r| NewTarget {
            code: r.code.clone(),
            name: r.name.clone(),
            parent: r
                .parent_code
                .clone()
                .map(TargetParent::Code)
                .unwrap_or(TargetParent::Root),
        })
        .collect();
    let digest = file_digest(bytes);
    let import = json!({"file_sha256": digest, "rows": rows.len()});
    let added = store
        .add_targets(actor, campaign_id, &list, Some(&import))
        .await?;
    tracing::info!(campaign_id, rows = added.len(), file_sha256 = %digest, "targets imported");
    Ok(added)
}
