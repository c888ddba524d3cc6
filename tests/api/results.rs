//! Results: a selection from nomination to publication, with quarantined and invalidated
//! ballots, a withdrawn candidate, five experts and objections; the published numbers are
//! worked by hand, and both verifiers (ours, and the Python script an outsider runs)
//! reproduce them; after publication nothing changes; a tampered database is rejected by both.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use serde_json::{Value, json};

use crate::ballots::{assert_counts_match_ledger, ballot};
use crate::helpers::*;
use crate::on_both_backends;
use crate::risk::{five_voters_on_one_device, receipt_statuses};
use minyi::domain::staff::Role;

on_both_backends!(
    a_selection_goes_from_nomination_to_verified_published_results,
    a_tampered_database_is_rejected_by_both_verifiers,
    the_demo_publishes_a_campaign_that_both_verifiers_accept,
    an_evaluation_publishes_its_scores_and_both_verifiers_recount_them,
    what_is_published_is_what_the_public_saw_and_the_experts_scored,
    experts_score_while_organizers_change_the_campaign,
    objections_from_one_address_are_rate_limited_exactly
);

pub const DAY: i64 = 86_400;

/// A campaign run on a clock the test moves: voting for a day from `t0`, then a week of
/// publicity. Four approved doctors in one category with two winners; votes count 40 points
/// and the experts 60, on two criteria worth 60 and 40.
pub struct Run {
    pub app: TestApp,
    clock: Arc<AtomicI64>,
    pub id: String,
    pub org: String,
    /// The candidates' ids: 甲, 乙, 丙, 丁.
    c: Vec<String>,
    experts: Vec<String>,
}

impl Run {
    pub async fn start(backend: Backend) -> Run {
        Self::start_with(backend, &[]).await
    }

