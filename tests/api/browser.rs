//! The survey page in a real headless Chromium (the system's `chromium` and `chromedriver`,
//! which `.ci/run` installs): open the link of an SMS, choose a level, write a comment,
//! submit, see the thanks, and find the rating counted. A screenshot is saved under
//! `target/screenshots/` and its path printed.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{ClientBuilder, Locator};
use minyi::app::sms;
use serde_json::json;

use crate::helpers::*;
use crate::surveys::{Capture, import, setup, target_score, token_of};

/// chromedriver on a free port, stopped when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver is not installed: apt-get install -y chromium chromium-driver (as .ci/run does)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A headless Chromium session in a phone-sized window, and its driver.
async fn chromium(height: u32) -> (Driver, fantoccini::Client) {
    let driver = Driver::start();
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({"binary": "/usr/bin/chromium", "args": [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-dev-shm-usage", format!("--window-size=420,{height}")]}),
    );
    let browser = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a Chromium session");
    (driver, browser)
}

/// Saves the page as `target/screenshots/{name}` and prints where.
async fn screenshot(
    browser: &fantoccini::Client,
    name: &str,
) -> Result<(), fantoccini::error::CmdError> {
    let png = browser.screenshot().await?;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, &png).unwrap();
    println!("screenshot: {} ({} bytes)", path.display(), png.len());
    Ok(())
}

/// The results page in Chromium: during the publicity period a citizen reads the draft and
/// objects through its form; after publication the page shows each category's chart, the
/// snapshot hash the API gives, and how to verify.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_results_page_takes_an_objection_then_shows_the_published_results() {
    use crate::results::{DAY, Run};
    let run = Run::start(Backend::Sqlite).await;
    run.vote().await;
    run.score_all().await;
    run.at(DAY + 60);
    assert_eq!(
        run.post("results/draft", json!({}), &run.org).await.status,
        200
    );
    let page = run.app.url(&format!("/campaigns/{}/results", run.id));

    let (_driver, browser) = chromium(1400).await;
    let outcome = async {
        browser.goto(&page).await?;
        let badge = browser.find(Locator::Css(".badge")).await?.text().await?;
        assert!(badge.contains("拟表彰名单"), "{badge}");
        let listed = browser.find_all(Locator::Css("tbody tr")).await?;
        assert_eq!(listed.len(), 2, "the two proposed winners");
        browser
            .find(Locator::Css("input[name=contact]"))
            .await?
            .send_keys("13800138000")
            .await?;
        browser
            .find(Locator::Css("textarea[name=content]"))
            .await?
            .send_keys("请核实医生甲的事迹材料")
            .await?;
        browser
            .find(Locator::Css("form button"))
            .await?
            .click()
            .await?;
        let answer = browser.find(Locator::Id("answer")).await?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while answer.text().await?.is_empty() {
            assert!(Instant::now() < deadline, "no answer after objecting");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(answer.text().await?.contains("已收到您的异议"));
        screenshot(&browser, "results-publicity.png").await?;
        Ok::<_, fantoccini::error::CmdError>(())
    }
    .await;
    if let Err(e) = outcome {
        let _ = browser.close().await;
        panic!("the publicity page works in Chromium: {e}");
    }

    // The objection reached the organizers; answered, the results are published.
    let listed = run
        .app
        .get(
            &format!("/api/v1/admin/campaigns/{}/objections", run.id),
            Some(&run.org),
        )
        .await;
    assert_eq!(listed.body["items"][0]["contact"], "13800138000");
    let objection = listed.body["items"][0]["id"].as_str().unwrap().to_string();
    run.at(8 * DAY + 60);
    run.post(
        &format!("objections/{objection}/answer"),
        json!({"verdict": "rejected", "answer": "经核实，事迹材料属实"}),
        &run.org,
    )
    .await;
    let published = run.post("results/publish", json!({}), &run.org).await;
    assert_eq!(published.status, 200, "{}", published.text);
    let snapshot = published.body["snapshot_hash"]
        .as_str()
        .unwrap()
        .to_string();

    let outcome = async {
        browser.goto(&page).await?;
        let badge = browser.find(Locator::Css(".badge")).await?.text().await?;
        assert_eq!(badge, "评选结果");
        let bars = browser.find_all(Locator::Css("svg.chart rect")).await?;
        assert_eq!(bars.len(), 4, "a bar per approved candidate");
        let shown = browser.find(Locator::Id("snapshot")).await?.text().await?;
        assert_eq!(shown, snapshot);
        let first = browser
            .find(Locator::Css("tbody tr.winner td:nth-child(3)"))
            .await?
            .text()
            .await?;
        assert_eq!(first, "医生甲");
        screenshot(&browser, "results-published.png").await?;
        Ok::<_, fantoccini::error::CmdError>(())
    }
    .await;
    let _ = browser.close().await;
    outcome.expect("the results page works in Chromium");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_citizen_answers_the_survey_page_in_a_real_browser() {
    let (app, id, org, emergency) = setup(Backend::Sqlite).await;
    import(&app, &id, &org, &emergency, &["13800138000"]).await;
    let gateway = Capture::default();
    sms::send_due(
        &app.services,
        &gateway,
        &sms::throttle(10),
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    let token = token_of(&gateway.sent.lock().unwrap()[0].2);

    let (_driver, browser) = chromium(900).await;
    let outcome = async {
        browser.goto(&app.url(&format!("/s/{token}"))).await?;
        let heading = browser.find(Locator::Css("h1")).await?.text().await?;
        assert_eq!(heading, "就医满意度回访");
        let visit = browser.find(Locator::Css(".visit")).await?.text().await?;
        assert!(visit.contains("示例市人民医院 急诊科"), "{visit}");
        // Submitting needs a level first.
        let submit = browser.find(Locator::Id("submit")).await?;
        assert_eq!(submit.attr("disabled").await?.as_deref(), Some("true"));
        browser
            .find(Locator::Css("input[value=basically_satisfied]"))
            .await?
            .click()
            .await?;
        browser
            .find(Locator::Css("textarea"))
            .await?
            .send_keys("挂号窗口排队较长，希望增加自助机")
            .await?;
        submit.click().await?;
        let thanks = browser.wait().for_element(Locator::Id("thanks")).await?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while !thanks.is_displayed().await? {
            assert!(Instant::now() < deadline, "no thanks after submitting");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(thanks.text().await?.contains("感谢您的评价"));
        screenshot(&browser, "survey-answered.png").await?;
        Ok::<_, fantoccini::error::CmdError>(())
    }
    .await;
    let _ = browser.close().await;
    outcome.expect("the survey page works in Chromium");

    // The answer is counted: one 基本满意 of the department by a service object.
    let dept = target_score(&app, &id, &org, &emergency).await;
    assert_eq!(
        (
            &dept["rated"],
            &dept["basically_satisfied"],
            &dept["groups"][0]["group"]
        ),
        (&json!(1), &json!(1), &json!("service_object"))
    );
}
