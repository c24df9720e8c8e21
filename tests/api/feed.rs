//! The feed a consumer follows: `next` always a cursor, `more`, each event's `cursor`, event ids
//! as `after`, long polls (`wait=`) woken by commits, and a consumer that resumes across a
//! restart with no gap and no repeat.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::*;

/// Stores one Identus connection event (its own ids) and returns its event id.
async fn send_identus(app: &TestApp, n: usize) -> String {
    let body = connection_event(
        &uuid::Uuid::new_v4().to_string(),
        &format!("conn-{n}"),
        "InvitationGenerated",
        "2024-05-01T10:00:00Z",
    );
    accepted(app.identus(&body).await).await.0
}

/// Stores one ABP event (its own id) and returns its event id.
async fn send_abp(app: &TestApp) -> String {
    let body = ABP_BODY_1.replace(
        "5a0c4c1e-8c2b-4f6e-9d3a-2b7e1f0a9c44",
        &uuid::Uuid::new_v4().to_string(),
    );
    assert_ne!(body, ABP_BODY_1, "the ABP fixture names its id");
    accepted(app.abp(&body).await).await.0
}

fn ids(page: &Value) -> Vec<String> {
    page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect()
}

fn next(page: &Value) -> String {
    page["next"].as_str().expect("next is a cursor").to_string()
}

/// GET `url` on an admin listener with the token: the JSON page and when it arrived.
async fn poll(client: reqwest::Client, url: String) -> (Value, Instant) {
    let res = client
        .get(url)
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let page: Value = res.json().await.unwrap();
    (page, Instant::now())
}

#[tokio::test]
async fn next_is_always_a_cursor_and_more_says_whether_more_is_waiting() {
    let app = spawn_app().await;
    // Arrange: an empty store answers a cursor too, the start.
    let empty = app.admin_json("/admin/events").await;
    assert_eq!(ids(&empty), Vec::<String>::new());
    assert_eq!(empty["more"], false);
    let start = next(&empty);
    let mut sent = Vec::new();
    for n in 0..3 {
        sent.push(send_identus(&app, n).await);
    }

    // Act and assert: from the start cursor, two pages of two and one.
    let first = app
        .admin_json(&format!("/admin/events?limit=2&after={start}"))
        .await;
    assert_eq!(ids(&first), sent[..2]);
    assert_eq!(first["more"], true);
    assert_eq!(first["next"], first["events"][1]["cursor"]);
    let second = app
        .admin_json(&format!("/admin/events?limit=2&after={}", next(&first)))
        .await;
    assert_eq!(ids(&second), sent[2..]);
    assert_eq!(second["more"], false);
    assert_eq!(second["next"], second["events"][0]["cursor"]);

    // The end of the feed: nothing new, and `next` stays where the consumer is.
    let end = next(&second);
    let nothing = app
        .admin_json(&format!("/admin/events?limit=2&after={end}"))
        .await;
    assert_eq!(ids(&nothing), Vec::<String>::new());
    assert_eq!(nothing["more"], false);
    assert_eq!(next(&nothing), end);

    // A poller that kept `next` sees the event stored later, and only it.
    let later = send_identus(&app, 3).await;
    let resumed = app.admin_json(&format!("/admin/events?after={end}")).await;
    assert_eq!(ids(&resumed), [later]);
    app.stop().await;
}

#[tokio::test]
async fn each_events_cursor_resumes_right_after_it_and_so_does_its_id() {
    let app = spawn_app().await;
    let mut sent = Vec::new();
    for n in 0..4 {
        sent.push(send_identus(&app, n).await);
    }
    let all = app.admin_json("/admin/events").await;
    let events = all["events"].as_array().unwrap().clone();
    assert_eq!(events.len(), 4);
    for (i, event) in events.iter().enumerate() {
        let cursor = event["cursor"].as_str().unwrap();
        let by_cursor = app
            .admin_json(&format!("/admin/events?after={cursor}"))
            .await;
        assert_eq!(
            ids(&by_cursor),
            sent[i + 1..],
            "after the cursor of event {i}"
        );
        let by_id = app
            .admin_json(&format!("/admin/events?after={}", sent[i]))
            .await;
        assert_eq!(ids(&by_id), sent[i + 1..], "after the id of event {i}");
        // The id resumes at the same place: the same `next` as the cursor.
        assert_eq!(by_id["next"], by_cursor["next"]);
    }
    // The single event answers its cursor too.
    let one = app.admin_json(&format!("/admin/events/{}", sent[1])).await;
    assert_eq!(one["cursor"], events[1]["cursor"]);
    app.stop().await;
}

