//! `minyi demo`: seeds a sample selection campaign, a sample evaluation (with SMS survey
//! links to open in a browser) and a finished, published selection (to verify) into an
//! empty database so that a new user has something to look at. Everything in it is made up.

use chrono::{Duration, Utc};

use crate::app::Services;
use crate::app::surveys::RecordIn;
use crate::domain::campaign::{Kind, Phase, PhaseWindow, Rules, ShowCounts};
use crate::domain::record::Actor;
use crate::store::{
    CandidateStatus, NewCampaign, NewCandidate, NewTarget, Store, StoreResult, TargetParent,
};

mod published;

pub use published::{PUBLISHED_TITLE, seed_published};

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

pub const EVALUATION_TITLE: &str = "2026年度“万人双评议”网络评议（演示）";

/// A gateway that keeps the links it is asked to send: the demo prints them, so that a new
/// user can open one in a browser (the numbers are made up and go nowhere).
#[derive(Default)]
struct KeepLinks(std::sync::Mutex<Vec<String>>);

#[async_trait::async_trait]
impl crate::app::sms::Gateway for KeepLinks {
    fn name(&self) -> &'static str {
        "demo"
    }

    async fn send(
        &self,
        _record_id: i64,
        _phone: &str,
        link: &str,
    ) -> Result<(), crate::app::sms::GatewayError> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(link.to_string());
        Ok(())
    }

    /// Never unanswered, so never asked; "taken" keeps the rule of the real gateways.
    async fn status(
        &self,
        _q: &crate::app::sms::StatusQuery<'_>,
    ) -> Result<crate::app::sms::Known, crate::app::sms::GatewayError> {
        Ok(crate::app::sms::Known::Accepted)
    }

    fn settle(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }
}

/// Seeds the demo evaluation (the hospitals and some departments, in its rating window) with
/// three service records whose survey SMS are "sent" at once; returns its id and the survey
/// links (none when it was seeded on an earlier run).
pub async fn seed_evaluation(services: &Services) -> anyhow::Result<(i64, Vec<String>)> {
    let store = services.store.as_ref();
    if let Some(existing) = store
        .list_campaigns(true)
        .await?
        .into_iter()
        .find(|c| c.title == EVALUATION_TITLE)
    {
        return Ok((existing.id, Vec::new()));
    }
    let now = Utc::now();
    let campaign_id = store
        .create_campaign(&SEED, &NewCampaign {
            kind: Kind::Evaluation,
            title: EVALUATION_TITLE.into(),
            description: "群众、服务对象（短信回访）、党员、领导和行风监督员对全市卫生健康单位及科室的服务进行评议。（演示数据，均为虚构）".into(),
            timezone: "Asia/Shanghai".into(),
            phases: vec![PhaseWindow {
                phase: Phase::Voting,
                starts_at: now - Duration::days(1),
                ends_at: now + Duration::days(60),
            }],
            rules: Rules::default(),
        })
        .await?
        .id;
    let units: Vec<NewTarget> = HOSPITALS
        .iter()
        .enumerate()
        .map(|(i, name)| NewTarget {
            code: format!("H{:02}", i + 1),
            name: (*name).into(),
            parent: TargetParent::Root,
        })
        .collect();
    let units = store.add_targets(&SEED, campaign_id, &units, None).await?;
    let departments: Vec<NewTarget> = units
        .iter()
        .take(2)
        .flat_map(|u| {
            ["门诊部", "急诊科"]
                .into_iter()
                .enumerate()
                .map(|(j, d)| NewTarget {
                    code: format!("{}-{}", u.code, j + 1),
                    name: d.into(),
                    parent: TargetParent::Id(u.id),
                })
        })
        .collect();
    let departments = store
        .add_targets(&SEED, campaign_id, &departments, None)
        .await?;
    store.open_campaign(&SEED, campaign_id).await?;
    let today = now
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .date_naive()
        .to_string();
    let targets: Vec<String> = departments.iter().map(|d| d.id.to_string()).collect();
    let records: Vec<RecordIn<'_>> = ["13800000001", "13800000002", "13800000003"]
        .iter()
        .zip(targets.iter().cycle())
        .map(|(phone, target)| RecordIn {
            phone,
            target_id: target,
            visited_on: &today,
        })
        .collect();
    crate::app::surveys::import(services, &SEED, campaign_id, &records, now).await?;
    let keep = KeepLinks::default();
    crate::app::sms::send_due(services, &keep, &crate::app::sms::throttle(100), Utc::now()).await?;
    let links = keep.0.into_inner().unwrap_or_default();
    Ok((campaign_id, links))
}
