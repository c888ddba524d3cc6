//! SMS callback surveys: each imported record gets one SMS with a one-time link; the link
//! opens a small page and answers once, as a rating of the `service_object` group.

use std::sync::Mutex;

use async_trait::async_trait;
use minyi::app::sms::{self, Failure, Gateway, GatewayError, Known, Round, StatusQuery};
use minyi::domain::staff::Role;
use minyi::store::ClaimedToken;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(
    a_survey_sms_is_sent_once_and_answered_once,
    failed_sends_are_retried_with_backoff_and_interrupted_ones_settled_by_asking,
    a_claim_given_back_is_queued_again_and_late_outcomes_change_nothing,
    an_unknown_send_whose_survey_was_answered_is_sent_and_never_sent_again,
    a_send_again_after_an_unknown_outcome_carries_the_first_link
);

/// A gateway that keeps what it was asked to send, or refuses with `refuse`; asked about a
/// send, it answers from what it kept.
#[derive(Default)]
pub struct Capture {
    pub sent: Mutex<Vec<(i64, String, String)>>,
    pub refuse: Mutex<Option<GatewayError>>,
}

#[async_trait]
impl Gateway for Capture {
    fn name(&self) -> &'static str {
        "capture"
    }

    async fn send(&self, record_id: i64, phone: &str, link: &str) -> Result<(), GatewayError> {
        if let Some(e) = self.refuse.lock().unwrap().clone() {
            return Err(e);
        }
        self.sent
            .lock()
            .unwrap()
            .push((record_id, phone.to_string(), link.to_string()));
        Ok(())
    }

    async fn status(&self, q: &StatusQuery<'_>) -> Result<Known, GatewayError> {
        let sent = self.sent.lock().unwrap();
        Ok(if sent.iter().any(|(id, _, _)| *id == q.record_id) {
            Known::Accepted
        } else {
            Known::NoRecord
        })
    }

    fn settle(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }
}

/// An evaluation with 示例市人民医院 › 急诊科; the app sends nothing by itself.
pub async fn setup(backend: Backend) -> (TestApp, String, String, String) {
    let app = TestApp::spawn_with(backend, &[("sms_sender", "false")]).await;
    let org = app.staff("sms.organizer", Role::Organizer).await;
    let now = chrono::Utc::now();
    let c = app
        .post(
            "/api/v1/admin/campaigns",
            &json!({"kind": "evaluation", "title": "短信回访",
                    "phases": [{"phase": "voting", "starts_at": now - chrono::Duration::hours(1), "ends_at": now + chrono::Duration::days(30)}]}),
            Some(&org),
        )
        .await;
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
            t.body["id"].as_str().unwrap().to_string()
        }
    };
    let hospital = target(json!({"name": "示例市人民医院", "code": "H01"})).await;
    let emergency =
        target(json!({"name": "急诊科", "code": "H01-JZ", "parent_id": hospital})).await;
    app.post(
        &format!("/api/v1/admin/campaigns/{id}/open"),
        &json!({}),
        Some(&org),
    )
    .await;
    (app, id, org, emergency)
}

pub async fn import(app: &TestApp, id: &str, org: &str, target: &str, phones: &[&str]) {
    let day = chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .date_naive()
        .to_string();
    let records: Vec<Value> = phones
        .iter()
        .map(|p| json!({"phone": p, "target_id": target, "visited_on": day}))
        .collect();
    let r = app
        .post(
            &format!("/api/v1/admin/campaigns/{id}/survey-records"),
            &json!({"records": records}),
            Some(org),
        )
        .await;
    assert_eq!(r.body["imported"], phones.len(), "{}", r.text);
}

/// One target's line of the campaign's scores.
pub async fn target_score(app: &TestApp, id: &str, org: &str, target: &str) -> Value {
    let scores = app
        .get(&format!("/api/v1/admin/campaigns/{id}/scores"), Some(org))
        .await;
    scores.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["target_id"] == target)
        .unwrap()
        .clone()
}

pub fn token_of(link: &str) -> String {
    link.rsplit('/').next().unwrap().to_string()
}

