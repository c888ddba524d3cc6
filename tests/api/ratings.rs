//! Evaluations: ratings of units and departments by the rater groups, once per target and
//! period, with the same ledger, chain, receipts and idempotency as ballots; the scores per
//! target; and the opinions unsatisfied ratings become, answered by their unit.

use minyi::domain::rating::RaterGroup;
use minyi::domain::staff::Role;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(
    ratings_count_once_per_target_and_period_and_score_by_group,
    racing_ratings_of_one_target_record_one,
    an_unsatisfied_comment_becomes_an_opinion_its_unit_answers
);

struct Evaluation {
    id: String,
    org: String,
    /// 示例市人民医院 (code H01), its 急诊科, and 示例市中医院 (code H02).
    hospital: String,
    emergency: String,
    other: String,
}

/// An open evaluation with a small tree of targets; `rules` are merged into the defaults.
async fn evaluation(app: &TestApp, rules: Value) -> Evaluation {
    let org = app.staff("eval.organizer", Role::Organizer).await;
    evaluation_by(app, org, rules).await
}

async fn evaluation_by(app: &TestApp, org: String, rules: Value) -> Evaluation {
    let now = chrono::Utc::now();
    let mut r = json!({"votes_per_day": 10, "votes_per_candidate_per_day": 1, "max_candidates_per_ballot": 1,
                       "votes_per_campaign": null, "show_counts": "live"});
    if let (Value::Object(base), Value::Object(extra)) = (&mut r, rules) {
        base.extend(extra);
    }
    let c = app
        .post(
            "/api/v1/admin/campaigns",
            &json!({"kind": "evaluation", "title": "2026年度万人双评议", "rules": r,
                    "phases": [{"phase": "voting", "starts_at": now - chrono::Duration::hours(1), "ends_at": now + chrono::Duration::days(1)}]}),
            Some(&org),
        )
        .await;
    assert_eq!(c.status, 201, "{}", c.text);
    let id = c.body["id"].as_str().unwrap().to_string();
    let target = |body: Value| {
        let (app, org, id) = (&app, &org, &id);
        async move {
            let t = app
                .post(
                    &format!("/api/v1/admin/campaigns/{id}/targets"),
                    &body,
                    Some(org),
                )
                .await;
            assert_eq!(t.status, 201, "{}", t.text);
            t.body["id"].as_str().unwrap().to_string()
        }
    };
    let hospital = target(json!({"name": "示例市人民医院", "code": "H01"})).await;
    let emergency =
        target(json!({"name": "急诊科", "code": "H01-JZ", "parent_id": hospital})).await;
    let other = target(json!({"name": "示例市中医院", "code": "H02"})).await;
    let opened = app
        .post(
            &format!("/api/v1/admin/campaigns/{id}/open"),
            &json!({}),
            Some(&org),
        )
        .await;
    assert_eq!(opened.status, 200, "{}", opened.text);
    Evaluation {
        id,
        org,
        hospital,
        emergency,
        other,
    }
}

async fn rate(
    app: &TestApp,
    e: &Evaluation,
    token: &str,
    target: &str,
    level: &str,
    comment: &str,
) -> Reply {
    app.post(
        &format!("/api/v1/campaigns/{}/ratings", e.id),
        &json!({"target_id": target, "level": level, "comment": comment}),
        Some(token),
    )
    .await
}

async fn rate_as_staff(
    app: &TestApp,
    e: &Evaluation,
    token: &str,
    target: &str,
    level: &str,
) -> Reply {
    app.post(
        &format!("/api/v1/admin/campaigns/{}/ratings", e.id),
        &json!({"target_id": target, "level": level}),
        Some(token),
    )
    .await
}

async fn scores(app: &TestApp, e: &Evaluation) -> Vec<Value> {
    let s = app
        .get(
            &format!("/api/v1/admin/campaigns/{}/scores", e.id),
            Some(&e.org),
        )
        .await;
    assert_eq!(s.status, 200, "{}", s.text);
    s.body["items"].as_array().unwrap().clone()
}

