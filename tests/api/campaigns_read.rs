//! Citizens' read routes over the demo campaign.

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(the_demo_campaign_can_be_browsed_searched_and_paged);

async fn the_demo_campaign_can_be_browsed_searched_and_paged(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = minyi::demo::seed(app.services.store.as_ref())
        .await
        .unwrap();
    // Seeding twice does not make a second campaign.
    assert_eq!(
        minyi::demo::seed(app.services.store.as_ref())
            .await
            .unwrap(),
        id
    );

    let list = app.get("/api/v1/campaigns", None).await;
    assert_eq!(list.status, 200);
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);
    let c = app.get(&format!("/api/v1/campaigns/{id}"), None).await;
    assert_eq!(c.body["title"], minyi::demo::DEMO_TITLE);
    assert_eq!(c.body["current_phase"], "voting");
    assert_eq!(c.body["kind"], "selection");
    let cats = c.body["categories"].as_array().unwrap();
    assert_eq!(
        cats.iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["医生", "护士", "乡村医生"]
    );

    // Paging through all 36 candidates, 10 at a time, gives each number once, in order.
    let mut numbers = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = app
            .get(
                &format!("/api/v1/campaigns/{id}/candidates?limit=10&cursor={cursor}"),
                None,
            )
            .await;
        assert_eq!(page.status, 200, "{}", page.text);
        for item in page.body["items"].as_array().unwrap() {
            numbers.push(item["number"].as_i64().unwrap());
        }
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = next.to_string(),
            None => break,
        }
    }
    assert_eq!(numbers, (1..=36).collect::<Vec<_>>());

    // Filter by category, search by name, unit and number.
    let nurses = cats[1]["id"].as_str().unwrap();
    let r = app
        .get(
            &format!("/api/v1/campaigns/{id}/candidates?category_id={nurses}&limit=100"),
            None,
        )
        .await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 12);
    let r = app
        .get(
            &format!("/api/v1/campaigns/{id}/candidates?q=%E7%8E%8B&limit=100"),
            None,
        )
        .await;
    assert!(
        r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["name"].as_str().unwrap().contains('王'))
    );
    assert_eq!(r.body["items"].as_array().unwrap().len(), 3);
    let r = app
        .get(&format!("/api/v1/campaigns/{id}/candidates?q=7"), None)
        .await;
    assert_eq!(r.body["items"][0]["number"], 7);
    let r = app
        .get(&format!("/api/v1/campaigns/{id}/candidates?q=%25"), None)
        .await;
    assert_eq!(
        r.body["items"].as_array().unwrap().len(),
        0,
        "a % is text, not a wildcard"
    );

    let one = r_candidate(&app, id).await;
    assert_eq!(one["number"], 1);
    app.get(&format!("/api/v1/campaigns/{id}/candidates?limit=0"), None)
        .await
        .assert_error(422, "invalid_request");
}

async fn r_candidate(app: &TestApp, campaign: i64) -> serde_json::Value {
    let page = app
        .get(
            &format!("/api/v1/campaigns/{campaign}/candidates?limit=1"),
            None,
        )
        .await;
    let cid = page.body["items"][0]["id"].as_str().unwrap().to_string();
    let r = app
        .get(
            &format!("/api/v1/campaigns/{campaign}/candidates/{cid}"),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    r.body
}