async fn answer(app: &TestApp, token: &str, level: &str, comment: &str) -> Reply {
    app.post(
        &format!("/api/v1/surveys/{token}"),
        &json!({"level": level, "comment": comment}),
        None,
    )
    .await
}

async fn a_survey_sms_is_sent_once_and_answered_once(backend: Backend) {
    let (app, id, org, emergency) = setup(backend).await;
    import(
        &app,
        &id,
        &org,
        &emergency,
        &["13800138000", "13900001111", "13700002222"],
    )
    .await;
    let gateway = Capture::default();
    let throttle = sms::throttle(100);
    let now = chrono::Utc::now();
    let round = sms::send_due(&app.services, &gateway, &throttle, now)
        .await
        .unwrap();
    assert_eq!(
        round,
        Round {
            sent: 3,
            ..Round::default()
        }
    );
    // Nothing is sent twice.
    let again = sms::send_due(&app.services, &gateway, &throttle, now)
        .await
        .unwrap();
    assert_eq!(again, Round::default());
    let sent = gateway.sent.lock().unwrap().clone();
    let phones: Vec<&str> = sent.iter().map(|(_, p, _)| p.as_str()).collect();
    assert_eq!(phones, ["13800138000", "13900001111", "13700002222"]);
    let tokens: Vec<String> = sent.iter().map(|(_, _, l)| token_of(l)).collect();
    assert!(sent[0].2.starts_with("http://127.0.0.1:8080/s/"));
    assert!(tokens.iter().all(|t| t.len() == 32));
    // Only the tokens' hashes are kept once sent (the sealed token, kept for a send again,
    // is dropped).
    let stored = app
        .raw_sql_rows(
            "SELECT token_hash, send_status, COALESCE(token_enc, '') FROM survey_records ORDER BY id",
        )
        .await;
    assert!(
        stored
            .iter()
            .all(|r| r[1] == "sent" && !tokens.contains(&r[0]) && r[2].is_empty())
    );

    // The page shows the visit; the answer counts once, in the service-object group.
    let page = app
        .client
        .get(app.url(&format!("/s/{}", tokens[0])))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("示例市人民医院 急诊科"), "{html}");
    assert!(html.contains("基本满意"));
    let first = answer(&app, &tokens[0], "unsatisfied", "候诊时间太长").await;
    assert_eq!(first.status, 201, "{}", first.text);
    assert_eq!(first.body["group"], "service_object");
    assert!(first.body["opinion_id"].is_string());
    answer(&app, &tokens[0], "satisfied", "")
        .await
        .assert_error(409, "survey_already_answered");
    let done = app
        .client
        .get(app.url(&format!("/s/{}", tokens[0])))
        .send()
        .await
        .unwrap();
    assert!(done.text().await.unwrap().contains("您已完成本次回访评价"));
    // Unknown links.
    answer(&app, &"0".repeat(32), "satisfied", "")
        .await
        .assert_error(404, "not_found");
    let unknown = app.client.get(app.url("/s/nonsense")).send().await.unwrap();
    assert_eq!(unknown.status(), 404);
    assert!(unknown.text().await.unwrap().contains("链接无效"));

    // Twenty taps at once on one link: one rating.
    let racing =
        futures_util::future::join_all((0..20).map(|_| answer(&app, &tokens[1], "satisfied", "")))
            .await;
    assert_eq!(racing.iter().filter(|r| r.status == 201).count(), 1);
    assert!(
        racing
            .iter()
            .filter(|r| r.status != 201)
            .all(|r| r.code() == "survey_already_answered")
    );

    // An expired link.
    app.raw_sql(&format!(
        "UPDATE survey_records SET expires_at = '2000-01-01T00:00:00+00:00' WHERE token_hash = '{}'",
        sms::token_hash(&tokens[2])
    ))
    .await;
    let late = answer(&app, &tokens[2], "satisfied", "").await;
    assert_eq!(late.status, 410, "{}", late.text);
    late.assert_error(410, "survey_expired");
    let expired = app
        .client
        .get(app.url(&format!("/s/{}", tokens[2])))
        .send()
        .await
        .unwrap();
    assert_eq!(expired.status(), 410);
    assert!(expired.text().await.unwrap().contains("已过期"));

    let dept = target_score(&app, &id, &org, &emergency).await;
    assert_eq!(dept["groups"][0]["group"], "service_object");
    assert_eq!(dept["groups"][0]["channel"], "sms");
    assert_eq!(dept["rated"], 2);
}

