//! Scores of evaluation campaigns, as pure arithmetic on exact decimals (no floating point:
//! these numbers are published and re-derived by outsiders).
//!
//! * Per target and period: ratings per level, the satisfaction rate
//!   ((满意 + 基本满意) / rated), each rater group's score (mean level points out of 100), and
//!   the weighted score over the groups that rated.
//! * The "万人双评议" annual score of a unit: components worth points (by default daily
//!   evaluation 85 = service objects 25 + duties 15 + 12345 hotline 15 + supervising unit 5 +
//!   supervision and inspection 25, and network evaluation 15), some computed from ratings,
//!   some entered by organizers; then the ranking with its bands and the year before.
//!
//! Rounding: intermediate values are exact (28 significant digits); only what is shown is
//! rounded, half away from zero — rates to 4 places (0.8305), scores and points to 2 (83.05).

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Satisfied,
    BasicallySatisfied,
    Unsatisfied,
}

/// Ratings per level.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LevelCounts {
    pub satisfied: u64,
    pub basically_satisfied: u64,
    pub unsatisfied: u64,
}

/// Points a rating of each level is worth, out of 100.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LevelPoints {
    pub satisfied: u32,
    pub basically_satisfied: u32,
    pub unsatisfied: u32,
}

impl Default for LevelPoints {
    fn default() -> Self {
        Self {
            satisfied: 100,
            basically_satisfied: 60,
            unsatisfied: 0,
        }
    }
}

/// A rate as shown: 4 places, always written out (`0.8000`).
pub fn round_rate(d: Decimal) -> Decimal {
    rounded(d, 4)
}

/// A score or points as shown: 2 places, always written out (`72.00`).
pub fn round_score(d: Decimal) -> Decimal {
    rounded(d, 2)
}

fn rounded(d: Decimal, places: u32) -> Decimal {
    let mut r = d.round_dp_with_strategy(places, RoundingStrategy::MidpointAwayFromZero);
    r.rescale(places);
    r
}

impl LevelCounts {
    pub fn add(&mut self, level: Level, n: u64) {
        match level {
            Level::Satisfied => self.satisfied += n,
            Level::BasicallySatisfied => self.basically_satisfied += n,
            Level::Unsatisfied => self.unsatisfied += n,
        }
    }

    pub fn rated(&self) -> u64 {
        self.satisfied + self.basically_satisfied + self.unsatisfied
    }

    /// (satisfied + basically satisfied) / rated, exact; `None` when nothing was rated.
    pub fn satisfaction_rate(&self) -> Option<Decimal> {
        let rated = self.rated();
        (rated > 0).then(|| {
            Decimal::from(self.satisfied + self.basically_satisfied) / Decimal::from(rated)
        })
    }

    /// The mean of the ratings' points, out of 100, exact; `None` when nothing was rated.
    pub fn score(&self, points: &LevelPoints) -> Option<Decimal> {
        let rated = self.rated();
        (rated > 0).then(|| {
            let sum = Decimal::from(self.satisfied) * Decimal::from(points.satisfied)
                + Decimal::from(self.basically_satisfied)
                    * Decimal::from(points.basically_satisfied)
                + Decimal::from(self.unsatisfied) * Decimal::from(points.unsatisfied);
            sum / Decimal::from(rated)
        })
    }
}

/// The weighted score of a target over its rater groups: `Σ weight × score / Σ weight`,
/// over the groups that rated it (a group with no ratings neither helps nor hurts); `None`
/// when no weighted group rated it. Exact.
pub fn weighted_score<G: Eq + Hash>(
    groups: &HashMap<G, LevelCounts>,
    weights: &[(G, u32)],
    points: &LevelPoints,
) -> Option<Decimal> {
    let mut sum = Decimal::ZERO;
    let mut total_weight = Decimal::ZERO;
    for (group, weight) in weights {
        if *weight == 0 {
            continue;
        }
        if let Some(score) = groups.get(group).and_then(|c| c.score(points)) {
            sum += Decimal::from(*weight) * score;
            total_weight += Decimal::from(*weight);
        }
    }
    (total_weight > Decimal::ZERO).then(|| sum / total_weight)
}

/// The components of the annual score and the points each is worth; they add up to 100.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AnnualWeights {
    /// 服务对象满意度: from the ratings of service objects (SMS surveys).
    pub service_objects: u32,
    /// 履职绩效: entered by organizers (scored by the lead departments).
    pub duties: u32,
    /// 12345热线: entered.
    pub hotline: u32,
    /// 主管单位评价: entered.
    pub supervising_unit: u32,
    /// 监督检查: entered.
    pub inspection: u32,
    /// 网络评议: from the ratings of the public online.
    pub network: u32,
}

