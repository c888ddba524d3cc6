//! What the audit chain records of a campaign: who did what, and the state each change left.
//!
//! Each entry's body carries the full new state of the object it changed (not a diff), so a
//! verifier can replay the chain into the campaign's current state and compare it, field by
//! field, with the database — and name the entry that recorded any state that was altered
//! behind the chain's back.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::campaign::{Kind, PhaseWindow, Rules};
use super::staff::Role;

/// Ids travel as strings in JSON (the contract) and are integers inside.
pub mod id_str {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(id: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(id)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }

    pub mod option {
        use serde::{Deserialize, Deserializer, Serializer};

        pub fn serialize<S: Serializer>(id: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
            match id {
                Some(id) => s.collect_str(id),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
            Option::<String>::deserialize(d)?
                .map(|s| s.parse().map_err(serde::de::Error::custom))
                .transpose()
        }
    }
}

/// Who made a change: a staff account, or the system itself (the demo seed, say).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    Staff {
        id: i64,
        username: String,
        role: Role,
    },
    System(&'static str),
}

impl Actor {
    fn to_json(&self) -> Value {
        match self {
            Actor::Staff { id, username, role } => {
                json!({"staff_id": id.to_string(), "username": username, "role": role.as_str()})
            }
            Actor::System(name) => json!({"system": name}),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignState {
    #[serde(with = "id_str")]
    pub id: i64,
    pub kind: Kind,
    pub title: String,
    pub description: String,
    pub timezone: String,
    pub phases: Vec<PhaseWindow>,
    pub rules: Rules,
    pub draft: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategoryState {
    #[serde(with = "id_str")]
    pub id: i64,
    pub name: String,
    pub winners: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CandidateState {
    #[serde(with = "id_str")]
    pub id: i64,
    #[serde(with = "id_str")]
    pub category_id: i64,
    pub number: i64,
    pub name: String,
    pub unit: String,
    pub department: String,
    pub title: String,
    pub photo_url: String,
    pub story: String,
    pub status: String,
    /// Why it was rejected or withdrawn; empty otherwise.
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetState {
    #[serde(with = "id_str")]
    pub id: i64,
    pub code: String,
    pub name: String,
    #[serde(with = "id_str::option")]
    pub parent_id: Option<i64>,
}

/// A blocklist row: a voter id or a CIDR range that may (not) vote in the campaign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockState {
    /// `voter` or `network`.
    pub subject: String,
    pub value: String,
    pub blocked: bool,
    pub reason: String,
}

impl BlockState {
    /// The row's key in a snapshot.
    pub fn key(&self) -> String {
        format!("{}:{}", self.subject, self.value)
    }
}

/// The kinds of entry staff changes make. Later issues add ballots and ratings.
pub mod kinds {
    pub const CAMPAIGN_CREATED: &str = "campaign.created";
    pub const CAMPAIGN_UPDATED: &str = "campaign.updated";
    pub const CAMPAIGN_OPENED: &str = "campaign.opened";
    pub const CATEGORY_CREATED: &str = "category.created";
    pub const CATEGORY_UPDATED: &str = "category.updated";
    pub const CANDIDATE_NOMINATED: &str = "candidate.nominated";
    pub const CANDIDATE_STATUS: &str = "candidate.status_changed";
    pub const TARGET_CREATED: &str = "target.created";
    pub const BLOCK_CHANGED: &str = "block.changed";
    pub const REVIEW_DECIDED: &str = "review.decided";
    pub const OPINION_ANSWERED: &str = "opinion.answered";
    pub const COMPONENT_ENTERED: &str = "annual.component_entered";
    pub const SURVEY_RECORDS_IMPORTED: &str = "survey.records_imported";
    pub const EXPERT_ASSIGNED: &str = "expert.assigned";
    pub const EXPERT_SCORED: &str = "expert.scored";
    pub const RESULTS_DRAFT: &str = "results.draft_frozen";
    pub const RESULTS_PUBLISHED: &str = "results.published";
    pub const OBJECTION_RECEIVED: &str = "objection.received";
    pub const OBJECTION_ANSWERED: &str = "objection.answered";
}

/// The body of one entry: `kind`, `at`, `actor`, `campaign_id`, then the change's own fields
/// (the new state under `campaign`, `category`, `candidate` or `target`, and `changed`,
/// `reason` or `import` where they apply).
pub fn body(
    kind: &str,
    actor: &Actor,
    at: DateTime<Utc>,
    campaign_id: i64,
    fields: Value,
) -> Value {
    let mut map = Map::new();
    map.insert("kind".into(), kind.into());
    map.insert(
        "at".into(),
        at.to_rfc3339_opts(SecondsFormat::Micros, true).into(),
    );
    map.insert("actor".into(), actor.to_json());
    map.insert("campaign_id".into(), campaign_id.to_string().into());
    if let Value::Object(extra) = fields {
        map.extend(extra);
    }
    Value::Object(map)
}

/// A campaign's state as the chain or the database tells it, with (for the chain) the seq of
/// the entry that last recorded each object.
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    pub campaign: Option<(CampaignState, i64)>,
    pub categories: BTreeMap<i64, (CategoryState, i64)>,
    pub candidates: BTreeMap<i64, (CandidateState, i64)>,
    pub targets: BTreeMap<i64, (TargetState, i64)>,
    /// Blocklist rows by `subject:value`.
    pub blocks: BTreeMap<String, (BlockState, i64)>,
}

/// The parts of a body the verifier reads, borrowed from its text: the kind and any state it
/// records. Everything else in the body is skipped without building a tree.
#[derive(Debug, Deserialize)]
pub struct BodyHead<'a> {
    #[serde(borrow)]
    pub kind: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    pub campaign: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow)]
    pub category: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow)]
    pub candidate: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow)]
    pub target: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow)]
    pub block: Option<&'a serde_json::value::RawValue>,
    /// A ballot's status and candidates.
    #[serde(borrow)]
    pub status: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    pub candidate_ids: Option<Vec<std::borrow::Cow<'a, str>>>,
    /// A review decision.
    pub decision: Option<DecisionHead>,
    /// A rating's target, rater group and level.
    #[serde(borrow)]
    pub target_id: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    pub group: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    pub level: Option<std::borrow::Cow<'a, str>>,
    /// An expert's score.
    pub score: Option<ScoreHead>,
    /// Frozen results, their hash and the head they were frozen at.
    #[serde(borrow)]
    pub results: Option<&'a serde_json::value::RawValue>,
    pub snapshot_hash: Option<String>,
    pub audit_head: Option<HeadRef>,
}