async fn failed_sends_are_retried_with_backoff_and_interrupted_ones_settled_by_asking(
    backend: Backend,
) {
    let (app, id, org, emergency) = setup(backend).await;
    import(&app, &id, &org, &emergency, &["13800138000"]).await;
    let gateway = Capture::default();
    let throttle = sms::throttle(100);
    let now = chrono::Utc::now();
    // The gateway throttles us: queued again, half a minute later.
    *gateway.refuse.lock().unwrap() = Some(GatewayError::new("LimitExceeded", Failure::Retryable));
    let r = sms::send_due(&app.services, &gateway, &throttle, now)
        .await
        .unwrap();
    assert_eq!(r.retried, 1);
    let row = app
        .raw_sql_rows("SELECT send_status, last_error, CAST(attempts AS TEXT) FROM survey_records")
        .await;
    assert_eq!(row[0], ["queued", "LimitExceeded", "1"]);
    assert_eq!(
        sms::send_due(&app.services, &gateway, &throttle, now)
            .await
            .unwrap(),
        Round::default()
    );
    // Due after the backoff, and the gateway answers: sent.
    *gateway.refuse.lock().unwrap() = None;
    let later = now + chrono::Duration::minutes(2);
    assert_eq!(
        sms::send_due(&app.services, &gateway, &throttle, later)
            .await
            .unwrap()
            .sent,
        1
    );
    assert_eq!(gateway.sent.lock().unwrap().len(), 1);

    // A refusal for good (a bad number at the gateway) fails at once.
    import(&app, &id, &org, &emergency, &["13900001111"]).await;
    *gateway.refuse.lock().unwrap() = Some(GatewayError::new("InvalidPhoneNumber", Failure::Final));
    assert_eq!(
        sms::send_due(&app.services, &gateway, &throttle, later)
            .await
            .unwrap()
            .failed,
        1
    );

    // A claim whose instance died mid-send: its outcome is unknown, so the gateway is asked
    // before anything else happens. It never got it: queued again, then sent once.
    import(&app, &id, &org, &emergency, &["13700002222"]).await;
    let claimed = app
        .services
        .store
        .claim_sends(
            later,
            later + chrono::Duration::minutes(2),
            &[sms::fresh_token(&app.services.vault).1],
            later + chrono::Duration::days(1),
        )
        .await
        .unwrap();
    assert_eq!(claimed.sends.len(), 1);
    *gateway.refuse.lock().unwrap() = None;
    let after = later + chrono::Duration::minutes(5);
    assert_eq!(
        sms::send_due(&app.services, &gateway, &throttle, after)
            .await
            .unwrap(),
        Round {
            requeued: 1,
            ..Round::default()
        }
    );
    assert_eq!(gateway.sent.lock().unwrap().len(), 1);
    let next = after + chrono::Duration::minutes(1);
    assert_eq!(
        sms::send_due(&app.services, &gateway, &throttle, next)
            .await
            .unwrap()
            .sent,
        1
    );
    let statuses = app
        .raw_sql_rows("SELECT send_status, last_error FROM survey_records ORDER BY id")
        .await;
    assert_eq!(
        statuses,
        [
            vec!["sent".to_string(), String::new()],
            vec!["failed".into(), "InvalidPhoneNumber".into()],
            vec!["sent".into(), String::new()],
        ]
    );

    // Stopped again, this time after the gateway took it: asked, it has it. Sent, and the
    // person gets it once.
    app.raw_sql(
        "UPDATE survey_records SET send_status = 'sending', sent_at = NULL, \
         next_attempt_at = '2000-01-01T00:00:00+00:00' WHERE id = (SELECT MAX(id) FROM survey_records)",
    )
    .await;
    assert_eq!(
        sms::send_due(&app.services, &gateway, &throttle, next)
            .await
            .unwrap(),
        Round {
            confirmed: 1,
            ..Round::default()
        }
    );
    let sent = gateway.sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1].1, "13700002222");
    let last = app
        .raw_sql_rows("SELECT send_status, CAST(attempts AS TEXT) FROM survey_records ORDER BY id DESC LIMIT 1")
        .await;
    assert_eq!(last, [["sent", "2"]]);
}

