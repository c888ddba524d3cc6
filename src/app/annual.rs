//! The "万人双评议" annual table of an evaluation: per unit (a target at the top of its
//! tree), the components' points, the total, the rank with its bands, and the year before
//! (from another campaign, units matched by code). Ratings of a department count for its
//! unit. The arithmetic is `domain::score`'s.

use std::collections::{BTreeMap, HashMap};

use rust_decimal::Decimal;

use super::Services;
use crate::domain::rating::{Level, RaterGroup};
use crate::domain::score::{self, AnnualScore, LevelCounts, Ranked, UnitYear};
use crate::store::{StoreError, Target};

/// One unit's line of the table.
pub struct AnnualRow {
    pub unit: Target,
    pub score: AnnualScore,
    pub ranked: Ranked<String>,
}

/// Each unit's annual score in one campaign and year, units in code order.
pub async fn scores(
    services: &Services,
    campaign_id: i64,
    year: &str,
) -> Result<Vec<(Target, AnnualScore)>, StoreError> {
    let campaign = services.store.get_campaign(campaign_id).await?;
    let rules = &campaign.rules.evaluation;
    let targets = services.store.list_targets(campaign_id).await?;
    let unit_of = units_of(&targets);
    let mut per_unit: HashMap<i64, HashMap<RaterGroup, LevelCounts>> = HashMap::new();
    for c in services
        .store
        .rating_counts(campaign_id, Some(&format!("{year}%")))
        .await?
    {
        let (Some(group), Some(level), Some(unit)) = (
            RaterGroup::parse(&c.group),
            Level::parse(&c.level),
            unit_of.get(&c.target_id),
        ) else {
            return Err(StoreError::Corrupt(format!(
                "rating of target {} ({} / {})",
                c.target_id, c.group, c.level
            )));
        };
        per_unit
            .entry(*unit)
            .or_default()
            .entry(group)
            .or_default()
            .add(level, c.n);
    }
    let mut entered: HashMap<i64, BTreeMap<score::Component, Decimal>> = HashMap::new();
    for (target, component, points) in services.store.annual_components(campaign_id, year).await? {
        entered.entry(target).or_default().insert(component, points);
    }
    let mut units: Vec<Target> = targets
        .into_iter()
        .filter(|t| t.parent_id.is_none())
        .collect();
    units.sort_by(|a, b| a.code.cmp(&b.code));
    Ok(units
        .into_iter()
        .map(|u| {
            let groups = per_unit.get(&u.id);
            let group_score = |g: RaterGroup| {
                groups
                    .and_then(|m| m.get(&g))
                    .and_then(|c| c.score(&rules.level_points))
            };
            let year = UnitYear {
                service_objects_score: group_score(RaterGroup::ServiceObject),
                network_score: group_score(RaterGroup::Public),
                entered: entered.remove(&u.id).unwrap_or_default(),
            };
            let s = score::annual_score(&year, &rules.annual);
            (u, s)
        })
        .collect())
}

/// The table of a year, ranked, with the units' places in `previous` (campaign, year).
pub async fn table(
    services: &Services,
    campaign_id: i64,
    year: &str,
    previous: Option<(i64, &str)>,
) -> Result<Vec<AnnualRow>, StoreError> {
    let this = scores(services, campaign_id, year).await?;
    let last = match previous {
        Some((id, y)) => scores(services, id, y).await?,
        None => Vec::new(),
    };
    let totals = |rows: &[(Target, AnnualScore)]| -> Vec<(String, Decimal)> {
        rows.iter()
            .map(|(t, s)| (t.code.clone(), s.total))
            .collect()
    };
    let ranked = score::rank(&totals(&this), &totals(&last));
    let mut by_code: HashMap<String, (Target, AnnualScore)> = this
        .into_iter()
        .map(|(t, s)| (t.code.clone(), (t, s)))
        .collect();
    Ok(ranked
        .into_iter()
        .filter_map(|r| {
            let (unit, score) = by_code.remove(&r.key)?;
            Some(AnnualRow {
                unit,
                score,
                ranked: r,
            })
        })
        .collect())
}

/// Each target's unit: the top of its tree.
fn units_of(targets: &[Target]) -> HashMap<i64, i64> {
    let parent: HashMap<i64, Option<i64>> = targets.iter().map(|t| (t.id, t.parent_id)).collect();
    targets
        .iter()
        .map(|t| {
            let mut id = t.id;
            // Trees are a few levels deep; the bound guards against a cycle.
            for _ in 0..32 {
                match parent.get(&id).copied().flatten() {
                    Some(p) => id = p,
                    None => break,
                }
            }
            (t.id, id)
        })
        .collect()
}