async fn ratings_count_once_per_target_and_period_and_score_by_group(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("dev_login", "true")]).await;
    let e = evaluation(&app, json!({})).await;
    let citizens = app.dev_citizens("oRater", 4).await;
    // Three satisfied and one basically satisfied citizens rate the hospital.
    for (t, level) in
        citizens
            .iter()
            .zip(["satisfied", "satisfied", "satisfied", "basically_satisfied"])
    {
        let r = rate(&app, &e, t, &e.hospital, level, "").await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(r.body["group"], "public");
        assert_eq!(
            r.body["period"],
            chrono::Utc::now()
                .with_timezone(&chrono_tz::Asia::Shanghai)
                .format("%Y-%m")
                .to_string()
        );
    }
    // Once per target and period: again is 409 already_rated; another target is fine.
    rate(&app, &e, &citizens[0], &e.hospital, "unsatisfied", "")
        .await
        .assert_error(409, "already_rated");
    assert_eq!(
        rate(&app, &e, &citizens[0], &e.emergency, "satisfied", "")
            .await
            .status,
        201
    );
    // A supervisor account rates in its own group; an account that is no rater cannot.
    let supervisor = app.rater("jiandu.li", RaterGroup::Supervisor).await;
    let s = rate_as_staff(&app, &e, &supervisor, &e.hospital, "unsatisfied").await;
    assert_eq!(s.status, 201, "{}", s.text);
    assert_eq!(s.body["group"], "supervisor");
    rate_as_staff(&app, &e, &supervisor, &e.hospital, "satisfied")
        .await
        .assert_error(409, "already_rated");
    rate_as_staff(&app, &e, &e.org, &e.hospital, "satisfied")
        .await
        .assert_error(403, "forbidden");
    // Bad input.
    rate(&app, &e, &citizens[1], &e.hospital, "great", "")
        .await
        .assert_error(422, "invalid_request");
    rate(&app, &e, &citizens[1], "999999", "satisfied", "")
        .await
        .assert_error(422, "invalid_request");

    // Scores: public (3 × 100 + 60) / 4 = 90, rate 1; supervisor 0 of 100, rate 0;
    // weighted (public 40, supervisor 10) (40 × 90 + 10 × 0) / 50 = 72.
    let items = scores(&app, &e).await;
    let hospital = items.iter().find(|t| t["target_id"] == e.hospital).unwrap();
    assert_eq!(
        (
            &hospital["rated"],
            &hospital["satisfied"],
            &hospital["basically_satisfied"],
            &hospital["unsatisfied"]
        ),
        (&json!(5), &json!(3), &json!(1), &json!(1))
    );
    assert_eq!(hospital["satisfaction_rate"], "0.8000");
    assert_eq!(hospital["weighted_score"], "72.00");
    let groups: Vec<(&Value, &Value, &Value)> = hospital["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (&g["group"], &g["score"], &g["weight"]))
        .collect();
    assert_eq!(
        groups,
        [
            (&json!("public"), &json!("90.00"), &json!(40)),
            (&json!("supervisor"), &json!("0.00"), &json!(10))
        ]
    );
    let other = items.iter().find(|t| t["target_id"] == e.other).unwrap();
    assert_eq!(
        (&other["rated"], &other["satisfaction_rate"]),
        (&json!(0), &Value::Null)
    );

    // Every rating is in the chain with its group; its receipt is public.
    let entries = app.entries(&e.id, &e.org).await;
    let ratings: Vec<&Value> = entries.iter().filter(|x| x["kind"] == "rating").collect();
    assert_eq!(ratings.len(), 6);
    let receipt = s.body["receipt"].as_str().unwrap();
    let r = app.get(&format!("/api/v1/receipts/{receipt}"), None).await;
    assert_eq!(
        (&r.body["kind"], &r.body["status"]),
        (&json!("rating"), &json!("counted"))
    );
    let report = minyi::app::verify::from_store(app.services.store.as_ref(), e.id.parse().unwrap())
        .await
        .unwrap();
    assert!(report.ok(), "{:?}", report.problem);
}