/// A round too slow for its lease gives its remaining claims back; an outcome recorded
/// after another instance moved the send on (a late refusal, a late status answer) changes
/// nothing.
async fn a_claim_given_back_is_queued_again_and_late_outcomes_change_nothing(backend: Backend) {
    let (app, id, org, emergency) = setup(backend).await;
    import(&app, &id, &org, &emergency, &["13800138000"]).await;
    let store = &app.services.store;
    let now = chrono::Utc::now();
    let tokens = [sms::fresh_token(&app.services.vault).1];
    let claim = || {
        store.claim_sends(
            now,
            now + chrono::Duration::minutes(2),
            &tokens,
            now + chrono::Duration::days(1),
        )
    };
    let claimed = claim().await.unwrap().sends;
    store.release_send(claimed[0].id, now).await.unwrap();
    let row = || {
        app.raw_sql_rows(
            "SELECT send_status, CAST(attempts AS TEXT), COALESCE(last_error, '') FROM survey_records",
        )
    };
    assert_eq!(row().await, [["queued", "0", ""]]);
    // Queued: neither a late refusal nor a late status answer moves it.
    store
        .mark_send_failed(claimed[0].id, "LimitExceeded", None)
        .await
        .unwrap();
    let late = minyi::store::Settled::Failed { reason: "late" };
    store
        .settle_unknown_send(claimed[0].id, &late)
        .await
        .unwrap();
    assert_eq!(row().await, [["queued", "0", ""]]);
    // Claimed again, its attempt counts once, and it keeps its token.
    let again = claim().await.unwrap().sends;
    assert_eq!(again[0].attempts, 1);
    assert!(matches!(again[0].token, ClaimedToken::Kept { .. }));
}

/// A gateway that takes every send and, while `silent`, never answers; its records never
/// show a send (as when the carriers' receipts are late): asked, it has no record.
#[derive(Default)]
struct Forgetful {
    /// (record, link) of every send it took.
    sent: Mutex<Vec<(i64, String)>>,
    silent: Mutex<bool>,
}

#[async_trait]
impl Gateway for Forgetful {
    fn name(&self) -> &'static str {
        "forgetful"
    }

    async fn send(&self, record_id: i64, _phone: &str, link: &str) -> Result<(), GatewayError> {
        self.sent
            .lock()
            .unwrap()
            .push((record_id, link.to_string()));
        if *self.silent.lock().unwrap() {
            return Err(GatewayError::new(
                "timeout: outcome unknown",
                Failure::Unanswered,
            ));
        }
        Ok(())
    }

    async fn status(&self, _q: &StatusQuery<'_>) -> Result<Known, GatewayError> {
        Ok(Known::NoRecord)
    }

    fn settle(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }
}

async fn send_statuses(app: &TestApp) -> Vec<String> {
    app.raw_sql_rows("SELECT send_status FROM survey_records ORDER BY id")
        .await
        .into_iter()
        .map(|r| r[0].clone())
        .collect()
}

