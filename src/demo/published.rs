//! A finished demo selection: nominated, voted on (with a held vote farm, part of it
//! invalidated), scored by five experts, publicized with an objection answered, and
//! published, so that a new user can verify published results at once with
//! `tools/verify_results.py`. It all happened in the past: the ballots, scores and objection
//! carry times inside their windows.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use sha2::Digest;

use super::SEED;
use crate::app::Services;
use crate::app::results;
use crate::app::staff_auth::{self, CreateUserError};
use crate::domain::campaign::{FraudPolicy, Kind, Phase, PhaseWindow, Rules, ShowCounts};
use crate::domain::keyed::VoterId;
use crate::domain::results::{Criterion, ResultRules, Stage};
use crate::domain::review::Action;
use crate::domain::staff::Role;
use crate::store::{
    CandidateStatus, Decision, NewBallot, NewCampaign, NewCandidate, NewExpertScore, NewObjection,
    Selection,
};

pub const PUBLISHED_TITLE: &str = "2025年度十大最美护士评选（已发布，演示）";

const NURSES: [(&str, &str); 8] = [
    ("周海燕", "示例市人民医院"),
    ("吴春梅", "示例市中医医院"),
    ("郑玉兰", "示例县妇幼保健院"),
    ("冯丽华", "示例市第二人民医院"),
    ("陈秀英", "示例县人民医院"),
    ("褚静", "示例市人民医院"),
    ("卫晓红", "示例县人民医院"),
    ("蒋慧", "示例市中医医院"),
];

/// Votes per nurse from honest voters (each voter votes once for a nurse).
const VOTES: [usize; 8] = [96, 88, 71, 64, 52, 40, 33, 20];

/// A small deterministic spread of expert points, so every run seeds the same campaign.
fn points(expert: usize, nurse: usize) -> (i64, i64) {
    let base = 44 + ((nurse * 7 + expert * 3) % 15) as i64;
    let skill = 26 + ((nurse * 5 + expert * 4) % 14) as i64;
    (base, skill)
}

fn window(phase: Phase, from: DateTime<Utc>, to: DateTime<Utc>) -> PhaseWindow {
    PhaseWindow {
        phase,
        starts_at: from,
        ends_at: to,
    }
}