    pub async fn start_with(backend: Backend, overrides: &[(&str, &str)]) -> Run {
        let mut settings = vec![("dev_login", "true")];
        settings.extend_from_slice(overrides);
        let t0 = chrono::Utc::now().timestamp();
        let clock = Arc::new(AtomicI64::new(t0));
        let at = clock.clone();
        let app = TestApp::spawn_opts(
            backend,
            TestOptions {
                overrides: &settings,
                database_url: None,
                redis_url: None,
                redis_prefix: None,
                clock: Some(Arc::new(move || {
                    chrono::DateTime::from_timestamp(at.load(Ordering::SeqCst), 0).unwrap()
                })),
            },
        )
        .await;
        let time = |s: i64| chrono::DateTime::from_timestamp(t0 + s, 0).unwrap();
        let org = app.staff("results.organizer", Role::Organizer).await;
        let r = app
            .post(
                "/api/v1/admin/campaigns",
                &json!({"kind": "selection", "title": "2026年度十大最美医生评选",
                    "phases": [
                        {"phase": "nomination", "starts_at": time(-2 * DAY), "ends_at": time(-3600)},
                        {"phase": "voting", "starts_at": time(-3600), "ends_at": time(DAY)},
                        {"phase": "publicity", "starts_at": time(DAY), "ends_at": time(8 * DAY)},
                    ],
                    "rules": {"votes_per_day": 5, "votes_per_candidate_per_day": 1, "max_candidates_per_ballot": 4,
                        "votes_per_campaign": null, "show_counts": "rank_only", "fraud_policy": "quarantine",
                        "results": {"public_weight": 40, "expert_weight": 60, "criteria": [
                            {"key": "ethics", "name": "医德医风", "max": 60},
                            {"key": "skill", "name": "业务能力", "max": 40}]}}}),
                Some(&org),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let id = r.body["id"].as_str().unwrap().to_string();
        let cat = app
            .post(
                &format!("/api/v1/admin/campaigns/{id}/categories"),
                &json!({"name": "医生", "winners": 2}),
                Some(&org),
            )
            .await;
        let cat = cat.body["id"].as_str().unwrap().to_string();
        let mut c = Vec::new();
        for name in ["甲", "乙", "丙", "丁"] {
            let r = app
                .post(
                    &format!("/api/v1/admin/campaigns/{id}/candidates"),
                    &json!({"category_id": cat, "name": format!("医生{name}"), "unit": "县人民医院"}),
                    Some(&org),
                )
                .await;
            let cid = r.body["id"].as_str().unwrap().to_string();
            let a = app
                .post(
                    &format!("/api/v1/admin/campaigns/{id}/candidates/{cid}/approve"),
                    &json!({}),
                    Some(&org),
                )
                .await;
            assert_eq!(a.status, 200, "{}", a.text);
            c.push(cid);
        }
        let open = app
            .post(
                &format!("/api/v1/admin/campaigns/{id}/open"),
                &json!({}),
                Some(&org),
            )
            .await;
        assert_eq!(open.status, 200, "{}", open.text);
        let mut experts = Vec::new();
        for i in 0..5 {
            let name = format!("expert{i}");
            experts.push(app.staff(&name, Role::Expert).await);
            let r = app
                .post(
                    &format!("/api/v1/admin/campaigns/{id}/experts"),
                    &json!({"username": name, "category_ids": [cat]}),
                    Some(&org),
                )
                .await;
            assert_eq!(r.status, 200, "{}", r.text);
            assert_eq!(r.body["expected"], 4);
        }
        Run {
            app,
            clock,
            id,
            org,
            c,
            experts,
        }
    }

    pub fn at(&self, offset: i64) {
        self.clock
            .store(chrono::Utc::now().timestamp() + offset, Ordering::SeqCst);
    }

    pub async fn post(&self, path: &str, body: Value, token: &str) -> Reply {
        self.app
            .post(
                &format!("/api/v1/admin/campaigns/{}/{path}", self.id),
                &body,
                Some(token),
            )
            .await
    }

    /// Every expert scores 甲, 乙 and 丙 as `SCORES` says.
    pub async fn score_all(&self) {
        for (e, row) in SCORES.iter().enumerate() {
            for (c, (ethics, skill)) in row.iter().enumerate() {
                let r = self.score(e, c, *ethics, *skill).await;
                assert_eq!(r.status, 201, "{}", r.text);
            }
        }
    }

    async fn score(&self, expert: usize, candidate: usize, ethics: i64, skill: i64) -> Reply {
        self.post(
            "expert/scores",
            json!({"candidate_id": self.c[candidate], "points": {"ethics": ethics, "skill": skill}}),
            &self.experts[expert],
        )
        .await
    }

    /// Honest votes: 甲 5, 乙 3, 丙 2, 丁 4; and a phone farm of five for 丙, held.
    pub async fn vote(&self) -> Vec<Reply> {
        let wants = [(0, 5), (1, 3), (2, 2), (3, 4)];
        let voters = self.app.dev_citizens("oCitizen", 5).await;
        for (candidate, n) in wants {
            for voter in voters.iter().take(n) {
                let r = ballot(&self.app, &self.id, voter, &[&self.c[candidate]], None).await;
                assert_eq!(r.status, 201, "{}", r.text);
            }
        }
        five_voters_on_one_device(&self.app, &self.id, &self.c[2]).await
    }
}

/// Every expert's score of 甲, 乙, 丙 (ethics + skill): totals 甲 90 80 85 70 95, 乙 95 90 92 88
/// 91, 丙 60 70 80 90 100; 丁 is scored by the first expert only.
const SCORES: [[(i64, i64); 3]; 5] = [
    [(55, 35), (57, 38), (36, 24)],
    [(50, 30), (54, 36), (42, 28)],
    [(51, 34), (55, 37), (48, 32)],
    [(42, 28), (53, 35), (54, 36)],
    [(57, 38), (55, 36), (60, 40)],
];

async fn a_selection_goes_from_nomination_to_verified_published_results(backend: Backend) {
    let run = Run::start(backend).await;
    let (app, id, org) = (&run.app, run.id.clone(), run.org.clone());
    let farm = run.vote().await;
    assert_eq!(receipt_statuses(app, &farm).await, ["quarantined"; 5]);
    // Two of the farm's ballots are invalidated; three stay held.
    let seqs: Vec<i64> = farm[..2]
        .iter()
        .map(|r| r.body["seq"].as_i64().unwrap())
        .collect();
    let d = run
        .post(
            "review/decisions",
            json!({"action": "invalidate", "seqs": seqs, "reason": "同一设备批量注册"}),
            &org,
        )
        .await;
    assert_eq!(d.status, 200, "{}", d.text);

    // Experts score without seeing counts; a score is final; points are checked.
    let sheet = app
        .get(
            &format!("/api/v1/admin/campaigns/{id}/expert/sheet"),
            Some(&run.experts[0]),
        )
        .await;
    assert_eq!(sheet.status, 200, "{}", sheet.text);
    assert_eq!(sheet.body["candidates"].as_array().unwrap().len(), 4);
    assert!(!sheet.text.contains("votes"), "{}", sheet.text);
    assert_eq!(sheet.body["criteria"][0]["key"], "ethics");
    for (e, row) in SCORES.iter().enumerate() {
        for (c, (ethics, skill)) in row.iter().enumerate() {
            let r = run.score(e, c, *ethics, *skill).await;
            assert_eq!(r.status, 201, "{}", r.text);
            assert_eq!(r.body["total"], ethics + skill);
        }
    }
    run.score(0, 0, 1, 1)
        .await
        .assert_error(409, "score_already_submitted");
    let over = run.score(1, 3, 61, 0).await;
    over.assert_error(422, "invalid_request");
    assert_eq!(over.body["error"]["field"], "points.ethics");
    run.score(0, 3, 30, 20).await;
    app.get(
        &format!("/api/v1/admin/campaigns/{id}/expert/sheet"),
        Some(&org),
    )
    .await
    .assert_error(403, "forbidden");
    // Organizers see who has not finished: everyone but the first expert owes 丁.
    let progress = app
        .get(&format!("/api/v1/admin/campaigns/{id}/experts"), Some(&org))
        .await;
    let missing: Vec<usize> = progress.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["missing"].as_array().unwrap().len())
        .collect();
    assert_eq!(missing, [0, 1, 1, 1, 1]);