/// The SMS went out but the gateway never said so, and its records do not show it; the
/// person answered the survey. The answer is the best proof of delivery there is: the send is
/// `sent`, whatever the gateway says, and no second SMS goes out.
async fn an_unknown_send_whose_survey_was_answered_is_sent_and_never_sent_again(backend: Backend) {
    let (app, id, org, emergency) = setup(backend).await;
    import(&app, &id, &org, &emergency, &["13800138000"]).await;
    let gateway = Forgetful::default();
    *gateway.silent.lock().unwrap() = true;
    let throttle = sms::throttle(100);
    let now = chrono::Utc::now();
    let r = sms::send_due(&app.services, &gateway, &throttle, now)
        .await
        .unwrap();
    assert_eq!(r.unknown, 1);
    assert_eq!(send_statuses(&app).await, ["unknown"]);
    let token = token_of(&gateway.sent.lock().unwrap()[0].1);
    let answered = answer(&app, &token, "satisfied", "").await;
    assert_eq!(answered.status, 201, "{}", answered.text);

    // Its status query is due, and the gateway has no record of it: sent all the same.
    let r = sms::send_due(
        &app.services,
        &gateway,
        &throttle,
        now + chrono::Duration::minutes(1),
    )
    .await
    .unwrap();
    assert_eq!(
        r,
        Round {
            answered: 1,
            ..Round::default()
        }
    );
    assert_eq!(send_statuses(&app).await, ["sent"]);
    // Nothing more, ever.
    for hours in [1, 5, 30] {
        let later = now + chrono::Duration::hours(hours);
        let r = sms::send_due(&app.services, &gateway, &throttle, later)
            .await
            .unwrap();
        assert_eq!(r, Round::default());
    }
    assert_eq!(gateway.sent.lock().unwrap().len(), 1);
    answer(&app, &token, "satisfied", "")
        .await
        .assert_error(409, "survey_already_answered");
}

/// Two sends of unknown outcome that the gateway has no record of are queued again. A send
/// again carries the first link, which keeps working (the first SMS may have arrived after
/// all); and one whose first link was answered meanwhile is not sent again.
async fn a_send_again_after_an_unknown_outcome_carries_the_first_link(backend: Backend) {
    let (app, id, org, emergency) = setup(backend).await;
    import(&app, &id, &org, &emergency, &["13800138000", "13900001111"]).await;
    let gateway = Forgetful::default();
    *gateway.silent.lock().unwrap() = true;
    let throttle = sms::throttle(100);
    let minutes = chrono::Duration::minutes;
    let now = chrono::Utc::now();
    let r = sms::send_due(&app.services, &gateway, &throttle, now)
        .await
        .unwrap();
    assert_eq!(r.unknown, 2);
    let first: Vec<(i64, String)> = gateway.sent.lock().unwrap().clone();
    let r = sms::send_due(&app.services, &gateway, &throttle, now + minutes(1))
        .await
        .unwrap();
    assert_eq!(r.requeued, 2, "{r:?}");
    assert_eq!(send_statuses(&app).await, ["queued", "queued"]);
    // The second person got the first SMS after all, and answers it.
    let answered = answer(&app, &token_of(&first[1].1), "satisfied", "").await;
    assert_eq!(answered.status, 201, "{}", answered.text);

    *gateway.silent.lock().unwrap() = false;
    let r = sms::send_due(&app.services, &gateway, &throttle, now + minutes(3))
        .await
        .unwrap();
    assert_eq!(
        r,
        Round {
            sent: 1,
            answered: 1,
            ..Round::default()
        }
    );
    assert_eq!(send_statuses(&app).await, ["sent", "sent"]);
    // Sent, the records keep no token to send again.
    let kept = app
        .raw_sql_rows(
            "SELECT CAST(COUNT(*) AS TEXT) FROM survey_records WHERE token_enc IS NOT NULL",
        )
        .await;
    assert_eq!(kept, [["0"]]);
    let sent = gateway.sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 3);
    // The first person's second SMS is the first one again: one link, which still works.
    assert_eq!(sent[2], first[0]);
    let page = app
        .client
        .get(app.url(&format!("/s/{}", token_of(&first[0].1))))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    // Nothing more.
    let r = sms::send_due(&app.services, &gateway, &throttle, now + minutes(120))
        .await
        .unwrap();
    assert_eq!(r, Round::default());
    assert_eq!(gateway.sent.lock().unwrap().len(), 3);
}

/// `Capture`, with status queries that take `delay`.
#[derive(Default)]
struct SlowStatus {
    inner: Capture,
    delay: std::time::Duration,
}