async fn racing_ratings_of_one_target_record_one(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("dev_login", "true")]).await;
    let e = evaluation(&app, json!({"votes_per_day": 2})).await;
    let voter = app.dev_citizen("oRacer").await;
    let url = app.url(&format!("/api/v1/campaigns/{}/ratings", e.id));
    // Fifty at once, half with one key, half with none: one rating of the target.
    let replies = futures_util::future::join_all((0..50).map(|i| {
        let mut req = app
            .client
            .post(&url)
            .bearer_auth(&voter)
            .json(&json!({"target_id": e.hospital, "level": "satisfied"}));
        if i % 2 == 0 {
            req = req.header("Idempotency-Key", "rate-once");
        }
        async move { Reply::from(req.send().await.unwrap()).await }
    }))
    .await;
    let created: Vec<&Reply> = replies.iter().filter(|r| r.status == 201).collect();
    let receipts: std::collections::HashSet<&str> = created
        .iter()
        .map(|r| r.body["receipt"].as_str().unwrap())
        .collect();
    assert_eq!(
        receipts.len(),
        1,
        "one rating, given again to repeats of its key"
    );
    assert!(
        replies
            .iter()
            .all(|r| r.status == 201 || r.code() == "already_rated")
    );
    // The day's limit holds across targets: a second target, then the third is refused.
    assert_eq!(
        rate(&app, &e, &voter, &e.other, "satisfied", "")
            .await
            .status,
        201
    );
    let third = rate(&app, &e, &voter, &e.emergency, "satisfied", "").await;
    third.assert_error(429, "daily_quota_exhausted");
    assert!(third.body["error"]["resets_at"].is_string());
    let items = scores(&app, &e).await;
    let rated: i64 = items.iter().map(|t| t["rated"].as_i64().unwrap()).sum();
    assert_eq!(rated, 2);
}

async fn an_unsatisfied_comment_becomes_an_opinion_its_unit_answers(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("dev_login", "true")]).await;
    let e = evaluation(&app, json!({})).await;
    let voter = app.dev_citizen("oComplainer").await;
    // Rated on the department: the hospital (the top of its tree) answers.
    let r = rate(
        &app,
        &e,
        &voter,
        &e.emergency,
        "unsatisfied",
        " 夜间急诊等候两小时无人分诊 ",
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let opinion_id = r.body["opinion_id"]
        .as_str()
        .expect("an opinion")
        .to_string();
    // A satisfied comment, or an unsatisfied rating without one, is no opinion.
    let other = app.dev_citizen("oPraiser").await;
    let praise = rate(&app, &e, &other, &e.emergency, "satisfied", "医生很耐心").await;
    assert_eq!(praise.body["opinion_id"], Value::Null);

    let (_, handler) = app
        .staff_with("h01.handler", Role::UnitHandler, Some("H01"))
        .await;
    let (_, stranger) = app
        .staff_with("h02.handler", Role::UnitHandler, Some("H02"))
        .await;
    let list = app
        .get("/api/v1/admin/opinions?status=open", Some(&handler))
        .await;
    assert_eq!(list.status, 200, "{}", list.text);
    let items = list.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["comment"], "夜间急诊等候两小时无人分诊");
    assert_eq!(
        (&items[0]["unit_code"], &items[0]["status"]),
        (&json!("H01"), &json!("open"))
    );
    // Another unit's handler sees none of it, and cannot answer it.
    let theirs = app.get("/api/v1/admin/opinions", Some(&stranger)).await;
    assert_eq!(theirs.body["items"], json!([]));
    let answer = |token: String, body: Value| {
        let (app, id) = (&app, &opinion_id);
        async move {
            app.post(
                &format!("/api/v1/admin/opinions/{id}/answer"),
                &body,
                Some(&token),
            )
            .await
        }
    };
    answer(stranger.clone(), json!({"verified": true, "action": "x"}))
        .await
        .assert_error(404, "not_found");
    answer(handler.clone(), json!({"verified": true, "action": " "}))
        .await
        .assert_error(422, "invalid_request");
    // Verified and handled, then closed.
    let a = answer(
        handler.clone(),
        json!({"verified": true, "action": "已增设夜间分诊护士"}),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(
        (&a.body["status"], &a.body["verified"]),
        (&json!("answered"), &json!(true))
    );
    let closed = answer(
        handler.clone(),
        json!({"verified": true, "action": "整改完成，已回访患者", "close": true}),
    )
    .await;
    assert_eq!(closed.body["status"], "closed");
    answer(
        handler.clone(),
        json!({"verified": false, "action": "再改"}),
    )
    .await
    .assert_error(409, "invalid_status_change");
    // Each answer is on the record, naming its handler.
    let entries = app.entries(&e.id, &e.org).await;
    let answers: Vec<&Value> = entries
        .iter()
        .filter(|x| x["kind"] == "opinion.answered")
        .map(|x| &x["body"])
        .collect();
    assert_eq!(answers.len(), 2);
    assert_eq!(answers[1]["actor"]["username"], "h01.handler");
    assert_eq!(answers[1]["opinion"]["status"], "closed");
    // The comment itself is not in the chain, only its hash.
    assert!(
        !serde_json::to_string(&entries)
            .unwrap()
            .contains("无人分诊")
    );
}