    // Nothing is frozen while voting runs.
    run.post("results/draft", json!({}), &org)
        .await
        .assert_error(409, "voting_not_ended");
    run.post("results/publish", json!({}), &org)
        .await
        .assert_error(409, "voting_not_ended");
    app.get(&format!("/api/v1/campaigns/{id}/results"), None)
        .await
        .assert_error(404, "results_not_published");

    // Publicity: the draft, and objections.
    run.at(DAY + 3600);
    let draft = run.post("results/draft", json!({}), &org).await;
    assert_eq!(draft.status, 200, "{}", draft.text);
    assert_eq!(draft.body["stage"], "draft");
    run.score(1, 3, 30, 20)
        .await
        .assert_error(409, "scoring_closed");
    let objection = |body: Value| {
        let app = &run.app;
        let id = id.clone();
        async move {
            app.post(&format!("/api/v1/campaigns/{id}/objections"), &body, None)
                .await
        }
    };
    objection(json!({"content": "医生丁曾被投诉，事迹材料不实"}))
        .await
        .assert_error(422, "invalid_request");
    let no_contact =
        objection(json!({"contact": "", "content": "医生丁曾被投诉，事迹材料不实"})).await;
    no_contact.assert_error(422, "invalid_request");
    assert_eq!(no_contact.body["error"]["field"], "contact");
    let first = objection(json!({"candidate_id": run.c[3], "contact": "13800138000",
        "content": "医生丁曾被投诉，事迹材料不实"}))
    .await;
    assert_eq!(first.status, 201, "{}", first.text);
    let second = objection(json!({"name": "王先生", "contact": "wang@example.com",
        "content": "请公布医生甲的专家评分依据"}))
    .await;
    assert_eq!(second.status, 201, "{}", second.text);
    // The contact is for organizers only: not in the chain, in clear only in their list.
    let entries = app.entries(&id, &org).await;
    let text = serde_json::to_string(&entries).unwrap();
    assert!(!text.contains("13800138000") && !text.contains("王先生"));
    let listed = app
        .get(
            &format!("/api/v1/admin/campaigns/{id}/objections"),
            Some(&org),
        )
        .await;
    assert_eq!(listed.body["items"][0]["contact"], "13800138000");
    assert_eq!(listed.body["items"][1]["name"], "王先生");
    let stored = app
        .raw_sql_rows("SELECT contact_enc FROM objections ORDER BY id")
        .await;
    assert!(!stored[0][0].contains("13800138000"));