/// Seeds and publishes the finished campaign unless one with its title exists; returns its
/// id.
pub async fn seed_published(services: &Services) -> anyhow::Result<i64> {
    let store = services.store.as_ref();
    if let Some(existing) = store
        .list_campaigns(true)
        .await?
        .into_iter()
        .find(|c| c.title == PUBLISHED_TITLE)
    {
        return Ok(existing.id);
    }
    let now = Utc::now();
    let day = Duration::days(1);
    let (voting_from, voting_to) = (now - day * 30, now - day * 20);
    let (publicity_from, publicity_to) = (now - day * 15, now - day * 8);
    let campaign = store
        .create_campaign(
            &SEED,
            &NewCampaign {
                kind: Kind::Selection,
                title: PUBLISHED_TITLE.into(),
                description:
                    "群众投票占40分、专家评审占60分；经公示无异议后发布。（演示数据，均为虚构）"
                        .into(),
                timezone: "Asia/Shanghai".into(),
                phases: vec![
                    window(Phase::Nomination, now - day * 40, voting_from),
                    window(Phase::Voting, voting_from, voting_to),
                    window(Phase::Review, voting_to, publicity_from),
                    window(Phase::Publicity, publicity_from, publicity_to),
                ],
                rules: Rules {
                    show_counts: ShowCounts::RankOnly,
                    fraud_policy: FraudPolicy::Quarantine,
                    results: ResultRules {
                        public_weight: 40,
                        expert_weight: 60,
                        criteria: vec![
                            Criterion {
                                key: "ethics".into(),
                                name: "医德医风".into(),
                                max: 60,
                            },
                            Criterion {
                                key: "skill".into(),
                                name: "业务能力".into(),
                                max: 40,
                            },
                        ],
                    },
                    ..Rules::default()
                },
            },
        )
        .await?;
    let id = campaign.id;
    let category = store.add_category(&SEED, id, "护士", 3).await?.id;
    let list: Vec<NewCandidate> = NURSES
        .iter()
        .map(|(name, unit)| NewCandidate {
            category_id: category,
            name: (*name).into(),
            unit: (*unit).into(),
            department: "护理部".into(),
            title: "主管护师".into(),
            photo_url: String::new(),
            story: format!("{name}同志在{unit}从事护理工作多年，深受患者信赖。（虚构事迹）"),
        })
        .collect();
    let nurses = store
        .add_candidates(&SEED, id, &list, CandidateStatus::Approved, None)
        .await?;
    store.open_campaign(&SEED, id).await?;
    let ids: Vec<i64> = nurses.iter().map(|c| c.id).collect();

    // Ballots during the voting window, and a farm of twelve accounts on one phone for the
    // last nurse, held by the quarantine.
    let mut batch = Vec::new();
    let minute = Duration::minutes(1);
    for (n, votes) in VOTES.iter().enumerate() {
        for v in 0..*votes {
            let at = voting_from + day + minute * (n * 97 + v * 13) as i32;
            batch.push(ballot(
                services,
                id,
                &format!("demo-nurse-voter-{v}"),
                ids[n],
                at,
                "counted",
                None,
            ));
        }
    }
    let farm_at = voting_to - day;
    for v in 0..12 {
        batch.push(ballot(
            services,
            id,
            &format!("demo-farm-{v}"),
            ids[7],
            farm_at + minute * v,
            "quarantined",
            Some("demo-farm-phone"),
        ));
    }
    let mut farm_seqs = Vec::new();
    for chunk in batch.chunks(500) {
        for (b, recorded) in chunk.iter().zip(store.record_ballots(chunk).await?) {
            let recorded = recorded?;
            if b.status == "quarantined" {
                farm_seqs.push(recorded.seq);
            }
        }
    }
    // Organizers invalidate eight of the farm's ballots after review; four stay held.
    store
        .decide(
            &SEED,
            &Decision {
                campaign_id: id,
                action: Action::Invalidate,
                reason: "同一手机批量注册账号投票（演示）".into(),
                select: Selection::Seqs(farm_seqs[..8].to_vec()),
                at: voting_to + day,
            },
        )
        .await?;

    // Five experts score every nurse in the review phase.
    for e in 0..5 {
        let username = format!("demo-expert-{}", e + 1);
        let mut secret = [0u8; 12];
        rand::fill(&mut secret);
        let staff_id = match staff_auth::create_user(
            store,
            &username,
            &hex::encode(secret),
            Role::Expert,
            None,
        )
        .await
        {
            Ok(staff_id) => staff_id,
            Err(CreateUserError::Taken) => {
                store
                    .find_staff(&username)
                    .await?
                    .ok_or_else(|| anyhow::anyhow!("{username} vanished"))?
                    .id
            }
            Err(e) => return Err(e.into()),
        };
        store
            .assign_expert(&SEED, id, staff_id, &[category], voting_to + day)
            .await?;
        let expert = crate::domain::record::Actor::Staff {
            id: staff_id,
            username,
            role: Role::Expert,
        };
        for (n, nurse) in ids.iter().enumerate() {
            let (ethics, skill) = points(e, n);
            store
                .record_expert_score(
                    &expert,
                    &NewExpertScore {
                        campaign_id: id,
                        staff_id,
                        candidate_id: *nurse,
                        points: BTreeMap::from([
                            ("ethics".into(), ethics),
                            ("skill".into(), skill),
                        ]),
                        total: ethics + skill,
                        at: voting_to + day * 2 + minute * (e * 10 + n) as i32,
                    },
                )
                .await?;
        }
    }

    // The draft, frozen as the publicity period opened (the seed runs on that day's clock),
    // an objection in the period, its answer, and the publication.
    let opened = publicity_from + Duration::hours(1);
    let then = Services {
        clock: std::sync::Arc::new(move || opened),
        ..services.clone()
    };
    results::freeze(&then, &SEED, id, Stage::Draft).await?;
    let context = format!("objection campaign {id}");
    let objection = store
        .add_objection(&NewObjection {
            campaign_id: id,
            candidate_id: Some(ids[0]),
            name_enc: None,
            contact_enc: services.vault.seal("demo@example.invalid", &context),
            content: "请核实周海燕同志的事迹材料。（演示）".into(),
            at: publicity_from + day,
        })
        .await?;
    store
        .answer_objection(
            &SEED,
            id,
            objection.id,
            false,
            "经核实，事迹材料属实，异议不成立。（演示）",
            publicity_from + day * 2,
        )
        .await?;
    results::freeze(services, &SEED, id, Stage::Final).await?;
    let campaign = store.get_campaign(id).await?;
    // The live counters follow the ledger (a rank-only leaderboard).
    crate::app::recount::rebuild(services, &campaign, now, true).await?;
    Ok(id)
}

fn ballot(
    services: &Services,
    campaign_id: i64,
    openid: &str,
    candidate: i64,
    at: DateTime<Utc>,
    status: &'static str,
    device: Option<&str>,
) -> NewBallot {
    let voter = VoterId::from_openid(&services.key, openid);
    let tz: chrono_tz::Tz = "Asia/Shanghai".parse().unwrap_or(chrono_tz::Asia::Shanghai);
    NewBallot {
        campaign_id,
        voter_id: voter.as_str().to_string(),
        candidate_ids: vec![candidate],
        idempotency_key: None,
        request_hash: hex::encode(sha2::Sha256::digest(format!("{openid} {candidate} {at}"))),
        remaining_today: 0,
        cast_at: at,
        quota_day: at.with_timezone(&tz).date_naive(),
        status,
        flags: if device.is_some() {
            vec!["shared_device"]
        } else {
            vec![]
        },
        device_hash: device.map(|d| hex::encode(services.key.mac("device", d.as_bytes()))),
        ip_hash: None,
        network_hash: None,
        checked_version: None,
    }
}
