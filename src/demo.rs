//! `minyi demo`: seeds a sample selection campaign into an empty database so that a new user
//! has something to look at. Everything in it is made up.

use chrono::{Duration, Utc};

use crate::domain::campaign::{Kind, Phase, PhaseWindow, Rules, ShowCounts};
use crate::domain::record::Actor;
use crate::store::{CandidateStatus, NewCampaign, NewCandidate, Store, StoreResult};

const SEED: Actor = Actor::System("demo seed");

pub const DEMO_TITLE: &str = "2026年度十大最美医生评选";

const HOSPITALS: [&str; 6] = [
    "示例市人民医院",
    "示例市中医医院",
    "示例县妇幼保健院",
    "示例市第二人民医院",
    "示例县人民医院",
    "示例市疾病预防控制中心",
];
const TOWNSHIPS: [&str; 5] = [
    "东山镇卫生院",
    "西河乡卫生院",
    "南岭镇卫生院",
    "北湖乡卫生院",
    "青石村卫生室",
];
const SURNAMES: [&str; 12] = [
    "王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "徐", "孙",
];
const GIVEN: [&str; 12] = [
    "建国", "秀英", "志强", "丽华", "明", "静", "海燕", "卫东", "春梅", "晓峰", "玉兰", "文杰",
];

/// Seeds the demo campaign unless one with its title exists; returns its id.
pub async fn seed(store: &dyn Store) -> StoreResult<i64> {
    if let Some(existing) = store
        .list_campaigns(true)
        .await?
        .into_iter()
        .find(|c| c.title == DEMO_TITLE)
    {
        return Ok(existing.id);
    }
    let now = Utc::now();
    let campaign_id = store
        .create_campaign(&SEED, &NewCampaign {
            kind: Kind::Selection,
            title: DEMO_TITLE.into(),
            description: "由示例市卫生健康委员会主办，面向全市医务人员开展“十大最美医生、十大最美护士、十大最美乡村医生”评选，\
                          经单位推荐、群众投票、专家评审和公示后发布结果。（演示数据，均为虚构）"
                .into(),
            timezone: "Asia/Shanghai".into(),
            phases: vec![
                PhaseWindow { phase: Phase::Nomination, starts_at: now - Duration::days(14), ends_at: now - Duration::days(1) },
                PhaseWindow { phase: Phase::Voting, starts_at: now - Duration::days(1), ends_at: now + Duration::days(13) },
                PhaseWindow { phase: Phase::Review, starts_at: now + Duration::days(13), ends_at: now + Duration::days(20) },
                PhaseWindow { phase: Phase::Publicity, starts_at: now + Duration::days(20), ends_at: now + Duration::days(27) },
            ],
            rules: Rules { show_counts: ShowCounts::Live, ..Rules::default() },
        })
        .await?
        .id;
    let categories = [
        ("医生", 10u32, 14usize),
        ("护士", 10, 12),
        ("乡村医生", 10, 10),
    ];
    let mut n = 0usize;
    for (name, winners, count) in categories {
        let category_id = store
            .add_category(&SEED, campaign_id, name, winners)
            .await?
            .id;
        let mut list = Vec::with_capacity(count);
        for _ in 0..count {
            let person = format!(
                "{}{}",
                SURNAMES[n % SURNAMES.len()],
                GIVEN[(n * 5 + n / 12) % GIVEN.len()]
            );
            let (unit, department, title) = match name {
                "医生" => (
                    HOSPITALS[n % HOSPITALS.len()],
                    ["心内科", "急诊科", "儿科", "普外科"][n % 4],
                    "主任医师",
                ),
                "护士" => (
                    HOSPITALS[n % HOSPITALS.len()],
                    ["重症医学科", "产科", "儿科病区"][n % 3],
                    "主管护师",
                ),
                _ => (TOWNSHIPS[n % TOWNSHIPS.len()], "全科", "乡村医生"),
            };
            let candidate = NewCandidate {
                category_id,
                name: person.clone(),
                unit: unit.into(),
                department: department.into(),
                title: title.into(),
                photo_url: format!("https://example.invalid/photos/{n}.jpg"),
                story: format!(
                    "{person}同志扎根{unit}{department}，多年来以患者为中心，深受群众信赖。（虚构事迹）"
                ),
            };
            list.push(candidate);
            n += 1;
        }
        store
            .add_candidates(&SEED, campaign_id, &list, CandidateStatus::Approved, None)
            .await?;
    }
    store.open_campaign(&SEED, campaign_id).await?;
    Ok(campaign_id)
}
