//! Ballots: what makes one valid, and the calendar day its quotas count in.

use chrono::{DateTime, Days, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

use super::campaign::Rules;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BallotError {
    #[error("a ballot names at least one candidate")]
    Empty,
    #[error("candidate {0} appears twice")]
    Repeated(i64),
    #[error("more than {0} candidates")]
    TooMany(u32),
    #[error("not a candidate id: {0}")]
    BadId(String),
}

impl BallotError {
    pub fn message(&self) -> String {
        match self {
            BallotError::Empty => "请至少选择一位候选人".into(),
            BallotError::Repeated(_) => "同一位候选人不能在一次投票中重复选择".into(),
            BallotError::TooMany(n) => format!("每次最多可选择{n}位候选人"),
            BallotError::BadId(_) => "候选人编号无效".into(),
        }
    }
}

/// Parses and checks the candidate ids of a ballot, keeping their order.
pub fn parse_candidates(ids: &[String], rules: &Rules) -> Result<Vec<i64>, BallotError> {
    if ids.is_empty() {
        return Err(BallotError::Empty);
    }
    if ids.len() > rules.max_candidates_per_ballot as usize {
        return Err(BallotError::TooMany(rules.max_candidates_per_ballot));
    }
    let mut out: Vec<i64> = Vec::with_capacity(ids.len());
    for raw in ids {
        let id = raw
            .parse::<i64>()
            .ok()
            .filter(|i| *i > 0)
            .ok_or_else(|| BallotError::BadId(raw.clone()))?;
        if out.contains(&id) {
            return Err(BallotError::Repeated(id));
        }
        out.push(id);
    }
    Ok(out)
}

/// The campaign's time zone, `Asia/Shanghai` when the stored name does not parse.
pub fn zone(name: &str) -> Tz {
    name.parse().unwrap_or(chrono_tz::Asia::Shanghai)
}

/// The calendar day, in the campaign's time zone, that `now` falls on.
pub fn quota_day(now: DateTime<Utc>, tz: Tz) -> NaiveDate {
    now.with_timezone(&tz).date_naive()
}

/// When the quotas of `now`'s day reset: the next local midnight, as UTC.
pub fn resets_at(now: DateTime<Utc>, tz: Tz) -> DateTime<Utc> {
    let next = quota_day(now, tz)
        .checked_add_days(Days::new(1))
        .unwrap_or(NaiveDate::MAX);
    let midnight = next.and_hms_opt(0, 0, 0).unwrap_or_default();
    tz.from_local_datetime(&midnight)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn ballots_are_checked() {
        let rules = Rules {
            max_candidates_per_ballot: 3,
            ..Rules::default()
        };
        assert_eq!(parse_candidates(&ids(&["3", "1"]), &rules), Ok(vec![3, 1]));
        assert_eq!(parse_candidates(&[], &rules), Err(BallotError::Empty));
        assert_eq!(
            parse_candidates(&ids(&["1", "1"]), &rules),
            Err(BallotError::Repeated(1))
        );
        assert_eq!(
            parse_candidates(&ids(&["1", "2", "3", "4"]), &rules),
            Err(BallotError::TooMany(3))
        );
        assert!(matches!(
            parse_candidates(&ids(&["x"]), &rules),
            Err(BallotError::BadId(_))
        ));
    }

    #[test]
    fn the_day_turns_at_local_midnight() {
        let tz = zone("Asia/Shanghai");
        // 15:59:59 UTC is 23:59:59 in Shanghai; a second later it is the next day.
        let before = DateTime::parse_from_rfc3339("2026-11-25T15:59:59Z")
            .unwrap()
            .with_timezone(&Utc);
        let after = DateTime::parse_from_rfc3339("2026-11-25T16:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(quota_day(before, tz).to_string(), "2026-11-25");
        assert_eq!(quota_day(after, tz).to_string(), "2026-11-26");
        assert_eq!(resets_at(before, tz), after);
        assert_eq!(
            resets_at(after, tz).to_rfc3339(),
            "2026-11-26T16:00:00+00:00"
        );
    }
}