on_both_backends!(the_annual_table_adds_entered_and_rated_points_and_ranks_units);

async fn enter(app: &TestApp, e: &Evaluation, body: Value) -> Reply {
    app.post(
        &format!("/api/v1/admin/campaigns/{}/annual/components", e.id),
        &body,
        Some(&e.org),
    )
    .await
}

async fn the_annual_table_adds_entered_and_rated_points_and_ranks_units(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("dev_login", "true")]).await;
    let year = chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .format("%Y")
        .to_string();
    let e = evaluation(&app, json!({})).await;
    // Citizens rate the hospital's emergency department: network evaluation, for its unit.
    for t in app.dev_citizens("oAnnual", 2).await {
        assert_eq!(
            rate(&app, &e, &t, &e.emergency, "satisfied", "")
                .await
                .status,
            201
        );
    }
    for (component, points) in [
        ("duties", "14.5"),
        ("hotline", "13"),
        ("supervising_unit", "5"),
        ("inspection", "22.25"),
    ] {
        let r = enter(&app, &e, json!({"target_id": e.hospital, "year": year, "component": component, "points": points})).await;
        assert_eq!(r.status, 204, "{}", r.text);
    }
    // A correction replaces the earlier points (both stay in the chain).
    enter(
        &app,
        &e,
        json!({"target_id": e.other, "year": year, "component": "duties", "points": "9"}),
    )
    .await;
    enter(
        &app,
        &e,
        json!({"target_id": e.other, "year": year, "component": "duties", "points": "10"}),
    )
    .await;
    // Refusals name the field.
    for (body, field) in [
        (
            json!({"target_id": e.other, "year": year, "component": "duties", "points": "15.5"}),
            "points",
        ),
        (
            json!({"target_id": e.other, "year": year, "component": "duties", "points": "1.125"}),
            "points",
        ),
        (
            json!({"target_id": e.other, "year": year, "component": "network", "points": "1"}),
            "component",
        ),
        (
            json!({"target_id": e.emergency, "year": year, "component": "duties", "points": "1"}),
            "target_id",
        ),
        (
            json!({"target_id": e.other, "year": "26", "component": "duties", "points": "1"}),
            "year",
        ),
    ] {
        let r = enter(&app, &e, body).await;
        r.assert_error(422, "invalid_request");
        assert_eq!(r.body["error"]["field"], field, "{}", r.text);
    }

    // Last year's campaign, where the 中医院 led.
    let last = evaluation_by(&app, e.org.clone(), json!({})).await;
    let last_year = (year.parse::<i32>().unwrap() - 1).to_string();
    for (unit, points) in [(&last.hospital, "10"), (&last.other, "15")] {
        enter(
            &app,
            &last,
            json!({"target_id": unit, "year": last_year, "component": "duties", "points": points}),
        )
        .await;
    }
    let table = app
        .get(
            &format!(
                "/api/v1/admin/campaigns/{}/annual?year={year}&previous_campaign_id={}",
                e.id, last.id
            ),
            Some(&e.org),
        )
        .await;
    assert_eq!(table.status, 200, "{}", table.text);
    let items = table.body["items"].as_array().unwrap();
    // 人民医院: network 100 × 15 / 100 = 15, entered 14.5 + 13 + 5 + 22.25 = 54.75; 69.75 in
    // all, without service objects (no SMS survey yet): incomplete.
    let first = &items[0];
    assert_eq!(
        (&first["code"], &first["rank"], &first["total"]),
        (&json!("H01"), &json!(1), &json!("69.75"))
    );
    assert_eq!(
        first["components"],
        json!({"network": "15.00", "duties": "14.50", "hotline": "13.00",
                                            "supervising_unit": "5.00", "inspection": "22.25"})
    );
    assert_eq!(first["complete"], false);
    assert_eq!(
        first["previous"],
        json!({"total": "10.00", "rank": 2, "change": "59.75"})
    );
    assert_eq!(first["bands"], json!(["top3", "top10"]));
    let second = &items[1];
    assert_eq!(
        (&second["code"], &second["total"]),
        (&json!("H02"), &json!("10.00"))
    );
    assert_eq!(second["previous"]["rank"], 1);
    assert_eq!(items.len(), 2, "departments are not ranked");

    let csv = app
        .client
        .get(app.url(&format!(
            "/api/v1/admin/campaigns/{}/annual.csv?year={year}",
            e.id
        )))
        .bearer_auth(&e.org)
        .send()
        .await
        .unwrap();
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let text = csv.text().await.unwrap();
    assert!(
        text.starts_with("\u{feff}排名,单位编码,单位名称,服务对象满意度"),
        "{text}"
    );
    assert!(
        text.lines()
            .nth(1)
            .unwrap()
            .starts_with("1,H01,示例市人民医院,,14.50,13.00,5.00,22.25,15.00,69.75,否,前三、前十"),
        "{text}"
    );
    let scores_csv = app
        .client
        .get(app.url(&format!("/api/v1/admin/campaigns/{}/scores.csv", e.id)))
        .bearer_auth(&e.org)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        scores_csv.contains("H01-JZ,急诊科,public,40,2,2,0,0,1.0000,100.00,"),
        "{scores_csv}"
    );

    let entries = app.entries(&e.id, &e.org).await;
    let entered = entries
        .iter()
        .filter(|x| x["kind"] == "annual.component_entered")
        .count();
    assert_eq!(entered, 6);
}

