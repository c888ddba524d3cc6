//! SMS callback surveys (短信回访): importing the service records of units (whom to ask about
//! which visit), and clearing their phone numbers after the retention period. Sending the
//! survey links and answering them are the next steps (see `docs/evaluations.md`).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};

use super::Services;
use super::rating::{self, Rate, RateError, Rated};
use crate::domain::phone;
use crate::domain::rating::{Level, RaterGroup};
use crate::domain::record::Actor;
use crate::store::SurveyView;
use crate::store::{NewSurveyRecord, StoreError};

/// One record as the organizer sent it.
pub struct RecordIn<'a> {
    pub phone: &'a str,
    pub target_id: &'a str,
    pub visited_on: &'a str,
}

/// What the import did: how many records it queued, and each refused one (its index in the
/// request, and why, in Chinese). Refusals never name the number.
#[derive(Debug, Default)]
pub struct Imported {
    pub imported: usize,
    pub rejected: Vec<(usize, String)>,
}

/// Checks one record against the campaign's targets and today's date.
fn check(
    r: &RecordIn<'_>,
    targets: &HashSet<i64>,
    today: NaiveDate,
) -> Result<(String, i64, NaiveDate), String> {
    let number = phone::normalize(r.phone).map_err(str::to_string)?;
    let target = r
        .target_id
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|t| targets.contains(t))
        .ok_or("评议对象不存在")?;
    let visited = NaiveDate::parse_from_str(r.visited_on.trim(), "%Y-%m-%d")
        .map_err(|_| "就诊日期格式不正确（YYYY-MM-DD）")?;
    if visited > today {
        return Err("就诊日期不能晚于今天".into());
    }
    if (today - visited).num_days() > 366 {
        return Err("就诊日期距今超过一年".into());
    }
    Ok((number, target, visited))
}

pub async fn import(
    services: &Services,
    actor: &Actor,
    campaign_id: i64,
    records: &[RecordIn<'_>],
    now: DateTime<Utc>,
) -> Result<Imported, StoreError> {
    let campaign = services.store.get_campaign(campaign_id).await?;
    let today = now
        .with_timezone(&crate::domain::ballot::zone(&campaign.timezone))
        .date_naive();
    let targets: HashSet<i64> = services
        .store
        .list_targets(campaign_id)
        .await?
        .iter()
        .map(|t| t.id)
        .collect();
    let mut out = Imported::default();
    let mut rows = Vec::new();
    let mut indexes = Vec::new();
    // The first index of each (person, target, day) in this request.
    let mut seen: HashMap<(String, i64, NaiveDate), usize> = HashMap::new();
    let aad = format!("campaign {campaign_id}");
    for (i, r) in records.iter().enumerate() {
        match check(r, &targets, today) {
            Err(reason) => out.rejected.push((i, reason)),
            Ok((number, target, visited)) => {
                let hash = services.vault.hash(&number);
                if let Some(first) = seen.get(&(hash.clone(), target, visited)) {
                    out.rejected.push((
                        i,
                        format!("与第{}条重复（同一号码、对象和就诊日期）", first + 1),
                    ));
                    continue;
                }
                seen.insert((hash.clone(), target, visited), i);
                rows.push(NewSurveyRecord {
                    target_id: target,
                    visited_on: visited,
                    phone_enc: services.vault.seal(&number, &aad),
                    phone_hash: hash,
                });
                indexes.push(i);
            }
        }
    }
    let done = services
        .store
        .import_survey_records(actor, campaign_id, &rows, now)
        .await?;
    for (i, imported) in indexes.into_iter().zip(done) {
        if imported {
            out.imported += 1;
        } else {
            out.rejected
                .push((i, "已导入过（同一号码、对象和就诊日期）".into()));
        }
    }
    out.rejected.sort_by_key(|(i, _)| *i);
    tracing::info!(
        campaign_id,
        imported = out.imported,
        rejected = out.rejected.len(),
        "service records imported"
    );
    Ok(out)
}

/// Clears phone numbers past the retention period, now and every hour.
pub async fn purge_phones_forever(services: Services) {
    let retention = chrono::Duration::from_std(services.settings.survey_retention)
        .unwrap_or(chrono::TimeDelta::MAX);
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        tick.tick().await;
        match services.store.purge_phones(Utc::now() - retention).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(records = n, "phone numbers past retention cleared"),
            Err(e) => tracing::warn!(error = %e, "phone numbers past retention not cleared yet"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SurveyError {
    #[error("no such survey")]
    NotFound,
    #[error("the survey link expired")]
    Expired,
    #[error(transparent)]
    Rate(#[from] RateError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The survey a token opens, unless it is unknown or expired.
pub async fn open(
    services: &Services,
    token: &str,
    now: DateTime<Utc>,
) -> Result<SurveyView, SurveyError> {
    // Tokens are 32 hex digits; anything else is unknown without a database read.
    if token.len() != 32 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(SurveyError::NotFound);
    }
    let survey = services
        .store
        .survey_by_token(&super::sms::token_hash(token))
        .await?
        .ok_or(SurveyError::NotFound)?;
    if survey.expires_at.is_none_or(|e| e <= now) {
        return Err(SurveyError::Expired);
    }
    Ok(survey)
}

/// Answers a survey: a rating of the visited target in the `service_object` group, once.
pub async fn answer(
    services: &Services,
    token: &str,
    level: Level,
    comment: String,
    now: DateTime<Utc>,
) -> Result<Rated, SurveyError> {
    let survey = open(services, token, now).await?;
    if survey.answered {
        return Err(RateError::SurveyAnswered.into());
    }
    let voter = format!("sms:{}", survey.record_id);
    Ok(rating::rate(
        services,
        Rate {
            voter: &voter,
            group: RaterGroup::ServiceObject,
            campaign_id: survey.campaign_id,
            target_id: survey.target_id,
            level,
            comment,
            idempotency_key: None,
            survey_record_id: Some(survey.record_id),
            now,
        },
    )
    .await?)
}