#[async_trait]
impl Gateway for SlowStatus {
    fn name(&self) -> &'static str {
        "slow-status"
    }

    async fn send(&self, record_id: i64, phone: &str, link: &str) -> Result<(), GatewayError> {
        self.inner.send(record_id, phone, link).await
    }

    async fn status(&self, q: &StatusQuery<'_>) -> Result<Known, GatewayError> {
        tokio::time::sleep(self.delay).await;
        self.inner.status(q).await
    }

    fn settle(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }
}

/// A round whose status queries are slow still sends what is queued: each phase takes its
/// own time, so the sends' leases start when the sends do. The round starts from a time 59 s
/// old — as if its queries had already taken that long — and its one query takes 2 s more:
/// with one time for the whole round, the sends' lease looked a second from its margin and
/// every claim was given back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_sends_still_go_out_after_slow_status_queries() {
    let (app, id, org, emergency) = setup(Backend::Sqlite).await;
    import(&app, &id, &org, &emergency, &["13800138000", "13900001111"]).await;
    // The first was claimed by an instance that stopped: asked about first. The second is
    // queued, and due.
    app.raw_sql(
        "UPDATE survey_records SET send_status = 'sending', attempts = 1, \
         next_attempt_at = '2000-01-01T00:00:00+00:00' WHERE id = (SELECT MIN(id) FROM survey_records)",
    )
    .await;
    app.raw_sql(
        "UPDATE survey_records SET next_attempt_at = '2000-01-01T00:00:00+00:00' WHERE send_status = 'queued'",
    )
    .await;
    let gateway = SlowStatus {
        delay: std::time::Duration::from_secs(2),
        ..SlowStatus::default()
    };
    let started = std::time::Instant::now();
    let stale = chrono::Utc::now() - chrono::Duration::seconds(59);
    let r = sms::send_due(&app.services, &gateway, &sms::throttle(100), stale)
        .await
        .unwrap();
    assert!(started.elapsed() >= gateway.delay);
    assert_eq!(r.sent, 1, "{r:?}");
    let sent = gateway.inner.sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].1, "13900001111");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_evaluation_gives_survey_links_a_new_user_can_answer() {
    let app = TestApp::spawn_with(Backend::Sqlite, &[("sms_sender", "false")]).await;
    let (id, links) = minyi::demo::seed_evaluation(&app.services).await.unwrap();
    assert_eq!(links.len(), 3);
    let token = token_of(&links[0]);
    let page = app
        .client
        .get(app.url(&format!("/s/{token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("示例市人民医院"));
    let r = answer(&app, &token, "satisfied", "").await;
    assert_eq!(r.status, 201, "{}", r.text);
    // Seeded once: a second run finds it and sends nothing new.
    let (again, none) = minyi::demo::seed_evaluation(&app.services).await.unwrap();
    assert_eq!((again, none.len()), (id, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_records_come_in_as_units_report_them_in_csv() {
    let (app, id, org, _) = setup(Backend::Sqlite).await;
    let day = chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .date_naive()
        .to_string();
    let csv = format!(
        "手机号,对象编码,就诊日期\n13800138000,H01-JZ,{day}\n1380013800,H01,{day}\n13900001111,H99,{day}\n13700002222,H01,{day}\n"
    );
    let upload = |bytes: Vec<u8>| {
        let (app, id, org) = (&app, &id, &org);
        async move {
            app.upload(
                &format!("/api/v1/admin/campaigns/{id}/survey-records/import"),
                bytes,
                org,
            )
            .await
        }
    };
    let r = upload(csv.into_bytes()).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["imported"], 2);
    assert_eq!(
        r.body["rejected"],
        json!([{"row": 3, "reason": "手机号码格式不正确（须为11位大陆手机号）"}, {"row": 4, "reason": "对象编码不存在"}])
    );
    upload(b"phone\n13800138000\n".to_vec())
        .await
        .assert_error(422, "import_rejected");
    let queued = app
        .raw_sql_rows("SELECT send_status FROM survey_records")
        .await;
    assert_eq!(
        queued,
        [vec!["queued".to_string()], vec!["queued".to_string()]]
    );
}
