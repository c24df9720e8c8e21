//! The console (`/console` on the admin listener) in a real browser: headless Chromium driven
//! through chromedriver (WebDriver, `fantoccini`). The chromedriver binary is read from
//! `HOOKGATE_TEST_CHROMEDRIVER` (`.ci/run` sets it to Debian's `/usr/bin/chromedriver`); without
//! it the browser tests say "skipped". Each test starts its own chromedriver on a free port.
//!
//! Screenshots of every page at 1280 and 390 px wide are written to
//! `<target>/console-screenshots/<page>-<width>.png`.
//!
//! Also here, without a browser: the headers the console's files are served with.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::helpers::{
    ADMIN_TOKEN, GUIDE_IDENTITY, IDENTUS_TOKEN, TestApp, connection_event, kratos_body, spawn_app,
    spawn_app_with,
};
use crate::sink::{Mode, Sink};

/// How long the browser may take to show something (a cap for a loaded CI machine; it usually
/// takes milliseconds).
const SHOW: Duration = Duration::from_secs(20);

/// The widths of the screenshots: a laptop and a phone.
const WIDTHS: [u32; 2] = [1280, 390];

/// A chromedriver of this test (killed with its browser when dropped) and a session on it.
struct Browser {
    client: Client,
    /// chromedriver, leading a process group of its own (Chromium is in it).
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The whole group: chromedriver and the browser it started.
        if let Ok(pid) = i32::try_from(self.driver.id()) {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .status();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// A headless Chromium, or `None` (after saying "skipped") when `HOOKGATE_TEST_CHROMEDRIVER`
/// is unset.
async fn browser(test: &str) -> Option<Browser> {
    let Ok(path) = std::env::var("HOOKGATE_TEST_CHROMEDRIVER") else {
        println!("{test}: HOOKGATE_TEST_CHROMEDRIVER is unset, skipped");
        return None;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let driver = {
        use std::os::unix::process::CommandExt as _;
        Command::new(&path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("HOOKGATE_TEST_CHROMEDRIVER={path} does not start: {e}"))
    };
    let profile = tempfile::tempdir().unwrap();
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({"args": [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--hide-scrollbars", "--force-device-scale-factor=1", "--window-size=1280,900",
            "--no-first-run", "--disable-extensions",
            format!("--user-data-dir={}", profile.path().display()),
        ]}),
    );
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let client = loop {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(connector)
            .capabilities(caps.clone())
            .connect(&url)
            .await
        {
            Ok(c) => break c,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("chromedriver at {url} gives no session: {e}"),
        }
    };
    Some(Browser {
        client,
        driver,
        _profile: profile,
    })
}

impl Browser {
    /// Waits for the element `css`, then for its text to contain `text`; gives the text.
    async fn text_of(&self, css: &str, text: &str) -> String {
        let deadline = Instant::now() + SHOW;
        loop {
            let got = match self.client.find(Locator::Css(css)).await {
                Ok(el) => el.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if got.contains(text) {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{css} never showed {text:?}; it shows {got:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the JavaScript expression `js` is true.
    async fn until(&self, what: &str, js: &str) {
        let deadline = Instant::now() + SHOW;
        let script = format!("return !!({js});");
        loop {
            if self.client.execute(&script, vec![]).await.unwrap() == Value::Bool(true) {
                return;
            }
            assert!(Instant::now() < deadline, "never: {what} ({js})");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn type_into(&self, id: &str, text: &str) {
        let el = self.client.find(Locator::Id(id)).await.unwrap();
        el.clear().await.unwrap();
        el.send_keys(text).await.unwrap();
    }

    async fn click(&self, css: &str) {
        let el = self
            .client
            .wait()
            .at_most(SHOW)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"));
        el.click().await.unwrap();
    }

    /// Clicks the button whose text is `text` (the first one, within `scope`).
    async fn click_button(&self, scope: &str, text: &str) {
        let xpath = format!("//{scope}//button[normalize-space(.)='{text}']");
        let el = self
            .client
            .wait()
            .at_most(SHOW)
            .for_element(Locator::XPath(&xpath))
            .await
            .unwrap_or_else(|e| panic!("no button {text:?} in {scope}: {e}"));
        el.click().await.unwrap();
    }

    async fn eval(&self, js: &str) -> Value {
        self.client.execute(js, vec![]).await.unwrap()
    }

    /// Whole-page screenshots of what is shown, at each of [`WIDTHS`].
    async fn shoot(&self, page: &str) {
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).unwrap();
        for width in WIDTHS {
            // Reading the height lays the page out at the new width.
            self.client.set_window_size(width, 900).await.unwrap();
            let height = self
                .eval("return document.documentElement.scrollHeight;")
                .await
                .as_u64()
                .unwrap_or(900)
                .clamp(600, 4000);
            self.client
                .set_window_size(width, u32::try_from(height).unwrap())
                .await
                .unwrap();
            // A frame for the paint.
            tokio::time::sleep(Duration::from_millis(50)).await;
            let png = self.client.screenshot().await.unwrap();
            std::fs::write(dir.join(format!("{page}-{width}.png")), png).unwrap();
        }
        self.client.set_window_size(1280, 900).await.unwrap();
    }

    async fn close(self) {
        let client = self.client.clone();
        let _ = client.close().await;
    }
}

/// `<target>/console-screenshots`.
fn screenshot_dir() -> PathBuf {
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(&tmp).join("console-screenshots")
}

/// Posts an Identus connection event; answers its event id.
async fn identus_event(app: &TestApp, state: &str) -> String {
    let body = connection_event(
        &uuid::Uuid::new_v4().to_string(),
        &uuid::Uuid::new_v4().to_string(),
        state,
        "2024-05-01T10:20:30.123456Z",
    );
    let res = app.identus(&body).await;
    assert_eq!(res.status(), 200, "the event is accepted");
    res.headers()["hookgate-event-id"]
        .to_str()
        .unwrap()
        .to_string()
}

async fn signed_in(b: &Browser, app: &TestApp) {
    b.client
        .goto(&format!("{}/console", app.admin))
        .await
        .unwrap();
    b.type_into("token", ADMIN_TOKEN).await;
    b.click("form.signin button[type=submit]").await;
    b.text_of("main h1", "Overview").await;
}

#[tokio::test]
async fn an_operator_signs_in_finds_an_event_retries_its_delivery_and_manages_a_hook() {
    // Arrange: one destination that fails (and waits an hour before trying again), one that
    // takes everything.
    let failing = Sink::start().await;
    failing.set(Mode::Fail);
    let ok = Sink::start().await;
    let (failing_url, ok_url) = (failing.url("/app"), ok.url("/archive"));
    // A source of this test's own for the overview's counts (kept per source id in the process).
    let probe = format!(
        "console-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let probe_path = format!("/{probe}/events");
    let app = spawn_app_with(|s| {
        let mut source = s.sources.get("identus").unwrap().clone();
        source.path = probe_path.clone();
        s.sources.insert(probe.clone(), source);
        for (id, block) in [
            (
                "app",
                json!({"kind": "http", "url": failing_url, "retry": ["1h"]}),
            ),
            ("archive", json!({"kind": "http", "url": ok_url})),
        ] {
            s.destinations
                .insert(id.into(), serde_json::from_value(block).unwrap());
        }
    })
    .await;
    let Some(b) = browser("console: an operator's round").await else {
        return;
    };
    let res = app.kratos(&kratos_body(GUIDE_IDENTITY), &[]).await;
    assert_eq!(res.status(), 200);
    let registered = res.headers()["hookgate-event-id"]
        .to_str()
        .unwrap()
        .to_string();
    let wrong = app
        .post(
            &probe_path,
            &[("authorization", "Bearer wrong-token-0000000")],
            "{}",
        )
        .await;
    assert_eq!(wrong.status(), 401);
    let probe_event = connection_event(
        &uuid::Uuid::new_v4().to_string(),
        "probe",
        "InvitationGenerated",
        "2024-05-01T10:00:00Z",
    );
    let res = app
        .post(
            &probe_path,
            &[
                ("authorization", &format!("Bearer {IDENTUS_TOKEN}")),
                ("content-type", "application/json"),
            ],
            probe_event,
        )
        .await;
    assert_eq!(res.status(), 200);
    let id = identus_event(&app, "ConnectionResponseSent").await;
    failing.wait_for(3, SHOW).await;

    // Act and assert: a wrong token is refused on the sign-in form.
    b.client
        .goto(&format!("{}/console", app.admin))
        .await
        .unwrap();
    b.type_into("token", "not-the-admin-token").await;
    b.click("form.signin button[type=submit]").await;
    b.text_of("#signin-error", "This token was refused").await;
    b.shoot("signin").await;
    assert_eq!(
        b.eval("return sessionStorage.length;").await,
        json!(0),
        "a refused token is not kept"
    );

    // The right one opens the overview; the token is in the tab's session storage only.
    b.type_into("token", ADMIN_TOKEN).await;
    b.click("form.signin button[type=submit]").await;
    b.text_of("main h1", "Overview").await;
    assert_eq!(b.eval("return localStorage.length;").await, json!(0));
    b.text_of("main section:nth-of-type(2) tbody", "archive")
        .await;
    // The test's own source: one event in the last hour, one answer 2xx and one 401.
    let probe_row = b
        .text_of(
            &format!("main section:nth-of-type(1) tbody tr[data-key='{probe}']"),
            &probe,
        )
        .await;
    let words: Vec<&str> = probe_row.split_whitespace().collect();
    assert!(
        words.ends_with(&["1", "1", "1", "0"]) && probe_row.contains(&probe_path),
        "events, …, 2xx, 4xx, 401, 5xx: {probe_row:?}"
    );
    // A refresh that brings new figures moves nothing on the page (the Layout Instability API
    // measures it, as for Core Web Vitals' CLS).
    assert_eq!(
        b.eval("return PerformanceObserver.supportedEntryTypes.includes('layout-shift');")
            .await,
        json!(true)
    );
    b.eval(
        "window.__shift = 0; new PerformanceObserver((list) => { for (const e of list.getEntries()) if (!e.hadRecentInput) window.__shift += e.value; }).observe({type: 'layout-shift'}); window.__before = document.querySelector('main .meta').textContent; return null;",
    )
    .await;
    let res = app
        .post(
            &probe_path,
            &[("authorization", "Bearer wrong-token-0000000")],
            "{}",
        )
        .await;
    assert_eq!(res.status(), 401);
    b.until(
        "the overview refreshes with the new 401",
        &format!(
            "document.querySelector('main .meta').textContent !== window.__before && document.querySelector(\"tr[data-key='{probe}']\").textContent.endsWith('20')"
        ),
    )
    .await;
    assert_eq!(
        b.eval("return window.__shift;").await,
        json!(0),
        "layout shift"
    );
    b.shoot("overview").await;

    // Events: filtered to the Identus source and the event type, the event sent a moment ago.
    b.click("nav a[data-page=events]").await;
    b.text_of("main h1", "Events").await;
    b.type_into("f-source", "identus").await;
    b.type_into("f-type", "ConnectionUpdated").await;
    b.click_button("form[@role='search']", "Apply").await;
    b.text_of("main table tbody", &id).await;
    let rows = b
        .eval("return document.querySelectorAll('main table tbody tr').length;")
        .await;
    assert_eq!(rows, json!(1), "only the Identus event matches");

    // The live tail adds an event sent now, and only one that matches the filters.
    b.click_button("main", "Live tail").await;
    b.text_of("main .toolbar", "Live").await;
    let res = app.kratos(&kratos_body(GUIDE_IDENTITY), &[]).await;
    assert_eq!(res.status(), 200);
    let tailed = identus_event(&app, "ConnectionRequestSent").await;
    b.text_of("main table tbody", &tailed).await;
    let rows = b
        .eval("return document.querySelectorAll('main table tbody tr').length;")
        .await;
    assert_eq!(rows, json!(2), "the Kratos event is not tailed");
    b.click_button("main", "Live tail").await;
    b.shoot("events").await;

    // "Last hour" keeps the filters and adds the time: both events are in it.
    b.click_button("form[@role='search']", "Last hour").await;
    b.until(
        "the list is read again with a from time",
        "location.hash.includes('from=') && document.querySelectorAll('main table tbody tr[data-key]').length === 2",
    )
    .await;
    assert_eq!(
        b.eval("return document.getElementById('f-source').value;")
            .await,
        json!("identus")
    );

    // Its page: the body pretty-printed beside the exact bytes, and its deliveries.
    b.click(&format!("a[href='#/events/{id}']")).await;
    b.text_of("main h1", &id).await;
    b.text_of("#body-pretty", "\"type\": \"ConnectionUpdated\"")
        .await;
    let raw = b.text_of("#body-raw", "ConnectionUpdated").await;
    assert!(!raw.contains("\n  \""), "the raw bytes are not re-indented");
    b.text_of("main section:nth-of-type(3)", "Delivery").await;
    b.until(
        "the failed attempt is shown",
        "[...document.querySelectorAll('article.delivery')].some(a => a.textContent.includes('to app') && a.querySelectorAll('tbody tr td.num').length > 0 && a.textContent.includes('500'))",
    )
    .await;
    b.shoot("event").await;

    // Retry the failing delivery: a new delivery appears, with its own first attempt.
    let before = app
        .admin_json(&format!("/admin/deliveries?event_id={id}&destination=app"))
        .await["deliveries"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(before, 1);
    b.click_button("article[contains(., 'to app')]", "Retry")
        .await;
    let after = crate::helpers::eventually(
        &app,
        &format!("/admin/deliveries?event_id={id}&destination=app"),
        SHOW,
        |v| v["deliveries"].as_array().is_some_and(|d| d.len() == 2),
    )
    .await;
    let new_id = after["deliveries"][0]["id"].as_i64().unwrap();
    b.text_of("#notice", &format!("retried as delivery {new_id}"))
        .await;
    b.until(
        "the new delivery shows its first attempt",
        &format!(
            "(() => {{ const a = document.querySelector('article[data-delivery=\"{new_id}\"]'); return a && a.querySelector('tbody td.num') && a.textContent.includes('500'); }})()"
        ),
    )
    .await;
    let retried = app.admin_json(&format!("/admin/deliveries/{new_id}")).await;
    assert_eq!(
        retried["attempts"][0]["status"], 500,
        "the retry was attempted"
    );

    // Back returns to the filtered list.
    b.client.back().await.unwrap();
    b.text_of("main h1", "Events").await;
    assert_eq!(
        b.eval("return document.getElementById('f-source').value;")
            .await,
        json!("identus")
    );

    // Destinations and projections.
    b.click("nav a[data-page=destinations]").await;
    b.text_of("main table tbody", "app").await;
    b.shoot("destinations").await;
    let identity_id = serde_json::from_str::<Value>(GUIDE_IDENTITY).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    // The identity changes once more: its page lists both events, newest first.
    let deactivated = app
        .kratos(
            &kratos_body(
                &GUIDE_IDENTITY.replace("\"state\": \"active\"", "\"state\": \"inactive\""),
            ),
            &[],
        )
        .await;
    assert_eq!(deactivated.status(), 200);
    let deactivated = deactivated.headers()["hookgate-event-id"]
        .to_str()
        .unwrap()
        .to_string();
    b.click("nav a[data-page=projections]").await;
    b.type_into("pj-kratos", &identity_id).await;
    b.click_button("form[@aria-label='Kratos identity']", "Look up")
        .await;
    b.text_of("#pj-result + .panel", &identity_id).await;
    b.text_of("#pj-result + .panel", "Made by").await;
    let events = "section[aria-labelledby=pj-events] tbody";
    b.until(
        "both events listed, each with its time",
        &format!("document.querySelectorAll('{events} tr[data-key] time').length === 2"),
    )
    .await;
    assert_eq!(
        b.eval(&format!(
            "return Array.from(document.querySelectorAll('{events} tr[data-key]'), (tr) => tr.dataset.key);"
        ))
        .await,
        json!([deactivated, registered])
    );
    let listed = b.text_of(events, &deactivated).await;
    let first = app.admin_json(&format!("/admin/events/{registered}")).await;
    let event_type = first["event_type"].as_str().unwrap_or("—");
    assert!(listed.contains(event_type), "{listed}");
    b.shoot("projections").await;
    // Each links to its event's page.
    b.click(&format!("{events} a[href='#/events/{registered}']"))
        .await;
    b.text_of("main h1", &registered).await;

    // A hook: registered with a generated secret, shown once, then deleted.
    b.click("nav a[data-page=hooks]").await;
    b.text_of("main h1", "Registered hooks").await;
    b.type_into("hk-label", "shop 42").await;
    b.client
        .find(Locator::Id("hk-scheme"))
        .await
        .unwrap()
        .select_by_value("bearer")
        .await
        .unwrap();
    b.click_button("form[@aria-labelledby='hk-new']", "Register")
        .await;
    let path = b.text_of("#hk-created-path", "/hooks/").await;
    let secret = b.text_of("#hk-created-secret", "").await;
    assert_eq!(secret.len(), 64, "a generated bearer secret: {secret:?}");
    let hook_id = path.trim_start_matches("/hooks/").to_string();
    let registered = app.admin_json(&format!("/admin/hooks/{hook_id}")).await;
    assert_eq!(registered["label"], "shop 42");
    // The secret works: the sender's request is accepted.
    let res = app
        .post(
            &path,
            &[
                ("authorization", &format!("Bearer {secret}")),
                ("content-type", "application/json"),
            ],
            r#"{"id":"1","data":{}}"#,
        )
        .await;
    assert!(
        res.status().is_success() || res.status() == 422,
        "{}",
        res.status()
    );
    b.text_of("main section tbody", "shop 42").await;
    b.shoot("hooks").await;
    b.click_button("main/section//tr[contains(., 'shop 42')]", "Delete")
        .await;
    b.click("#hk-confirm").await;
    b.text_of("#notice", "deleted").await;
    let gone = app.admin_get(&format!("/admin/hooks/{hook_id}")).await;
    assert_eq!(gone.status(), 404, "the hook is deleted");
    b.client.refresh().await.unwrap();
    b.text_of("main h1", "Registered hooks").await;
    let page_text = b.eval("return document.body.textContent;").await;
    assert!(
        !page_text.as_str().unwrap().contains(&secret),
        "the secret is never shown again"
    );

    // A token that stops working (rotated) brings back the sign-in form, with a message.
    b.eval("sessionStorage.setItem('hookgate.admin-token', 'rotated-away'); return null;")
        .await;
    b.click("nav a[data-page=overview]").await;
    b.text_of("#signin-error", "refused").await;

    // Sign out forgets the token.
    signed_in(&b, &app).await;
    b.click("#sign-out").await;
    b.text_of("main h1", "Sign in").await;
    assert_eq!(b.eval("return sessionStorage.length;").await, json!(0));
    b.close().await;
}

#[tokio::test]
async fn markup_in_a_webhook_payload_is_shown_as_text_and_runs_nothing() {
    let app = spawn_app().await;
    let Some(b) = browser("console: markup in a payload").await else {
        return;
    };
    // Arrange: an event whose values are markup that would run if parsed as HTML.
    let hostile = r#"<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">"#;
    let mut identity: Value = serde_json::from_str(GUIDE_IDENTITY).unwrap();
    identity["traits"]["name"] = json!({"first": hostile, "last": "</pre><b>bold</b>"});
    let body = kratos_body(&identity.to_string());
    let res = app.kratos(&body, &[]).await;
    assert_eq!(res.status(), 200);
    let id = res.headers()["hookgate-event-id"]
        .to_str()
        .unwrap()
        .to_string();

    // Act
    signed_in(&b, &app).await;
    b.client
        .goto(&format!("{}/console#/events/{id}", app.admin))
        .await
        .unwrap();

    // Assert: the markup is there, as text, and nothing ran or was made of it.
    let raw = b.text_of("#body-raw", "<script>").await;
    assert!(raw.contains(r#"onerror=\"window.__pwned = 2\""#), "{raw}");
    b.text_of("#body-pretty", "<img src=x").await;
    b.text_of("#body-pretty", "</pre><b>bold</b>").await;
    // The projection's page shows the identity too.
    let identity_id = identity["id"].as_str().unwrap();
    b.client
        .goto(&format!(
            "{}/console#/projections?kratos={identity_id}",
            app.admin
        ))
        .await
        .unwrap();
    b.text_of("#pj-result + .panel", "<script>").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        b.eval("return [typeof window.__pwned, document.querySelectorAll('main img, main script, main b').length];")
            .await,
        json!(["undefined", 0])
    );
    b.close().await;
}

#[tokio::test]
async fn the_console_is_served_without_the_token_under_a_strict_policy() {
    let app = spawn_app().await;
    let page = app
        .client
        .get(format!("{}/console", app.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200, "no token is needed for the page");
    let h = page.headers().clone();
    let csp = h["content-security-policy"].to_str().unwrap();
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "img-src 'self' data:",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ] {
        assert!(csp.contains(directive), "{directive} in {csp}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert_eq!(h["cache-control"], "no-cache");
    assert!(h["content-type"].to_str().unwrap().starts_with("text/html"));
    let etag = h["etag"].to_str().unwrap().to_string();
    let html = page.text().await.unwrap();

    // The script and style sheet: named by version, kept for good under that name.
    let script = html
        .split("src=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_string();
    assert!(script.starts_with("/console/app.js?v="), "{script}");
    let js = app
        .client
        .get(format!("{}{script}", app.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(js.status(), 200);
    assert!(
        js.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert_eq!(js.headers()["x-content-type-options"], "nosniff");
    assert!(
        js.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    let stale = app
        .client
        .get(format!("{}/console/app.js?v=0000000000000000", app.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.headers()["cache-control"], "no-cache");

    // A page the browser has already is not sent again.
    let again = app
        .client
        .get(format!("{}/console/", app.admin))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);

    // The API itself still wants the token.
    let api = app
        .client
        .get(format!("{}/admin/events", app.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 401);
}

#[tokio::test]
async fn a_projections_events_deleted_by_retention_are_listed_as_no_longer_stored() {
    // Arrange: events older than 4 s are deleted.
    let app = spawn_app_with(|s| {
        s.store.retention = hookgate::config::HumanDuration(Duration::from_secs(4));
    })
    .await;
    let Some(b) = browser("console: a projection's pruned event").await else {
        return;
    };
    signed_in(&b, &app).await;
    let send = |state: &'static str| {
        let body = kratos_body(
            &GUIDE_IDENTITY.replace("\"state\": \"active\"", &format!("\"state\": \"{state}\"")),
        );
        let app = &app;
        async move {
            let res = app.kratos(&body, &[]).await;
            assert_eq!(res.status(), 200);
            res.headers()["hookgate-event-id"]
                .to_str()
                .unwrap()
                .to_string()
        }
    };
    let old = send("active").await;
    let deadline = Instant::now() + SHOW;
    while app
        .admin_get(&format!("/admin/events/{old}"))
        .await
        .status()
        != 404
    {
        assert!(Instant::now() < deadline, "the old event was never pruned");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let new = send("inactive").await;
    let identity_id = serde_json::from_str::<Value>(GUIDE_IDENTITY).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();

    // Act
    b.client
        .goto(&format!(
            "{}/console#/projections?kratos={identity_id}",
            app.admin
        ))
        .await
        .unwrap();

    // Assert: both listed, newest first; the pruned one says so and links nowhere.
    let events = "section[aria-labelledby=pj-events] tbody";
    let text = b.text_of(events, "no longer stored").await;
    assert!(text.contains(&new) && text.contains(&old), "{text}");
    assert_eq!(
        b.eval(&format!(
            "return Array.from(document.querySelectorAll('{events} tr[data-key]'), (tr) => [tr.dataset.key, tr.querySelectorAll('a').length, tr.querySelectorAll('time').length]);"
        ))
        .await,
        json!([[new, 1, 1], [old, 0, 0]])
    );
    b.close().await;
}