#[tokio::test]
async fn a_bad_cursor_or_an_unknown_event_id_is_400_naming_after() {
    let app = spawn_app().await;
    send_identus(&app, 0).await;
    for bad in ["abc", "-1", "1.5", "+1", "99999999999999999999999", "%20"] {
        let res = app.admin_get(&format!("/admin/events?after={bad}")).await;
        assert_eq!(res.status(), 400, "after={bad}");
        assert_eq!(res.headers()["content-type"], "application/problem+json");
        let body: Value = res.json().await.unwrap();
        let detail = body["detail"].as_str().unwrap();
        assert!(
            detail.starts_with("after must be a cursor") && detail.contains("`next`"),
            "after={bad}: {detail}"
        );
    }
    let unknown = uuid::Uuid::now_v7();
    let res = app
        .admin_get(&format!("/admin/events?after={unknown}"))
        .await;
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("after: no stored event has the id") && detail.contains("retention"),
        "{detail}"
    );
    for (bad, names) in [
        ("wait=31s", "wait"),
        ("wait=soon", "wait"),
        ("wait=-1", "wait"),
        (
            "colour=red",
            "source, event_type, hook, from, to, limit, after and wait",
        ),
        ("hook=h", "hook must be the id of a registered hook"),
    ] {
        let res = app.admin_get(&format!("/admin/events?{bad}")).await;
        assert_eq!(res.status(), 400, "{bad}");
        let body: Value = res.json().await.unwrap();
        let detail = body["detail"].as_str().unwrap();
        assert!(detail.contains(names), "{bad}: {detail}");
    }
    app.stop().await;
}