on_both_backends!(service_records_are_imported_sealed_and_cleared_after_retention);

async fn service_records_are_imported_sealed_and_cleared_after_retention(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let e = evaluation(&app, json!({})).await;
    let today = chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .date_naive();
    let day = today.to_string();
    let import = |records: Value| {
        let (app, e) = (&app, &e);
        async move {
            app.post(
                &format!("/api/v1/admin/campaigns/{}/survey-records", e.id),
                &json!({"records": records}),
                Some(&e.org),
            )
            .await
        }
    };
    let r = import(json!([
        {"phone": "13800138000", "target_id": e.emergency, "visited_on": day},
        {"phone": "139 0000 1111", "target_id": e.hospital, "visited_on": day},
        {"phone": "0571-88888888", "target_id": e.hospital, "visited_on": day},
        {"phone": "+86 138-0013-8000", "target_id": e.emergency, "visited_on": day},
        {"phone": "13700001111", "target_id": "424242", "visited_on": day},
        {"phone": "13700001111", "target_id": e.hospital, "visited_on": (today + chrono::Duration::days(1)).to_string()},
        {"phone": "13700001111", "target_id": e.hospital, "visited_on": "2026/01/01"},
    ]))
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["imported"], 2);
    let reasons: Vec<(i64, &str)> = r.body["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| (x["index"].as_i64().unwrap(), x["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(
        reasons,
        [
            (2, "手机号码格式不正确（须为11位大陆手机号）"),
            (3, "与第1条重复（同一号码、对象和就诊日期）"),
            (4, "评议对象不存在"),
            (5, "就诊日期不能晚于今天"),
            (6, "就诊日期格式不正确（YYYY-MM-DD）"),
        ]
    );
    // Again: imported before.
    let again =
        import(json!([{"phone": "13800138000", "target_id": e.emergency, "visited_on": day}]))
            .await;
    assert_eq!(again.body["imported"], 0);
    assert_eq!(
        again.body["rejected"][0]["reason"],
        "已导入过（同一号码、对象和就诊日期）"
    );
    import(json!([])).await.assert_error(422, "invalid_request");

    // The number is nowhere in clear: not in the database, the chain or an answer.
    let dump = app
        .raw_sql_rows("SELECT phone_hash, phone_enc FROM survey_records ORDER BY id")
        .await;
    assert_eq!(dump.len(), 2);
    assert!(
        dump.iter()
            .flatten()
            .all(|v| !v.contains("13800138000") && !v.contains("13900001111"))
    );
    let entries = app.entries(&e.id, &e.org).await;
    let imported: Vec<&Value> = entries
        .iter()
        .filter(|x| x["kind"] == "survey.records_imported")
        .collect();
    assert_eq!(imported.len(), 1);
    assert_eq!(imported[0]["body"]["import"]["survey_records"], 2);
    let chain = serde_json::to_string(&entries).unwrap();
    assert!(!chain.contains("13800138000") && !chain.contains("13900001111"));
    assert!(!r.text.contains("13800138000") && !r.text.contains("0571"));
    // Sealed with the service's key, for this campaign only.
    let sealed = dump[0][1].clone();
    let aad = format!("campaign {}", e.id);
    assert_eq!(
        app.services.vault.open(&sealed, &aad).unwrap(),
        "13800138000"
    );

    // One is claimed for sending and not sent yet: it holds a token, kept sealed for a send
    // again.
    let now = chrono::Utc::now();
    let claimed = app
        .services
        .store
        .claim_sends(
            now,
            now + chrono::Duration::minutes(2),
            &[minyi::app::sms::fresh_token(&app.services.vault).1],
            now + chrono::Duration::days(1),
        )
        .await
        .unwrap();
    assert_eq!(claimed.sends.len(), 1);
    let kept = app
        .raw_sql_rows(
            "SELECT CAST(COUNT(*) AS TEXT) FROM survey_records WHERE token_enc IS NOT NULL",
        )
        .await;
    assert_eq!(kept, [["1"]]);

    // Past the retention period the numbers are cleared, sealed and hashed alike, and the
    // kept token with them (the record can no longer be sent).
    let cleared = app
        .services
        .store
        .purge_phones(chrono::Utc::now() + chrono::Duration::seconds(1))
        .await
        .unwrap();
    assert_eq!(cleared, 2);
    let dump = app
        .raw_sql_rows("SELECT phone_hash, phone_enc, token_enc FROM survey_records")
        .await;
    assert!(dump.iter().flatten().all(String::is_empty));
}
