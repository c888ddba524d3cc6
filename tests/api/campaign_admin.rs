//! Organizers run campaigns through the API, and every step is on the audit chain.

use minyi::app::verify;
use minyi::domain::staff::Role;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(
    a_campaign_is_built_from_scratch_and_every_step_is_in_the_chain,
    bad_windows_and_rules_are_refused_naming_the_field,
    a_gbk_csv_imports_candidates_and_one_bad_row_imports_nothing,
    targets_form_a_tree_from_the_api_and_csv,
    unit_handlers_nominate_only_for_their_own_unit,
    entries_follow_the_visibility_rule,
);

fn kinds(entries: &[Value]) -> Vec<String> {
    entries
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect()
}

async fn a_campaign_is_built_from_scratch_and_every_step_is_in_the_chain(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let org = app.staff("li.organizer", Role::Organizer).await;
    let (id, cat) = app.selection_campaign(&org, "live").await;
    // A draft is invisible to citizens.
    app.get(&format!("/api/v1/campaigns/{id}"), None)
        .await
        .assert_error(404, "not_found");

    let nominate = |name: &str| json!({"category_id": cat, "name": name, "unit": "示例市人民医院", "department": "护理部"});
    let a = app
        .post(
            &format!("/api/v1/admin/campaigns/{id}/candidates"),
            &nominate("张护士"),
            Some(&org),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    assert_eq!(a.body["status"], "nominated");
    assert_eq!(a.body["number"], 1);
    let b = app
        .post(
            &format!("/api/v1/admin/campaigns/{id}/candidates"),
            &nominate("李护士"),
            Some(&org),
        )
        .await;
    assert_eq!(b.body["number"], 2);
    let (a_id, b_id) = (
        a.body["id"].as_str().unwrap(),
        b.body["id"].as_str().unwrap(),
    );

    let approved = app
        .post(
            &format!("/api/v1/admin/campaigns/{id}/candidates/{a_id}/approve"),
            &json!({}),
            Some(&org),
        )
        .await;
    assert_eq!(approved.body["status"], "approved", "{}", approved.text);
    app.post(
        &format!("/api/v1/admin/campaigns/{id}/candidates/{b_id}/reject"),
        &json!({}),
        Some(&org),
    )
    .await
    .assert_error(422, "invalid_request");
    let rejected = app
        .post(
            &format!("/api/v1/admin/campaigns/{id}/candidates/{b_id}/reject"),
            &json!({"reason": "材料不全"}),
            Some(&org),
        )
        .await;
    assert_eq!(rejected.body["reason"], "材料不全");
    app.post(
        &format!("/api/v1/admin/campaigns/{id}/candidates/{b_id}/approve"),
        &json!({}),
        Some(&org),
    )
    .await
    .assert_error(409, "invalid_status_change");

    let patched = app
        .patch(
            &format!("/api/v1/admin/campaigns/{id}"),
            &json!({"title": "2026年度十佳护士评选"}),
            Some(&org),
        )
        .await;
    assert_eq!(
        patched.body["title"], "2026年度十佳护士评选",
        "{}",
        patched.text
    );
    let opened = app
        .post(
            &format!("/api/v1/admin/campaigns/{id}/open"),
            &json!({}),
            Some(&org),
        )
        .await;
    assert_eq!(opened.body["draft"], false);
    assert_eq!(opened.body["current_phase"], "voting");

    // Citizens now see the campaign and only the approved candidate.
    let list = app
        .get(&format!("/api/v1/campaigns/{id}/candidates"), None)
        .await;
    let names: Vec<&str> = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["张护士"]);

    // Withdrawal after approval, and a second number is never reused.
    app.post(
        &format!("/api/v1/admin/campaigns/{id}/candidates/{a_id}/withdraw"),
        &json!({"reason": "本人申请退出"}),
        Some(&org),
    )
    .await;
    let c = app
        .post(
            &format!("/api/v1/admin/campaigns/{id}/candidates"),
            &nominate("王护士"),
            Some(&org),
        )
        .await;
    assert_eq!(c.body["number"], 3);

    let entries = app.entries(&id, &org).await;
    assert_eq!(
        kinds(&entries),
        [
            "campaign.created",
            "category.created",
            "candidate.nominated",
            "candidate.nominated",
            "candidate.status_changed",
            "candidate.status_changed",
            "campaign.updated",
            "campaign.opened",
            "candidate.status_changed",
            "candidate.nominated",
        ]
    );
    let seqs: Vec<i64> = entries.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (1..=10).collect::<Vec<_>>());
    for e in &entries {
        assert_eq!(e["body"]["actor"]["username"], "li.organizer");
        assert_eq!(e["body"]["actor"]["role"], "organizer");
    }
    assert_eq!(entries[6]["body"]["changed"], json!(["title"]));
    assert_eq!(entries[8]["body"]["candidate"]["status"], "withdrawn");
    assert_eq!(entries[8]["body"]["candidate"]["reason"], "本人申请退出");
    let head = app
        .get(&format!("/api/v1/campaigns/{id}/audit/head"), None)
        .await;
    assert_eq!(head.body["seq"], 10);
    assert_eq!(head.body["hash"], entries[9]["hash"]);

    let report = verify::from_store(app.services.store.as_ref(), id.parse().unwrap())
        .await
        .unwrap();
    assert!(report.ok(), "{:?}", report.problem);
    assert_eq!(report.entries, 10);
    assert!(report.state_compared);
}