/// What a verifier reads of an expert's score.
#[derive(Debug, Deserialize)]
pub struct ScoreHead {
    #[serde(with = "id_str")]
    pub expert_id: i64,
    #[serde(with = "id_str")]
    pub candidate_id: i64,
    pub points: BTreeMap<String, i64>,
    pub total: i64,
}

/// A chain head as a results entry records it.
#[derive(Debug, Deserialize)]
pub struct HeadRef {
    pub seq: i64,
    pub hash: String,
}

/// What a verifier reads of a review decision: what it did, to which ballots.
#[derive(Debug, Deserialize)]
pub struct DecisionHead {
    pub action: super::review::Action,
    pub ballots: Vec<i64>,
}

impl Snapshot {
    /// Applies the state a body records (read with [`BodyHead`]).
    pub fn apply_head(&mut self, seq: i64, head: &BodyHead<'_>) -> Result<(), String> {
        fn read<T: serde::de::DeserializeOwned>(
            raw: &serde_json::value::RawValue,
            key: &str,
        ) -> Result<T, String> {
            serde_json::from_str(raw.get()).map_err(|e| format!("{key}: {e}"))
        }
        if let Some(raw) = head.campaign {
            self.campaign = Some((read(raw, "campaign")?, seq));
        }
        if let Some(raw) = head.category {
            let c: CategoryState = read(raw, "category")?;
            self.categories.insert(c.id, (c, seq));
        }
        if let Some(raw) = head.candidate {
            let c: CandidateState = read(raw, "candidate")?;
            self.candidates.insert(c.id, (c, seq));
        }
        if let Some(raw) = head.target {
            let t: TargetState = read(raw, "target")?;
            self.targets.insert(t.id, (t, seq));
        }
        if let Some(raw) = head.block {
            let b: BlockState = read(raw, "block")?;
            self.blocks.insert(b.key(), (b, seq));
        }
        Ok(())
    }

    /// Applies one entry's body. Kinds that record no campaign state (ballots, later) are
    /// left to their own counters.
    pub fn apply(&mut self, seq: i64, body: &Value) -> Result<(), String> {
        fn take<T: serde::de::DeserializeOwned>(
            body: &Value,
            key: &str,
        ) -> Result<Option<T>, String> {
            body.get(key)
                .map(|v| serde_json::from_value(v.clone()).map_err(|e| format!("{key}: {e}")))
                .transpose()
        }
        if let Some(c) = take::<CampaignState>(body, "campaign")? {
            self.campaign = Some((c, seq));
        }
        if let Some(c) = take::<CategoryState>(body, "category")? {
            self.categories.insert(c.id, (c, seq));
        }
        if let Some(c) = take::<CandidateState>(body, "candidate")? {
            self.candidates.insert(c.id, (c, seq));
        }
        if let Some(t) = take::<TargetState>(body, "target")? {
            self.targets.insert(t.id, (t, seq));
        }
        if let Some(b) = take::<BlockState>(body, "block")? {
            self.blocks.insert(b.key(), (b, seq));
        }
        Ok(())
    }