    // The first objection holds: 丁 is withdrawn and the draft frozen again.
    let first_id = first.body["id"].as_str().unwrap();
    let answer = run
        .post(
            &format!("objections/{first_id}/answer"),
            json!({"verdict": "upheld", "answer": "经核实，事迹材料与实际不符，撤销其候选资格"}),
            &org,
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    run.post(
        &format!("objections/{first_id}/answer"),
        json!({"verdict": "rejected", "answer": "再答一次"}),
        &org,
    )
    .await
    .assert_error(409, "objection_already_answered");
    let w = run
        .post(
            &format!("candidates/{}/withdraw", run.c[3]),
            json!({"reason": "公示期异议成立"}),
            &org,
        )
        .await;
    assert_eq!(w.status, 200, "{}", w.text);
    assert_eq!(run.post("results/draft", json!({}), &org).await.status, 200);
    let public_draft = app
        .get(&format!("/api/v1/campaigns/{id}/results/draft"), None)
        .await;
    assert_eq!(
        public_draft.body["results"]["categories"][0]["candidates"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    run.post("results/publish", json!({}), &org)
        .await
        .assert_error(409, "publicity_not_ended");

    // After the publicity period: the open objection must be answered first.
    run.at(8 * DAY + 60);
    objection(json!({"contact": "13900139000", "content": "公示期已过的异议"}))
        .await
        .assert_error(409, "not_in_publicity");
    run.post("results/publish", json!({}), &org)
        .await
        .assert_error(409, "objections_pending");
    let second_id = second.body["id"].as_str().unwrap();
    run.post(
        &format!("objections/{second_id}/answer"),
        json!({"verdict": "rejected", "answer": "专家评分已随结果公布，可在审计记录中逐条核对"}),
        &org,
    )
    .await;

    // Organizers click publish at once, twenty times: one publication.
    let clicks: Vec<Reply> = futures_util::future::join_all(
        (0..20).map(|_| run.post("results/publish", json!({}), &org)),
    )
    .await;
    let ok: Vec<&Reply> = clicks.iter().filter(|r| r.status == 200).collect();
    assert_eq!(
        ok.len(),
        1,
        "{:?}",
        clicks.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    for r in clicks.iter().filter(|r| r.status != 200) {
        r.assert_error(409, "campaign_published");
    }
    let published = ok[0];

    // The numbers, worked by hand. Counted votes: 甲 5, 乙 3, 丙 2 (the farm's five are held
    // or invalidated; 丁 is withdrawn). V = 5, M = 100, trimmed expert totals: 甲 80+85+90,
    // 乙 90+92+91, 丙 70+80+90.
    // 甲: 40·5/5 + 60·255/300 = 40 + 51 = 91.00; 乙: 40·3/5 + 60·273/300 = 24 + 54.6 = 78.60;
    // 丙: 40·2/5 + 60·240/300 = 16 + 48 = 64.00.
    let results = app
        .get(&format!("/api/v1/campaigns/{id}/results"), None)
        .await;
    assert_eq!(results.status, 200, "{}", results.text);
    assert_eq!(
        results.body["snapshot_hash"],
        published.body["snapshot_hash"]
    );
    let rows: Vec<(String, i64, String, String, String, bool)> =
        results.body["results"]["categories"][0]["candidates"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().unwrap().to_string(),
                    c["votes"].as_i64().unwrap(),
                    c["vote_points"].as_str().unwrap().to_string(),
                    c["expert_points"].as_str().unwrap().to_string(),
                    c["score"].as_str().unwrap().to_string(),
                    c["winner"].as_bool().unwrap(),
                )
            })
            .collect();
    let row = |n: &str, v, vp: &str, ep: &str, s: &str, w| {
        (
            n.to_string(),
            v,
            vp.to_string(),
            ep.to_string(),
            s.to_string(),
            w,
        )
    };
    assert_eq!(
        rows,
        vec![
            row("医生甲", 5, "100.00", "85.00", "91.00", true),
            row("医生乙", 3, "60.00", "91.00", "78.60", true),
            row("医生丙", 2, "40.00", "80.00", "64.00", false),
        ]
    );
    assert_eq!(results.body["results"]["method"]["expert_weight"], 60);

    // The publication is a chain entry naming the head before it and the snapshot's hash.
    let entries = app.entries(&id, &org).await;
    let last = entries.last().unwrap();
    assert_eq!(last["kind"], "results.published");
    assert_eq!(last["seq"], results.body["seq"]);
    assert_eq!(
        last["body"]["audit_head"]["seq"],
        last["seq"].as_i64().unwrap() - 1
    );
    assert_eq!(last["body"]["audit_head"]["hash"], last["prev_hash"]);
    assert_eq!(last["body"]["snapshot_hash"], results.body["snapshot_hash"]);
    let canonical = minyi::domain::audit::canonical(&last["body"]["results"]).unwrap();
    let digest = minyi::domain::audit::to_hex(&{
        use sha2::Digest;
        sha2::Sha256::digest(canonical.as_bytes()).into()
    });
    assert_eq!(results.body["snapshot_hash"], digest.as_str());
    // Hidden counts are public once published.
    let public = app
        .get(
            &format!("/api/v1/campaigns/{id}/audit/entries?after_seq=0&limit=5"),
            None,
        )
        .await;
    assert_eq!(public.status, 200, "{}", public.text);
    let campaign = app.get(&format!("/api/v1/campaigns/{id}"), None).await;
    assert_eq!(campaign.body["current_phase"], "published");

    // After publication, nothing in the campaign changes.
    let head_before = app
        .services
        .store
        .audit_head(id.parse().unwrap())
        .await
        .unwrap();
    app.patch(
        &format!("/api/v1/admin/campaigns/{id}"),
        &json!({"title": "改名"}),
        Some(&org),
    )
    .await
    .assert_error(409, "campaign_published");
    run.post("categories", json!({"name": "护士", "winners": 1}), &org)
        .await
        .assert_error(409, "campaign_published");
    let held: Vec<i64> = farm[2..]
        .iter()
        .map(|r| r.body["seq"].as_i64().unwrap())
        .collect();
    run.post(
        "review/decisions",
        json!({"action": "release", "seqs": held, "reason": "发布后放行"}),
        &org,
    )
    .await
    .assert_error(409, "campaign_published");
    run.post(
        &format!("candidates/{}/withdraw", run.c[0]),
        json!({"reason": "x"}),
        &org,
    )
    .await
    .assert_error(409, "campaign_published");
    run.post("results/draft", json!({}), &org)
        .await
        .assert_error(409, "campaign_published");
    assert_eq!(
        app.services
            .store
            .audit_head(id.parse().unwrap())
            .await
            .unwrap(),
        head_before
    );
    assert_counts_match_ledger(app, &id).await;

    // Our verifier recounts every frozen result from the entries: two drafts and the final.
    let report = minyi::app::verify::from_store(app.services.store.as_ref(), id.parse().unwrap())
        .await
        .unwrap();
    assert!(report.ok(), "{:?}", report.problem);
    let stages: Vec<&str> = report
        .results
        .iter()
        .map(|r| r.results.stage.as_str())
        .collect();
    assert_eq!(stages, ["draft", "draft", "final"]);
    // The outsider's verifier agrees, reading only the public API.
    let (code, out) = python_verifier(app, &id);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("医生甲") && out.contains("91.00"), "{out}");

    // The page and the CSV say the same.
    let page = app
        .client
        .get(app.url(&format!("/campaigns/{id}/results")))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("<svg") && html.contains("医生乙") && html.contains("78.60"));
    assert!(html.contains(results.body["snapshot_hash"].as_str().unwrap()));
    let csv = app
        .client
        .get(app.url(&format!("/api/v1/campaigns/{id}/results.csv")))
        .send()
        .await
        .unwrap();
    let csv = csv.text().await.unwrap();
    assert_eq!(csv.lines().count(), 4, "{csv}");
    assert!(
        csv.lines()
            .nth(1)
            .unwrap()
            .contains("医生甲,县人民医院,5,100.00,3,85.00,91.00,是"),
        "{csv}"
    );
}