impl Default for AnnualWeights {
    fn default() -> Self {
        Self {
            service_objects: 25,
            duties: 15,
            hotline: 15,
            supervising_unit: 5,
            inspection: 25,
            network: 15,
        }
    }
}

impl AnnualWeights {
    pub fn total(&self) -> u32 {
        self.service_objects
            + self.duties
            + self.hotline
            + self.supervising_unit
            + self.inspection
            + self.network
    }

    /// The entered components with what each is worth.
    pub fn entered(&self) -> [(Component, u32); 4] {
        [
            (Component::Duties, self.duties),
            (Component::Hotline, self.hotline),
            (Component::SupervisingUnit, self.supervising_unit),
            (Component::Inspection, self.inspection),
        ]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Component {
    ServiceObjects,
    Duties,
    Hotline,
    SupervisingUnit,
    Inspection,
    Network,
}

impl Component {
    pub fn as_str(self) -> &'static str {
        match self {
            Component::ServiceObjects => "service_objects",
            Component::Duties => "duties",
            Component::Hotline => "hotline",
            Component::SupervisingUnit => "supervising_unit",
            Component::Inspection => "inspection",
            Component::Network => "network",
        }
    }

    /// An entered component by name (the computed ones are not entered).
    pub fn parse_entered(s: &str) -> Option<Self> {
        AnnualWeights::default()
            .entered()
            .into_iter()
            .map(|(c, _)| c)
            .find(|c| c.as_str() == s)
    }
}

/// Checks points entered for a component worth `weight`: from 0 to the weight, at most two
/// decimal places.
pub fn check_points(points: Decimal, weight: u32) -> Result<(), &'static str> {
    if points.is_sign_negative() || points > Decimal::from(weight) {
        return Err("分值须在0到该项满分之间");
    }
    if points.normalize().scale() > 2 {
        return Err("分值最多保留两位小数");
    }
    Ok(())
}

/// What a unit has for a year: the scores out of 100 its ratings give (service objects,
/// network) and the points organizers entered for the other components.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnitYear {
    pub service_objects_score: Option<Decimal>,
    pub network_score: Option<Decimal>,
    pub entered: BTreeMap<Component, Decimal>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AnnualScore {
    /// Points per component, rounded to 2 places; a missing component is absent.
    pub components: BTreeMap<Component, Decimal>,
    /// The components' points added up (from the unrounded points), rounded to 2 places.
    pub total: Decimal,
    /// Whether every weighted component has a value (a missing one counts 0).
    pub complete: bool,
}