    /// The first difference between the state the chain recorded (`self`) and the database's
    /// (`db`): the seq of the entry whose recorded state disagrees (0 when the database holds
    /// something the chain never recorded), and what differs.
    pub fn first_difference(&self, db: &Snapshot) -> Option<(i64, String)> {
        let mut diffs: Vec<(i64, String)> = Vec::new();
        match (&self.campaign, &db.campaign) {
            (Some((a, seq)), Some((b, _))) if a != b => {
                diffs.push((*seq, describe("campaign", a.id, a, b)))
            }
            (Some((_, seq)), None) => {
                diffs.push((*seq, "the campaign is missing from the database".into()))
            }
            (None, Some(_)) => diffs.push((0, "the campaign has no entry in the chain".into())),
            _ => {}
        }
        compare_maps("category", &self.categories, &db.categories, &mut diffs);
        compare_maps("candidate", &self.candidates, &db.candidates, &mut diffs);
        compare_maps("target", &self.targets, &db.targets, &mut diffs);
        compare_maps("block", &self.blocks, &db.blocks, &mut diffs);
        diffs.into_iter().min_by_key(|(seq, _)| *seq)
    }
}

fn describe<T: Serialize>(what: &str, id: impl std::fmt::Display, chain: &T, db: &T) -> String {
    let a = serde_json::to_value(chain).unwrap_or_default();
    let b = serde_json::to_value(db).unwrap_or_default();
    let fields: Vec<String> = match (a, b) {
        (Value::Object(a), Value::Object(b)) => a
            .iter()
            .filter(|(k, v)| b.get(*k) != Some(*v))
            .map(|(k, v)| {
                format!(
                    "{k}: chain {v}, database {}",
                    b.get(k).cloned().unwrap_or(Value::Null)
                )
            })
            .collect(),
        _ => vec![],
    };
    format!(
        "{what} {id} differs from the database ({})",
        fields.join("; ")
    )
}

fn compare_maps<K: Ord + std::fmt::Display, T: PartialEq + Serialize>(
    what: &str,
    chain: &BTreeMap<K, (T, i64)>,
    db: &BTreeMap<K, (T, i64)>,
    diffs: &mut Vec<(i64, String)>,
) {
    for (id, (recorded, seq)) in chain {
        match db.get(id) {
            Some((current, _)) if current != recorded => {
                diffs.push((*seq, describe(what, id, recorded, current)))
            }
            None => diffs.push((*seq, format!("{what} {id} is missing from the database"))),
            _ => {}
        }
    }
    for id in db.keys().filter(|id| !chain.contains_key(id)) {
        diffs.push((
            0,
            format!("{what} {id} is in the database but has no entry in the chain"),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(id: i64, name: &str) -> CandidateState {
        CandidateState {
            id,
            category_id: 1,
            number: id,
            name: name.into(),
            unit: "u".into(),
            department: String::new(),
            title: String::new(),
            photo_url: String::new(),
            story: String::new(),
            status: "approved".into(),
            reason: String::new(),
        }
    }

    #[test]
    fn bodies_name_the_actor_and_carry_the_state() {
        let actor = Actor::Staff {
            id: 3,
            username: "li".into(),
            role: Role::Organizer,
        };
        let at = DateTime::parse_from_rfc3339("2026-06-01T08:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let b = body(
            kinds::CANDIDATE_NOMINATED,
            &actor,
            at,
            9,
            json!({"candidate": candidate(4, "张三")}),
        );
        assert_eq!(b["kind"], "candidate.nominated");
        assert_eq!(b["at"], "2026-06-01T08:00:00.000000Z");
        assert_eq!(
            b["actor"],
            json!({"staff_id": "3", "username": "li", "role": "organizer"})
        );
        assert_eq!(b["campaign_id"], "9");
        assert_eq!(b["candidate"]["id"], "4");
        assert_eq!(b["candidate"]["category_id"], "1");
    }

    #[test]
    fn replay_finds_the_entry_whose_state_was_altered() {
        let mut chain = Snapshot::default();
        chain
            .apply(2, &json!({"candidate": candidate(1, "张三")}))
            .unwrap();
        chain
            .apply(3, &json!({"candidate": candidate(2, "李四")}))
            .unwrap();
        chain
            .apply(5, &json!({"candidate": candidate(1, "张三丰")}))
            .unwrap();
        let mut db = Snapshot::default();
        db.candidates.insert(1, (candidate(1, "张三丰"), 0));
        db.candidates.insert(2, (candidate(2, "李四"), 0));
        assert_eq!(chain.first_difference(&db), None);

        db.candidates.insert(2, (candidate(2, "王五"), 0));
        let (seq, why) = chain.first_difference(&db).unwrap();
        assert_eq!(seq, 3);
        assert!(why.contains("name"), "{why}");

        db.candidates.insert(7, (candidate(7, "无记录"), 0));
        assert_eq!(chain.first_difference(&db).unwrap().0, 0);
    }
}