/// The guards around the numbers: a change after the draft needs a new draft in the
/// publicity window; no draft after the window; criteria fixed once experts score; experts
/// cannot read hidden counts from the chain.
async fn what_is_published_is_what_the_public_saw_and_the_experts_scored(backend: Backend) {
    let run = Run::start(backend).await;
    let (app, id, org) = (&run.app, run.id.clone(), run.org.clone());
    let farm = run.vote().await;
    assert_eq!(run.score(0, 0, 50, 30).await.status, 201);
    // The criteria cannot change under the experts.
    let r = app
        .patch(
            &format!("/api/v1/admin/campaigns/{id}"),
            &json!({"rules": {"votes_per_day": 5, "votes_per_candidate_per_day": 1, "max_candidates_per_ballot": 4,
                "votes_per_campaign": null, "show_counts": "rank_only", "fraud_policy": "quarantine",
                "results": {"public_weight": 50, "expert_weight": 50, "criteria": [
                    {"key": "ethics", "name": "医德医风", "max": 60},
                    {"key": "skill", "name": "业务能力", "max": 40}]}}}),
            Some(&org),
        )
        .await;
    r.assert_error(409, "scoring_started");
    // Experts do not read the hidden counts (nor each other's scores) from the chain.
    app.get(
        &format!("/api/v1/campaigns/{id}/audit/entries?after_seq=0&limit=10"),
        Some(&run.experts[1]),
    )
    .await
    .assert_error(409, "audit_entries_hidden");
    let auditor = app.staff("results.auditor", Role::Auditor).await;
    let entries = app
        .get(
            &format!("/api/v1/campaigns/{id}/audit/entries?after_seq=0&limit=10"),
            Some(&auditor),
        )
        .await;
    assert_eq!(entries.status, 200, "{}", entries.text);

    // The draft goes out; then the farm's held ballots are released, which changes the
    // numbers: publication is refused until a new draft is shown.
    run.at(DAY + 60);
    assert_eq!(run.post("results/draft", json!({}), &org).await.status, 200);
    let held: Vec<i64> = farm
        .iter()
        .map(|r| r.body["seq"].as_i64().unwrap())
        .collect();
    let released = run
        .post(
            "review/decisions",
            json!({"action": "release", "seqs": held, "reason": "复核后确认为真实投票"}),
            &org,
        )
        .await;
    assert_eq!(released.status, 200, "{}", released.text);
    run.at(8 * DAY + 60);
    run.post("results/publish", json!({}), &org)
        .await
        .assert_error(409, "results_changed_since_draft");
    run.post("results/draft", json!({}), &org)
        .await
        .assert_error(409, "publicity_ended");
    // Extending the publicity period (on the record) lets the new draft be shown.
    let t =
        |s: i64| chrono::DateTime::from_timestamp(chrono::Utc::now().timestamp() + s, 0).unwrap();
    let extended = app
        .patch(
            &format!("/api/v1/admin/campaigns/{id}"),
            &json!({"phases": [
                {"phase": "nomination", "starts_at": t(-2 * DAY), "ends_at": t(-3600)},
                {"phase": "voting", "starts_at": t(-3600), "ends_at": t(DAY)},
                {"phase": "publicity", "starts_at": t(DAY), "ends_at": t(15 * DAY)}]}),
            Some(&org),
        )
        .await;
    assert_eq!(extended.status, 200, "{}", extended.text);
    assert_eq!(run.post("results/draft", json!({}), &org).await.status, 200);
    run.at(15 * DAY + 60);
    let published = run.post("results/publish", json!({}), &org).await;
    assert_eq!(published.status, 200, "{}", published.text);
    let 丙 = &published.body["results"]["categories"][0]["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "医生丙")
        .unwrap()
        .clone();
    assert_eq!(丙["votes"], 7, "2 honest votes and the farm's 5, released");
    let (code, out) = python_verifier(app, &id);
    assert_eq!(code, 0, "{out}");
}

/// Experts submit scores while organizers assign experts and rename categories, all at
/// once: every request succeeds (no deadlock between the chain's head and the campaign row).
async fn experts_score_while_organizers_change_the_campaign(backend: Backend) {
    let run = Run::start(backend).await;
    let (app, id, org) = (&run.app, run.id.clone(), run.org.clone());
    let category =
        app.get(&format!("/api/v1/campaigns/{id}"), None).await.body["categories"][0]["id"]
            .as_str()
            .unwrap()
            .to_string();
    let scores = (0..5).flat_map(|e| (0..4).map(move |c| (e, c)));
    let scoring = futures_util::future::join_all(
        scores.map(|(e, c)| run.score(e, c, 40 + e as i64, 20 + c as i64)),
    );
    let organizing = futures_util::future::join_all((0..10).map(|i| {
        let (id, category, org) = (id.clone(), category.clone(), org.clone());
        async move {
            if i % 2 == 0 {
                app.post(
                    &format!("/api/v1/admin/campaigns/{id}/experts"),
                    &json!({"username": format!("expert{}", i % 5), "category_ids": [category]}),
                    Some(&org),
                )
                .await
            } else {
                app.patch(
                    &format!("/api/v1/admin/campaigns/{id}/categories/{category}"),
                    &json!({"name": format!("医生{i}")}),
                    Some(&org),
                )
                .await
            }
        }
    }));
    let (scored, organized) = futures_util::join!(scoring, organizing);
    for r in scored {
        assert_eq!(r.status, 201, "{}", r.text);
    }
    for r in organized {
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let progress = app
        .get(&format!("/api/v1/admin/campaigns/{id}/experts"), Some(&org))
        .await;
    for e in progress.body["items"].as_array().unwrap() {
        assert_eq!(e["scored"], 4, "{e}");
    }
}

/// Twenty objections at once from one address under a limit of three an hour: three are
/// received, seventeen refused with `Retry-After`, and three are on the record.
async fn objections_from_one_address_are_rate_limited_exactly(backend: Backend) {
    let run = Run::start_with(backend, &[("rate_objections_per_ip", "3/hour")]).await;
    run.at(DAY + 60);
    assert_eq!(
        run.post("results/draft", json!({}), &run.org).await.status,
        200
    );
    let path = format!("/api/v1/campaigns/{}/objections", run.id);
    let bodies: Vec<Value> = (0..20)
        .map(|i| json!({"contact": format!("1380013{i:04}"), "content": format!("第{i}条异议：请核实事迹")}))
        .collect();
    let replies: Vec<Reply> =
        futures_util::future::join_all(bodies.iter().map(|b| run.app.post(&path, b, None))).await;
    let received = replies.iter().filter(|r| r.status == 201).count();
    assert_eq!(received, 3);
    for r in replies.iter().filter(|r| r.status != 201) {
        r.assert_error(429, "rate_limited");
        assert!(r.headers.contains_key("retry-after"));
    }
    let listed = run
        .app
        .get(
            &format!("/api/v1/admin/campaigns/{}/objections", run.id),
            Some(&run.org),
        )
        .await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 3);
}

/// Runs `tools/verify_results.py` against the app; its exit code and output.
pub fn python_verifier(app: &TestApp, campaign: &str) -> (i32, String) {
    let out = std::process::Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tools/verify_results.py"
        ))
        .args(["--base-url", &app.address, "--campaign", campaign])
        .output()
        .expect("python3 runs");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// A campaign published after its publicity period, with held ballots and expert scores.