/// A unit's annual score: a computed component is worth its score out of 100 times its
/// weight / 100; an entered one is taken as entered (checked to lie within 0..=weight when
/// it was entered).
pub fn annual_score(unit: &UnitYear, w: &AnnualWeights) -> AnnualScore {
    let hundred = Decimal::from(100);
    let mut exact: BTreeMap<Component, Decimal> = BTreeMap::new();
    let mut complete = true;
    for (component, weight, score) in [
        (
            Component::ServiceObjects,
            w.service_objects,
            unit.service_objects_score,
        ),
        (Component::Network, w.network, unit.network_score),
    ] {
        match score {
            Some(s) => {
                exact.insert(component, s * Decimal::from(weight) / hundred);
            }
            None => complete &= weight == 0,
        }
    }
    for (component, weight) in w.entered() {
        match unit.entered.get(&component) {
            Some(points) => {
                exact.insert(component, *points);
            }
            None => complete &= weight == 0,
        }
    }
    let total = exact.values().copied().sum::<Decimal>();
    AnnualScore {
        components: exact
            .into_iter()
            .map(|(c, p)| (c, round_score(p)))
            .collect(),
        total: round_score(total),
        complete,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Band {
    /// 前三: the highest bonus grade.
    Top3,
    /// 满意度前十: praised.
    Top10,
    /// 后十: targeted for rectification.
    Bottom10,
    /// 后三: publicly commit to rectify.
    Bottom3,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ranked<K> {
    pub key: K,
    pub total: Decimal,
    /// 1 for the best; equal totals share a rank (1, 2, 2, 4).
    pub rank: usize,
    pub bands: Vec<Band>,
    /// Last year's total and rank, when the unit was ranked then.
    pub previous: Option<(Decimal, usize)>,
    /// In the bottom 3 this year and last year: its head is held accountable.
    pub bottom3_twice: bool,
}

/// Ranks one year's totals, best first (ties by key, for a stable order), with the bands
/// and last year's place. Bands go by rank: the top 3 and top 10 by rank from the top; the
/// bottom 10 and bottom 3 by rank from the bottom (equal totals share it), among units not
/// already in a top band (a small system's units are not praised and criticized at once).
pub fn rank<K: Ord + Clone + Hash + Eq>(
    this_year: &[(K, Decimal)],
    last_year: &[(K, Decimal)],
) -> Vec<Ranked<K>> {
    let last: HashMap<K, Ranked<K>> = if last_year.is_empty() {
        HashMap::new()
    } else {
        rank(last_year, &[])
            .into_iter()
            .map(|r| (r.key.clone(), r))
            .collect()
    };
    let mut sorted: Vec<&(K, Decimal)> = this_year.iter().collect();
    sorted.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    sorted
        .iter()
        .map(|(key, total)| {
            let rank = 1 + this_year.iter().filter(|(_, t)| t > total).count();
            let from_bottom = 1 + this_year.iter().filter(|(_, t)| t < total).count();
            let mut bands = Vec::new();
            if rank <= 3 {
                bands.push(Band::Top3);
            }
            if rank <= 10 {
                bands.push(Band::Top10);
            }
            if bands.is_empty() {
                if from_bottom <= 10 {
                    bands.push(Band::Bottom10);
                }
                if from_bottom <= 3 {
                    bands.push(Band::Bottom3);
                }
            }
            let before = last.get(key);
            Ranked {
                key: key.clone(),
                total: *total,
                rank,
                bottom3_twice: bands.contains(&Band::Bottom3)
                    && before.is_some_and(|b| b.bands.contains(&Band::Bottom3)),
                previous: before.map(|b| (b.total, b.rank)),
                bands,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn counts(s: u64, b: u64, u: u64) -> LevelCounts {
        LevelCounts {
            satisfied: s,
            basically_satisfied: b,
            unsatisfied: u,
        }
    }

    #[test]
    fn the_satisfaction_rate_and_score_of_a_target() {
        // The seed's county after half a year: 83.05% satisfied. 1,661 of 2,000 say 满意 or
        // 基本满意: 1661 / 2000 = 0.8305.
        let c = counts(1200, 461, 339);
        assert_eq!(round_rate(c.satisfaction_rate().unwrap()), d("0.8305"));
        assert_eq!(round_rate(d("0.8")).to_string(), "0.8000");
        // (1200 × 100 + 461 × 60 + 339 × 0) / 2000 = 147660 / 2000 = 73.83.
        assert_eq!(c.score(&LevelPoints::default()), Some(d("73.83")));
        // 2 of 3: 0.666… rounds half away from zero to 0.6667; the score 66.666… to 66.67.
        let thirds = counts(2, 0, 1);
        assert_eq!(round_rate(thirds.satisfaction_rate().unwrap()), d("0.6667"));
        assert_eq!(
            round_score(thirds.score(&LevelPoints::default()).unwrap()),
            d("66.67")
        );
        assert_eq!(LevelCounts::default().satisfaction_rate(), None);
        assert_eq!(LevelCounts::default().score(&LevelPoints::default()), None);
    }

    #[test]
    fn the_weighted_score_counts_only_groups_that_rated() {
        let points = LevelPoints::default();
        let groups = HashMap::from([
            ("public", counts(8, 2, 0)),     // (800 + 120) / 10 = 92
            ("sms", counts(3, 0, 1)),        // 300 / 4 = 75
            ("supervisor", counts(0, 1, 1)), // 60 / 2 = 30
        ]);
        let weights = [
            ("public", 50),
            ("sms", 30),
            ("leader", 10),
            ("supervisor", 10),
        ];
        // (50 × 92 + 30 × 75 + 10 × 30) / (50 + 30 + 10) = (4600 + 2250 + 300) / 90
        // = 7150 / 90 = 79.444…; the leaders did not rate and weigh nothing.
        let w = weighted_score(&groups, &weights, &points).unwrap();
        assert_eq!(round_score(w), d("79.44"));
        assert_eq!(
            weighted_score(&HashMap::<&str, _>::new(), &weights, &points),
            None
        );
    }

    #[test]
    fn the_annual_score_adds_computed_and_entered_points() {
        let w = AnnualWeights::default();
        assert_eq!(w.total(), 100);
        let unit = UnitYear {
            // 83.05 of 100 from SMS surveys: 83.05 × 25 / 100 = 20.7625.
            service_objects_score: Some(d("83.05")),
            // 90 online: 90 × 15 / 100 = 13.5.
            network_score: Some(d("90")),
            entered: BTreeMap::from([
                (Component::Duties, d("14.5")),
                (Component::Hotline, d("13")),
                (Component::SupervisingUnit, d("5")),
                (Component::Inspection, d("22.25")),
            ]),
        };
        let s = annual_score(&unit, &w);
        // 20.7625 + 13.5 + 14.5 + 13 + 5 + 22.25 = 89.0125 → 89.01.
        assert_eq!(s.total, d("89.01"));
        assert_eq!(s.components[&Component::ServiceObjects], d("20.76"));
        assert!(s.complete);
        let partial = annual_score(
            &UnitYear {
                network_score: Some(d("80")),
                ..UnitYear::default()
            },
            &w,
        );
        assert_eq!((partial.total, partial.complete), (d("12"), false));
    }

    #[test]
    fn entered_points_lie_within_the_component() {
        assert!(check_points(d("14.5"), 15).is_ok());
        assert!(check_points(d("15"), 15).is_ok());
        assert!(check_points(d("0"), 15).is_ok());
        assert!(check_points(d("15.01"), 15).is_err());
        assert!(check_points(d("-1"), 15).is_err());
        assert!(check_points(d("3.125"), 5).is_err());
        assert!(check_points(d("3.100"), 5).is_ok());
        assert_eq!(
            Component::parse_entered("hotline"),
            Some(Component::Hotline)
        );
        assert_eq!(Component::parse_entered("network"), None);
    }

    #[test]
    fn rankings_share_ranks_on_ties_and_band_by_place() {
        // Fourteen units: u01 best … u14 worst, u02 and u03 tied.
        let totals: Vec<(String, Decimal)> = (1..=14)
            .map(|i| (format!("u{i:02}"), Decimal::from(100 - i)))
            .map(|(k, t)| {
                if k == "u03" {
                    (k, Decimal::from(98))
                } else {
                    (k, t)
                }
            })
            .collect();
        let r = rank(&totals, &[]);
        let ranks: Vec<(String, usize)> = r.iter().map(|x| (x.key.clone(), x.rank)).collect();
        assert_eq!(
            &ranks[..4],
            &[
                ("u01".into(), 1),
                ("u02".into(), 2),
                ("u03".into(), 2),
                ("u04".into(), 4)
            ]
        );
        let band = |k: &str| r.iter().find(|x| x.key == k).unwrap().bands.clone();
        assert_eq!(band("u03"), [Band::Top3, Band::Top10]);
        assert_eq!(band("u10"), [Band::Top10]);
        // u11 to u14 are the bottom four: not in a top band, so in the bottom 10; the last
        // three in the bottom 3.
        assert_eq!(band("u11"), [Band::Bottom10]);
        assert_eq!(band("u12"), [Band::Bottom10, Band::Bottom3]);
        assert_eq!(band("u14"), [Band::Bottom10, Band::Bottom3]);
    }

    #[test]
    fn a_unit_in_the_bottom_three_two_years_running_is_flagged() {
        let year = |scores: &[(&str, i64)]| -> Vec<(String, Decimal)> {
            scores
                .iter()
                .map(|(k, v)| (k.to_string(), Decimal::from(*v)))
                .collect()
        };
        let mut last = vec![];
        let mut this = vec![];
        for i in 1..=20 {
            last.push((format!("u{i:02}"), 100 - i));
            this.push((format!("u{i:02}"), 100 - i));
        }
        // u20 stays last; u18 climbs out of the bottom 3; u05 falls into it.
        this[4].1 = 50;
        this[17].1 = 95;
        let last: Vec<(&str, i64)> = last.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        let this: Vec<(&str, i64)> = this.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        let r = rank(&year(&this), &year(&last));
        let get = |k: &str| r.iter().find(|x| x.key == k).unwrap();
        assert!(get("u20").bottom3_twice);
        assert!(!get("u05").bottom3_twice);
        assert!(get("u05").bands.contains(&Band::Bottom3));
        assert!(!get("u18").bottom3_twice);
        assert_eq!(get("u18").previous, Some((Decimal::from(82), 18)));
        assert_eq!(get("u18").rank, 5);
        assert!(get("u19").bottom3_twice);
    }
}
