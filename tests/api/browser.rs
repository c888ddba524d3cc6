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

    let driver = Driver::start();
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({"binary": "/usr/bin/chromium", "args": [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-dev-shm-usage", "--window-size=420,900"]}),
    );
    let browser = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a Chromium session");
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
        let png = browser.screenshot().await?;
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("survey-answered.png");
        std::fs::write(&path, &png).unwrap();
        println!(
            "screenshot of the answered survey: {} ({} bytes)",
            path.display(),
            png.len()
        );
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