#[tokio::test]
async fn filtered_pages_follow_next_through_other_sources_events() {
    let app = spawn_app().await;
    let mut identus = Vec::new();
    let mut abp = Vec::new();
    for n in 0..5 {
        identus.push(send_identus(&app, n).await);
        abp.push(send_abp(&app).await);
    }
    for (filter, want) in [
        ("source=identus", &identus),
        ("source=abp", &abp),
        ("event_type=ConnectionUpdated", &identus),
    ] {
        let mut seen = Vec::new();
        let mut after = String::new();
        loop {
            let page = app
                .admin_json(&format!("/admin/events?{filter}&limit=2&after={after}"))
                .await;
            assert!(page["events"].as_array().unwrap().len() <= 2);
            seen.extend(ids(&page));
            after = next(&page);
            if page["more"] == false {
                break;
            }
        }
        assert_eq!(&seen, want, "{filter}");
        // At the end of a filtered feed, `next` waits for the next matching event.
        let again = app
            .admin_json(&format!("/admin/events?{filter}&after={after}"))
            .await;
        assert_eq!(ids(&again), Vec::<String>::new(), "{filter}");
        assert_eq!(next(&again), after, "{filter}");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_long_poll_wakes_within_100_ms_of_a_commit() {
    let app = spawn_app().await;
    let mut after = next(&app.admin_json("/admin/events").await);
    let mut delays = Vec::new();
    for n in 0..5 {
        // Arrange: a poll waiting at the end of the feed.
        let url = format!("{}/admin/events?after={after}&wait=10s", app.admin);
        let waiting = tokio::spawn(poll(app.client.clone(), url));
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            !waiting.is_finished(),
            "the poll waits while nothing is new"
        );

        // Act: one event; the clock starts when its sender has the 2xx.
        let id = send_identus(&app, n).await;
        let stored = Instant::now();
        let (page, answered) = waiting.await.unwrap();

        // Assert: the poll answered that event.
        assert_eq!(ids(&page), [id]);
        delays.push(answered.saturating_duration_since(stored));
        after = next(&page);
    }
    delays.sort();
    let median = delays[delays.len() / 2];
    println!("long poll wake after the sender's 2xx, 5 rounds: {delays:?}, median {median:?}");
    assert!(
        median < Duration::from_millis(100),
        "median wake {median:?} ({delays:?})"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_long_poll_that_times_out_answers_an_empty_page_with_the_same_next() {
    let app = spawn_app().await;
    send_identus(&app, 0).await;
    let end = next(&app.admin_json("/admin/events").await);
    // 3 s: longer than the test configuration's `server.request_timeout` (2 s), which does not
    // cut an admin request short.
    for (wait, at_least) in [("500ms", 500), ("1", 1000), ("3s", 3000)] {
        let started = Instant::now();
        let page = app
            .admin_json(&format!("/admin/events?after={end}&wait={wait}"))
            .await;
        let took = started.elapsed();
        assert_eq!(ids(&page), Vec::<String>::new(), "wait={wait}");
        assert_eq!(next(&page), end, "wait={wait}");
        assert_eq!(page["more"], false);
        assert!(
            took >= Duration::from_millis(at_least)
                && took < Duration::from_millis(at_least + 1500),
            "wait={wait} took {took:?}"
        );
    }
    // With something to answer, a wait does not delay the answer.
    let started = Instant::now();
    let page = app.admin_json("/admin/events?wait=30s").await;
    assert_eq!(page["events"].as_array().unwrap().len(), 1);
    assert!(started.elapsed() < Duration::from_secs(2));
    app.stop().await;
}

#[tokio::test]
async fn an_event_that_does_not_match_the_filters_does_not_end_a_filtered_wait() {
    let app = spawn_app().await;
    let start = next(&app.admin_json("/admin/events").await);

    // A poll for ABP events sees an Identus event committed, and keeps waiting to its deadline.
    let url = format!(
        "{}/admin/events?source=abp&after={start}&wait=1500ms",
        app.admin
    );
    let started = Instant::now();
    let waiting = tokio::spawn(poll(app.client.clone(), url));
    tokio::time::sleep(Duration::from_millis(200)).await;
    send_identus(&app, 0).await;
    let (page, answered) = waiting.await.unwrap();
    assert_eq!(ids(&page), Vec::<String>::new());
    assert_eq!(next(&page), start);
    assert!(
        answered.duration_since(started) >= Duration::from_millis(1500),
        "the wait ended early, after {:?}",
        answered.duration_since(started)
    );

    // And when the matching event follows, the poll answers it alone.
    let url = format!(
        "{}/admin/events?source=abp&after={start}&wait=10s",
        app.admin
    );
    let waiting = tokio::spawn(poll(app.client.clone(), url));
    tokio::time::sleep(Duration::from_millis(200)).await;
    send_identus(&app, 1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiting.is_finished(), "an Identus event does not end it");
    let abp = send_abp(&app).await;
    let (page, _) = waiting.await.unwrap();
    assert_eq!(ids(&page), [abp]);
    app.stop().await;
}

#[tokio::test]
async fn a_waiting_poll_does_not_delay_shutdown() {
    let app = spawn_app().await;
    let start = next(&app.admin_json("/admin/events").await);
    let url = format!("{}/admin/events?after={start}&wait=30s", app.admin);
    let waiting = tokio::spawn(poll(app.client.clone(), url));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished());

    let started = Instant::now();
    app.stop().await;
    let took = started.elapsed();
    let (page, _) = waiting.await.unwrap();

    // The poll answered what it had (nothing, and where to resume), and the stop did not wait
    // for the poll's 30 s.
    assert_eq!(ids(&page), Vec::<String>::new());
    assert_eq!(next(&page), start);
    assert!(took < Duration::from_secs(2), "shutdown took {took:?}");
}

#[tokio::test]
async fn three_hundred_waiting_pollers_all_wake_on_one_commit() {
    const POLLERS: usize = 300;
    let app = spawn_app().await;
    let start = next(&app.admin_json("/admin/events").await);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(POLLERS)
        .build()
        .unwrap();
    let waiting: Vec<_> = (0..POLLERS)
        .map(|_| {
            let url = format!("{}/admin/events?after={start}&wait=20s", app.admin);
            tokio::spawn(poll(client.clone(), url))
        })
        .collect();
    // Every poll has connected and is waiting.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(waiting.iter().all(|w| !w.is_finished()));

    let id = send_identus(&app, 0).await;
    let stored = Instant::now();
    let mut slowest = Duration::ZERO;
    for w in waiting {
        let (page, answered) = w.await.unwrap();
        assert_eq!(ids(&page), std::slice::from_ref(&id));
        slowest = slowest.max(answered.saturating_duration_since(stored));
    }
    println!("{POLLERS} waiting polls all answered within {slowest:?} of the sender's 2xx");
    assert!(slowest < Duration::from_secs(3), "slowest wake {slowest:?}");
    app.stop().await;
}

#[tokio::test]
async fn a_consumer_following_next_across_a_restart_sees_every_event_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_in(dir.path(), |_| {}).await;
    let admin_addr = app.admin.trim_start_matches("http://").to_string();
    let public_addr = format!("127.0.0.1:{}", app.port);
    let mut sent = Vec::new();
    for n in 0..5 {
        sent.push(send_identus(&app, n).await);
    }

    // A consumer that keeps `next` and, while hookgate is down, waits and asks again.
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = tokio_util::sync::CancellationToken::new();
    let consumer = {
        let (seen, stop, base) = (seen.clone(), stop.clone(), app.admin.clone());
        let client = reqwest::Client::new();
        tokio::spawn(async move {
            let mut after = String::new();
            let mut failures = 0;
            while !stop.is_cancelled() {
                let res = client
                    .get(format!("{base}/admin/events?after={after}&wait=1s&limit=3"))
                    .bearer_auth(ADMIN_TOKEN)
                    .send()
                    .await;
                let page = match res {
                    Ok(r) if r.status() == 200 => r.json::<Value>().await.ok(),
                    _ => None,
                };
                let Some(page) = page else {
                    failures += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                seen.lock().unwrap().extend(ids(&page));
                after = next(&page);
            }
            failures
        })
    };
    for n in 5..10 {
        sent.push(send_identus(&app, n).await);
    }

    // Restart on the same file and ports while the consumer follows.
    app.stop().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let app = spawn_in(dir.path(), |s| {
        s.admin.listen = admin_addr.clone();
        s.server.listen = public_addr.clone();
    })
    .await;
    for n in 10..15 {
        sent.push(send_identus(&app, n).await);
    }

    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.lock().unwrap().len() < sent.len() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A little longer: a repeat would show up now.
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.cancel();
    let failures = consumer.await.unwrap();
    assert!(failures > 0, "the consumer saw hookgate down at least once");
    assert_eq!(*seen.lock().unwrap(), sent, "every event once, in order");
    app.stop().await;
}

/// A consumer script from `docs/examples`, run with its cursor in `cursor_file`, its stdout
/// lines sent to `lines`, in a process group of its own (so a kill stops its curl too).
struct Consumer {
    child: std::process::Child,
}

impl Consumer {
    fn start(
        program: &str,
        script: &str,
        admin: &str,
        cursor_file: &std::path::Path,
        lines: std::sync::mpsc::Sender<String>,
    ) -> Self {
        use std::os::unix::process::CommandExt as _;
        let path = format!("{}/docs/examples/{script}", env!("CARGO_MANIFEST_DIR"));
        let mut child = std::process::Command::new(program)
            .arg(path)
            .env("HOOKGATE_ADMIN_URL", format!("http://{admin}"))
            .env("HOOKGATE_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("HOOKGATE_CURSOR_FILE", cursor_file)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        forward_lines(child.stdout.take().unwrap(), lines);
        Self { child }
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        // The whole group: the script and the curl or jq it runs.
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.wait();
    }
}

/// Posts `n` Identus events to the binary listening on `public`; their event ids.
async fn send_to_binary(client: &reqwest::Client, public: &str, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    for i in 0..n {
        let body = connection_event(
            &uuid::Uuid::new_v4().to_string(),
            &format!("conn-{i}"),
            "InvitationGenerated",
            "2024-05-01T10:00:00Z",
        );
        let res = client
            .post(format!("http://{public}/identus/events"))
            .bearer_auth(IDENTUS_TOKEN)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        out.push(accepted(res).await.0);
    }
    out
}

/// Collects the event ids printed on `lines` until there are `want` (or 20 s pass); with
/// `want` 0, what was printed already.
fn printed_ids(lines: &std::sync::mpsc::Receiver<String>, into: &mut Vec<String>, want: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let line = if into.len() < want {
            let left = deadline.saturating_duration_since(Instant::now());
            lines.recv_timeout(left).ok()
        } else {
            lines.try_recv().ok()
        };
        let Some(line) = line else {
            return;
        };
        let event: Value = serde_json::from_str(&line).unwrap();
        into.push(event["id"].as_str().unwrap().to_string());
    }
}

/// Waits until the script has saved `cursor` in its file: it is done with every event up to it.
async fn cursor_saved(file: &std::path::Path, cursor: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(file).unwrap_or_default().trim() != cursor {
        assert!(
            Instant::now() < deadline,
            "{} never held {cursor}",
            file.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_example_consumers_print_every_event_once_in_order_across_restarts() {
    // Arrange: the scripts that can run here.
    let have = |tool: &str| {
        std::process::Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let mut scripts = Vec::new();
    if have("curl") && have("jq") {
        scripts.push(("sh", "tail.sh"));
    } else {
        println!("skipped: docs/examples/tail.sh needs curl and jq");
    }
    if have("python3") {
        scripts.push(("python3", "tail.py"));
    } else {
        println!("skipped: docs/examples/tail.py needs python3");
    }
    if scripts.is_empty() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let bin = start_binary(dir.path(), &[], &[]);
    let (public, admin) = (bin.public.clone(), bin.admin.clone());
    let mut sent = send_to_binary(&client, &public, 4).await;

    let cursor_file = |script: &str| dir.path().join(format!("{script}.cursor"));
    let start = |(program, script): (&str, &str)| {
        let (tx, rx) = std::sync::mpsc::channel();
        (
            Consumer::start(program, script, &admin, &cursor_file(script), tx),
            rx,
        )
    };
    let running: Vec<_> = scripts.iter().map(|s| start(*s)).collect();
    let mut seen = vec![Vec::new(); scripts.len()];
    for ((_, lines), seen) in running.iter().zip(&mut seen) {
        printed_ids(lines, seen, sent.len());
    }

    // Act 1: each script restarts (its cursor file is all it keeps) while events arrive. It is
    // stopped once it has saved its cursor (a kill between printing an event and saving the
    // cursor would print that event again: the scripts promise at least once over their own
    // crashes, exactly once over hookgate's restarts).
    let last = bin
        .admin_json(&client, &format!("/admin/events/{}", sent[3]))
        .await;
    for (_, script) in &scripts {
        cursor_saved(&cursor_file(script), last["cursor"].as_str().unwrap()).await;
    }
    drop(running);
    sent.extend(send_to_binary(&client, &public, 4).await);
    let running: Vec<_> = scripts.iter().map(|s| start(*s)).collect();
    for ((_, lines), seen) in running.iter().zip(&mut seen) {
        printed_ids(lines, seen, sent.len());
    }

    // Act 2: hookgate restarts (SIGTERM, then the same file and ports) while they follow.
    bin.signal("TERM");
    assert!(bin.wait().await.success());
    let bin = start_binary(
        dir.path(),
        &[
            ("HOOKGATE__SERVER__LISTEN", public.as_str()),
            ("HOOKGATE__ADMIN__LISTEN", admin.as_str()),
        ],
        &[],
    );
    sent.extend(send_to_binary(&client, &public, 4).await);
    for ((_, lines), seen) in running.iter().zip(&mut seen) {
        printed_ids(lines, seen, sent.len());
    }
    // A repeat would show up now.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for ((_, lines), seen) in running.iter().zip(&mut seen) {
        printed_ids(lines, seen, 0);
    }

    // Assert: every event once, in order, from each script.
    for ((_, script), seen) in scripts.iter().zip(&seen) {
        assert_eq!(seen, &sent, "{script}");
    }
    drop(running);
    bin.signal("TERM");
    assert!(bin.wait().await.success());
}