async fn published(backend: Backend) -> Run {
    let run = Run::start(backend).await;
    run.vote().await;
    run.score_all().await;
    run.at(DAY + 60);
    assert_eq!(
        run.post("results/draft", json!({}), &run.org).await.status,
        200
    );
    run.at(8 * DAY + 60);
    let p = run.post("results/publish", json!({}), &run.org).await;
    assert_eq!(p.status, 200, "{}", p.text);
    run
}

async fn a_tampered_database_is_rejected_by_both_verifiers(backend: Backend) {
    let run = published(backend).await;
    let (app, id) = (&run.app, run.id.clone());
    let cid: i64 = id.parse().unwrap();
    let verify = || async {
        minyi::app::verify::from_store(app.services.store.as_ref(), cid)
            .await
            .unwrap()
    };
    assert!(verify().await.ok());
    assert_eq!(python_verifier(app, &id).0, 0);

    // The results served are edited: 乙 gets 30 votes instead of 3.
    app.raw_sql(&format!(
        "UPDATE results SET body = REPLACE(body, '\"votes\":3,', '\"votes\":30,') WHERE campaign_id = {id} AND stage = 'final'"
    ))
    .await;
    let served = app
        .get(&format!("/api/v1/campaigns/{id}/results"), None)
        .await;
    assert!(served.text.contains("\"votes\":30"), "{}", served.text);
    let report = verify().await;
    let problem = report.problem.expect("the edit is found");
    assert!(
        problem.reason.contains("votes: published 30, recount 3"),
        "{}",
        problem.reason
    );
    let (code, out) = python_verifier(app, &id);
    assert_eq!(code, 1, "{out}");

    // Put it back; now a held ballot is counted in the chain's own text.
    app.raw_sql(&format!(
        "UPDATE results SET body = REPLACE(body, '\"votes\":30,', '\"votes\":3,') WHERE campaign_id = {id}"
    ))
    .await;
    assert!(verify().await.ok());
    let held = app
        .raw_sql_rows(&format!(
            "SELECT CAST(MIN(seq) AS TEXT) FROM audit_entries WHERE campaign_id = {id} AND kind = 'ballot' AND body LIKE '%quarantined%'"
        ))
        .await[0][0]
        .clone();
    app.raw_sql(&format!(
        "UPDATE audit_entries SET body = REPLACE(body, '\"quarantined\"', '\"counted\"') WHERE campaign_id = {id} AND seq = {held}"
    ))
    .await;
    let problem = verify().await.problem.expect("the edit is found");
    assert_eq!(problem.seq.to_string(), held);
    let (code, out) = python_verifier(app, &id);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(&held), "{out}");
}