async fn bad_windows_and_rules_are_refused_naming_the_field(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let org = app.staff("zhao.organizer", Role::Organizer).await;
    let create = |extra: Value| {
        let mut body = json!({"kind": "selection", "title": "评选"});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    let cases = [
        (
            json!({"phases": [{"phase": "voting", "starts_at": "2026-07-02T00:00:00+08:00", "ends_at": "2026-07-01T00:00:00+08:00"}]}),
            "phases[0].ends_at",
        ),
        (
            json!({"phases": [
            {"phase": "voting", "starts_at": "2026-06-01T00:00:00Z", "ends_at": "2026-06-10T00:00:00Z"},
            {"phase": "nomination", "starts_at": "2026-06-20T00:00:00Z", "ends_at": "2026-06-30T00:00:00Z"}]}),
            "phases[0].starts_at",
        ),
        (
            json!({"phases": [
            {"phase": "nomination", "starts_at": "2026-06-01T00:00:00Z", "ends_at": "2026-06-10T00:00:00Z"},
            {"phase": "voting", "starts_at": "2026-06-05T00:00:00Z", "ends_at": "2026-06-30T00:00:00Z"}]}),
            "phases[1].starts_at",
        ),
        (
            json!({"rules": {"votes_per_day": 3, "votes_per_candidate_per_day": 5, "max_candidates_per_ballot": 1, "votes_per_campaign": null, "show_counts": "live"}}),
            "rules.votes_per_candidate_per_day",
        ),
        (json!({"timezone": "Asia/Beijing"}), "timezone"),
        (json!({"title": ""}), "title"),
    ];
    for (extra, field) in cases {
        let r = app
            .post("/api/v1/admin/campaigns", &create(extra), Some(&org))
            .await;
        r.assert_error(422, "invalid_request");
        assert_eq!(r.body["error"]["field"], field, "{}", r.text);
    }
    // An unknown kind or rule name is refused too.
    app.post(
        "/api/v1/admin/campaigns",
        &json!({"kind": "poll", "title": "x"}),
        Some(&org),
    )
    .await
    .assert_error(422, "invalid_request");
    // A patch is checked against the rest of the settings; nothing changes on refusal.
    let (id, _) = app.selection_campaign(&org, "live").await;
    let before = app.entries(&id, &org).await.len();
    let r = app
        .patch(&format!("/api/v1/admin/campaigns/{id}"), &json!({"phases": [{"phase": "voting", "starts_at": "2026-07-02T00:00:00Z", "ends_at": "2026-07-01T00:00:00Z"}]}), Some(&org))
        .await;
    assert_eq!(r.body["error"]["field"], "phases[0].ends_at");
    assert_eq!(
        app.entries(&id, &org).await.len(),
        before,
        "no entry for a refused change"
    );
    // A draft without phases cannot open.
    let bare = app
        .post(
            "/api/v1/admin/campaigns",
            &json!({"kind": "selection", "title": "无阶段"}),
            Some(&org),
        )
        .await;
    let bare_id = bare.body["id"].as_str().unwrap();
    app.post(
        &format!("/api/v1/admin/campaigns/{bare_id}/open"),
        &json!({}),
        Some(&org),
    )
    .await
    .assert_error(422, "invalid_request");
}

fn gbk(text: &str) -> Vec<u8> {
    encoding_rs::GBK.encode(text).0.into_owned()
}

async fn a_gbk_csv_imports_candidates_and_one_bad_row_imports_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let org = app.staff("sun.organizer", Role::Organizer).await;
    let (id, _) = app.selection_campaign(&org, "live").await;
    let path = format!("/api/v1/admin/campaigns/{id}/candidates/import");

    let bad = gbk(
        "类别,姓名,单位,科室\r\n护士,陈静,示例市中医医院,儿科\r\n医生,刘明,示例县人民医院,急诊科\r\n护士,,示例县人民医院,产科\r\n",
    );
    let r = app.upload(&path, bad, &org).await;
    r.assert_error(422, "import_rejected");
    let rows: Vec<i64> = r.body["error"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["row"].as_i64().unwrap())
        .collect();
    assert_eq!(rows, [3, 4], "{}", r.text);
    let all = app
        .get(
            &format!("/api/v1/admin/campaigns/{id}/candidates"),
            Some(&org),
        )
        .await;
    assert_eq!(
        all.body["items"].as_array().unwrap().len(),
        0,
        "nothing half-imported"
    );

    let good = gbk(
        "类别,姓名,单位,科室,职称,事迹\r\n护士,陈静,示例市中医医院,儿科,主管护师,\"扎根儿科二十年，\n守护患儿\"\r\n护士,周海燕,示例县人民医院,产科,护师,\r\n",
    );
    let r = app.upload(&path, good, &org).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["imported"], 2);
    let items = r.body["items"].as_array().unwrap();
    assert_eq!(items[0]["name"], "陈静");
    assert_eq!(items[0]["unit"], "示例市中医医院");
    assert_eq!(items[0]["story"], "扎根儿科二十年，\n守护患儿");
    assert_eq!(items[1]["number"], 2);

    // UTF-8 with a BOM works too; the entries name the file.
    let r = app
        .upload(
            &path,
            "\u{feff}category,name,unit\n护士,吴玉兰,青石村卫生室\n"
                .as_bytes()
                .to_vec(),
            &org,
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let entries = app.entries(&id, &org).await;
    let imported: Vec<&Value> = entries
        .iter()
        .filter(|e| e["body"]["import"].is_object())
        .collect();
    assert_eq!(imported.len(), 3);
    assert_eq!(
        imported[0]["body"]["import"]["file_sha256"]
            .as_str()
            .unwrap()
            .len(),
        64
    );

    // Approving the imported candidates through the API shows them to citizens.
    for item in items {
        let cid = item["id"].as_str().unwrap();
        app.post(
            &format!("/api/v1/admin/campaigns/{id}/candidates/{cid}/approve"),
            &json!({}),
            Some(&org),
        )
        .await;
    }
    app.post(
        &format!("/api/v1/admin/campaigns/{id}/open"),
        &json!({}),
        Some(&org),
    )
    .await;
    let visible = app
        .get(&format!("/api/v1/campaigns/{id}/candidates"), None)
        .await;
    assert_eq!(visible.body["items"].as_array().unwrap().len(), 2);
    // A wrong content type is refused.
    let r = Reply::from(
        app.client
            .post(app.url(&path))
            .bearer_auth(&org)
            .json(&json!({}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    r.assert_error(415, "unsupported_media_type");
}

async fn targets_form_a_tree_from_the_api_and_csv(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let org = app.staff("qian.organizer", Role::Organizer).await;
    let r = app
        .post("/api/v1/admin/campaigns", &json!({"kind": "evaluation", "title": "2026年度万人双评议",
            "phases": [{"phase": "voting", "starts_at": "2026-01-01T00:00:00Z", "ends_at": "2030-01-01T00:00:00Z"}]}), Some(&org))
        .await;
    let id = r.body["id"].as_str().unwrap().to_string();
    let hospital = app
        .post(
            &format!("/api/v1/admin/campaigns/{id}/targets"),
            &json!({"name": "示例市人民医院", "code": "H01"}),
            Some(&org),
        )
        .await;
    assert_eq!(hospital.status, 201, "{}", hospital.text);
    let hid = hospital.body["id"].as_str().unwrap();
    let dept = app
        .post(
            &format!("/api/v1/admin/campaigns/{id}/targets"),
            &json!({"name": "心内科", "parent_id": hid}),
            Some(&org),
        )
        .await;
    assert_eq!(dept.body["parent_id"], hid);

    let csv =
        gbk("编码,名称,上级编码\r\nH02,示例县人民医院,\r\nH02-1,急诊科,H02\r\nH01-9,儿科,H01\r\n");
    let r = app
        .upload(
            &format!("/api/v1/admin/campaigns/{id}/targets/import"),
            csv,
            &org,
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let child_first = gbk("编码,名称,上级编码\r\nX-1,科室,X\r\nX,医院,\r\n");
    let r = app
        .upload(
            &format!("/api/v1/admin/campaigns/{id}/targets/import"),
            child_first,
            &org,
        )
        .await;
    r.assert_error(422, "import_rejected");
    assert_eq!(r.body["error"]["rows"][0]["row"], 2);

    app.post(
        &format!("/api/v1/admin/campaigns/{id}/open"),
        &json!({}),
        Some(&org),
    )
    .await;
    let t = app
        .get(&format!("/api/v1/campaigns/{id}/targets"), None)
        .await;
    let items = t.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 5);
    let parent_of = |code: &str| {
        let item = items.iter().find(|i| i["code"] == code).unwrap();
        let pid = item["parent_id"].as_str().map(str::to_string);
        pid.map(|p| {
            items.iter().find(|i| i["id"] == p.as_str()).unwrap()["code"]
                .as_str()
                .unwrap()
                .to_string()
        })
    };
    assert_eq!(parent_of("H02-1").as_deref(), Some("H02"));
    assert_eq!(parent_of("H01-9").as_deref(), Some("H01"));
    assert_eq!(parent_of("H02"), None);
    // Candidates do not belong in an evaluation.
    app.post(
        &format!("/api/v1/admin/campaigns/{id}/candidates"),
        &json!({"category_id": "1", "name": "x", "unit": "y"}),
        Some(&org),
    )
    .await
    .assert_error(409, "wrong_campaign_kind");
    let report = verify::from_store(app.services.store.as_ref(), id.parse().unwrap())
        .await
        .unwrap();
    assert!(report.ok(), "{:?}", report.problem);
}

async fn unit_handlers_nominate_only_for_their_own_unit(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let org = app.staff("he.organizer", Role::Organizer).await;
    let handler = app.staff("unit.handler", Role::UnitHandler).await; // unit 示例市人民医院
    let (id, cat) = app.selection_campaign(&org, "live").await;
    let path = format!("/api/v1/admin/campaigns/{id}/candidates");
    let own = app
        .post(
            &path,
            &json!({"category_id": cat, "name": "许医生"}),
            Some(&handler),
        )
        .await;
    assert_eq!(own.status, 201, "{}", own.text);
    assert_eq!(own.body["unit"], "示例市人民医院");
    app.post(
        &path,
        &json!({"category_id": cat, "name": "冯医生", "unit": "示例县人民医院"}),
        Some(&handler),
    )
    .await
    .assert_error(403, "forbidden");
    let cid = own.body["id"].as_str().unwrap();
    app.post(&format!("{path}/{cid}/approve"), &json!({}), Some(&handler))
        .await
        .assert_error(403, "forbidden");
}

async fn entries_follow_the_visibility_rule(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let org = app.staff("ma.organizer", Role::Organizer).await;
    let (live, _) = app.selection_campaign(&org, "live").await;
    let (hidden, _) = app.selection_campaign(&org, "rank_only").await;
    for id in [&live, &hidden] {
        app.post(
            &format!("/api/v1/admin/campaigns/{id}/open"),
            &json!({}),
            Some(&org),
        )
        .await;
        assert_eq!(
            app.get(&format!("/api/v1/campaigns/{id}/audit/head"), None)
                .await
                .status,
            200
        );
    }
    assert_eq!(
        app.get(&format!("/api/v1/campaigns/{live}/audit/entries"), None)
            .await
            .status,
        200
    );
    app.get(&format!("/api/v1/campaigns/{hidden}/audit/entries"), None)
        .await
        .assert_error(409, "audit_entries_hidden");
    assert_eq!(
        app.get(
            &format!("/api/v1/campaigns/{hidden}/audit/entries"),
            Some(&org)
        )
        .await
        .status,
        200
    );
    let export = app
        .get(&format!("/api/v1/campaigns/{live}/audit/export"), None)
        .await;
    assert_eq!(export.status, 200);
    assert_eq!(export.text.lines().count(), 3);
    let report = verify::from_reader(std::io::Cursor::new(export.text.clone())).unwrap();
    assert!(report.ok() && report.entries == 3, "{report:?}");
}