/// What a new user verifies first: the demo's published campaign, with held and invalidated
/// ballots, five experts and an answered objection.
async fn the_demo_publishes_a_campaign_that_both_verifiers_accept(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = minyi::demo::seed_published(&app.services).await.unwrap();
    assert_eq!(
        minyi::demo::seed_published(&app.services).await.unwrap(),
        id
    );
    let results = app
        .get(&format!("/api/v1/campaigns/{id}/results"), None)
        .await;
    assert_eq!(results.status, 200, "{}", results.text);
    let winners: Vec<&str> = results.body["results"]["categories"][0]["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["winner"] == true)
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(winners, ["周海燕", "吴春梅", "郑玉兰"]);
    let statuses = app
        .raw_sql_rows(&format!(
            "SELECT status, CAST(COUNT(*) AS TEXT) FROM ballots WHERE campaign_id = {id} GROUP BY status ORDER BY status"
        ))
        .await;
    assert_eq!(
        statuses,
        [
            ["counted", "464"],
            ["invalidated", "8"],
            ["quarantined", "4"]
        ]
    );
    let report = minyi::app::verify::from_store(app.services.store.as_ref(), id)
        .await
        .unwrap();
    assert!(report.ok(), "{:?}", report.problem);
    let (code, out) = python_verifier(&app, &id.to_string());
    assert_eq!(code, 0, "{out}");
}

/// An evaluation without a publicity period: published straight after its window, its
/// scores per target worked by hand and recounted from the rating entries by both verifiers.
async fn an_evaluation_publishes_its_scores_and_both_verifiers_recount_them(backend: Backend) {
    let t0 = chrono::Utc::now().timestamp();
    let clock = Arc::new(AtomicI64::new(t0));
    let at = clock.clone();
    let app = TestApp::spawn_opts(
        backend,
        TestOptions {
            overrides: &[("dev_login", "true"), ("sms_sender", "false")],
            database_url: None,
            redis_url: None,
            redis_prefix: None,
            clock: Some(Arc::new(move || {
                chrono::DateTime::from_timestamp(at.load(Ordering::SeqCst), 0).unwrap()
            })),
        },
    )
    .await;
    let org = app.staff("eval.organizer", Role::Organizer).await;
    let time = |s: i64| chrono::DateTime::from_timestamp(t0 + s, 0).unwrap();
    let c = app
        .post(
            "/api/v1/admin/campaigns",
            &json!({"kind": "evaluation", "title": "2026年度万人双评议",
                "phases": [{"phase": "voting", "starts_at": time(-3600), "ends_at": time(3600)}]}),
            Some(&org),
        )
        .await;
    assert_eq!(c.status, 201, "{}", c.text);
    let id = c.body["id"].as_str().unwrap().to_string();
    let target = |body: Value| {
        let (app, org, id) = (&app, &org, &id);
        async move {
            app.post(
                &format!("/api/v1/admin/campaigns/{id}/targets"),
                &body,
                Some(org),
            )
            .await
            .body["id"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    let hospital = target(json!({"name": "示例市人民医院", "code": "H01"})).await;
    let clinic = target(json!({"name": "东山镇卫生院", "code": "H02"})).await;
    let emergency =
        target(json!({"name": "急诊科", "code": "H01-JZ", "parent_id": hospital})).await;
    app.post(
        &format!("/api/v1/admin/campaigns/{id}/open"),
        &json!({}),
        Some(&org),
    )
    .await;
    // Citizens (weight 40): the hospital 3 × 满意 and 1 × 基本满意; the clinic 1 × 不满意;
    // a supervisor (weight 10) rates the hospital 不满意.
    let citizens = app.dev_citizens("oRater", 4).await;
    let levels = ["satisfied", "satisfied", "satisfied", "basically_satisfied"];
    for (token, level) in citizens.iter().zip(levels) {
        let r = app
            .post(
                &format!("/api/v1/campaigns/{id}/ratings"),
                &json!({"target_id": hospital, "level": level}),
                Some(token),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    app.post(
        &format!("/api/v1/campaigns/{id}/ratings"),
        &json!({"target_id": clinic, "level": "unsatisfied", "comment": "候诊时间太长"}),
        Some(&citizens[0]),
    )
    .await;
    let supervisor = app
        .rater(
            "eval.supervisor",
            minyi::domain::rating::RaterGroup::Supervisor,
        )
        .await;
    let r = app
        .post(
            &format!("/api/v1/admin/campaigns/{id}/ratings"),
            &json!({"target_id": hospital, "level": "unsatisfied"}),
            Some(&supervisor),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);

    let publish_path = format!("/api/v1/admin/campaigns/{id}/results/publish");
    let empty = json!({});
    let publish = || app.post(&publish_path, &empty, Some(&org));
    publish().await.assert_error(409, "voting_not_ended");
    clock.store(t0 + 3601, Ordering::SeqCst);
    let published = publish().await;
    assert_eq!(published.status, 200, "{}", published.text);
    // The hospital: public (300 + 60) / 4 = 90, supervisor 0; (40 × 90 + 10 × 0) / 50 = 72.00;
    // rate 4 / 5. The clinic: 0.00 and 0.0000. The department: nothing rated.
    let targets = published.body["results"]["evaluation"]["targets"]
        .as_array()
        .unwrap()
        .clone();
    let row = |t: &Value| {
        (
            t["code"].as_str().unwrap().to_string(),
            t["rated"].as_u64().unwrap(),
            t["satisfaction_rate"].clone(),
            t["weighted_score"].clone(),
        )
    };
    assert_eq!(
        targets.iter().map(row).collect::<Vec<_>>(),
        vec![
            ("H01".to_string(), 5, json!("0.8000"), json!("72.00")),
            ("H02".to_string(), 1, json!("0.0000"), json!("0.00")),
            ("H01-JZ".to_string(), 0, Value::Null, Value::Null),
        ]
    );
    assert_eq!(targets[0]["groups"][0]["group"], "public");
    assert_eq!(targets[0]["groups"][1]["weight"], 10);
    let _ = emergency;

    // Sealed: an import of survey records is refused; both verifiers recount the scores.
    app.post(
        &format!("/api/v1/admin/campaigns/{id}/survey-records"),
        &json!({"records": [{"phone": "13800138000", "target_id": hospital, "visited_on": "2026-11-20"}]}),
        Some(&org),
    )
    .await
    .assert_error(409, "campaign_published");
    let report = minyi::app::verify::from_store(app.services.store.as_ref(), id.parse().unwrap())
        .await
        .unwrap();
    assert!(report.ok(), "{:?}", report.problem);
    assert_eq!(report.results.len(), 1);
    let (code, out) = python_verifier(&app, &id);
    assert_eq!(code, 0, "{out}");
    let csv = app
        .client
        .get(app.url(&format!("/api/v1/campaigns/{id}/results.csv")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        csv.contains("H01,示例市人民医院,,5,3,1,1,0.8000,72.00"),
        "{csv}"
    );
    let page = app
        .client
        .get(app.url(&format!("/campaigns/{id}/results")))
        .send()
        .await
        .unwrap();
    let html = page.text().await.unwrap();
    assert!(html.contains("72.00") && html.contains("<svg"), "{html}");
}

/// The outsider's verifier has tests of its own (hand-worked rankings, every kind of
/// tampering); they run with the suite.
#[test]
fn the_python_verifier_passes_its_own_tests() {
    let out = std::process::Command::new("python3")
        .args([
            "-m",
            "unittest",
            "discover",
            "-s",
            "tools",
            "-p",
            "test_*.py",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
