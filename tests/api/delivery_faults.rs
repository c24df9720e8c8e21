//! Delivery under faults (DESIGN.md "Delivery", "at least once"): a SIGKILL with a backlog pending
//! and attempts in flight loses no delivery and repeats only what was in flight; a graceful stop
//! lets an attempt in flight finish, or cuts it off after `server.shutdown_timeout` and makes it
//! after the next start; on PostgreSQL, replicas share a backlog without sending an event twice,
//! and a replica killed mid-drain leaves its leased deliveries to another once the leases expire.
//!
//! A backlog is stored while the sink is stopped: each delivery's attempts are refused, and
//! retried every second ([`RETRY`]: the default schedule would put a delivery 5 minutes out
//! after its second refusal), so the backlog is pending and comes due within a second of the
//! sink's return.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{
    ADMIN_TOKEN, IDENTUS_TOKEN, PgSchemaGuard, TestApp, connection_event, pg_execute,
    postgres_base, spawn_app_with, spawn_in, sqlite_only, start_binary_with,
};
use crate::sink::{Mode, Received, Sink};

fn destination(settings: &mut hookgate::config::Settings, id: &str, block: Value) {
    settings.destinations.insert(
        id.into(),
        serde_json::from_value(block).expect("destination block"),
    );
}

/// A fresh Identus connection event.
fn identus_body() -> String {
    connection_event(
        &uuid::Uuid::new_v4().to_string(),
        &uuid::Uuid::new_v4().to_string(),
        "ConnectionResponseSent",
        "2024-05-01T10:20:30.123456Z",
    )
}

/// Posts `n` fresh Identus events to `public` (`host:port`) from `senders` concurrent clients;
/// answers the event ids hookgate acknowledged (every post must be).
async fn post_events(public: &str, n: usize, senders: usize) -> Vec<String> {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let tasks: Vec<_> = (0..senders)
        .map(|_| {
            let (next, public) = (next.clone(), public.to_string());
            tokio::spawn(async move {
                let client = reqwest::Client::builder()
                    .timeout(Duration::from_secs(20))
                    .build()
                    .unwrap();
                let mut ids = Vec::new();
                while next.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < n {
                    let res = client
                        .post(format!("http://{public}/identus/events"))
                        .header("content-type", "application/json")
                        .bearer_auth(IDENTUS_TOKEN)
                        .body(identus_body())
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(res.status(), 200, "the event is accepted");
                    ids.push(
                        res.headers()["hookgate-event-id"]
                            .to_str()
                            .unwrap()
                            .to_string(),
                    );
                }
                ids
            })
        })
        .collect();
    let mut ids = Vec::with_capacity(n);
    for t in tasks {
        ids.extend(t.await.unwrap());
    }
    assert_eq!(ids.len(), n);
    ids
}

/// GET on the admin API at `admin` (`host:port`), which must be 200.
async fn admin_json(client: &reqwest::Client, admin: &str, path: &str) -> Value {
    let res = client
        .get(format!("http://{admin}{path}"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "GET {path}");
    res.json().await.unwrap()
}

/// Destination `id` from `/admin/destinations` at `admin`.
async fn destination_status(client: &reqwest::Client, admin: &str, id: &str) -> Value {
    let all = admin_json(client, admin, "/admin/destinations").await;
    all["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("no destination {id} in {all:#}"))
}

/// Polls destination `id` until `done` holds (panics after `within`).
async fn destination_until(
    client: &reqwest::Client,
    admin: &str,
    id: &str,
    within: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let d = destination_status(client, admin, id).await;
        if done(&d) {
            return d;
        }
        assert!(Instant::now() < deadline, "destination {id}: {d:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// How many times each event id reached the sink.
fn receipts(requests: &[Received]) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    for r in requests {
        *seen
            .entry(r.header("hookgate-event-id").to_string())
            .or_insert(0) += 1;
    }
    seen
}

/// Waits until every id of `ids` has reached the sink (panics after `within`); answers when.
async fn until_all_received(sink: &Sink, ids: &HashSet<String>, within: Duration) -> Instant {
    let deadline = Instant::now() + within;
    loop {
        let seen = receipts(&sink.requests());
        let missing = ids.iter().filter(|id| !seen.contains_key(*id)).count();
        if missing == 0 {
            return Instant::now();
        }
        assert!(
            Instant::now() < deadline,
            "{missing} of {} events never reached the sink in {within:?}",
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The retry schedule of the tests' destinations: every second, for two minutes.
const RETRY: [&str; 120] = ["1s"; 120];

/// The `destinations:` block of a configuration file: destination `app` to `url`, retried on
/// [`RETRY`].
fn destination_yaml(url: &str, timeout: &str, max_in_flight: usize) -> String {
    format!(
        "destinations:\n  app:\n    kind: http\n    url: {url}\n    timeout: {timeout}\n    max_in_flight: {max_in_flight}\n    retry: [{}]\n",
        RETRY.join(", ")
    )
}

/// SQLite, the real binary: 10 000 deliveries pending, then the sink up and delivery running
/// with 32 attempts in flight, then SIGKILL. After a restart on the same store every stored
/// event reaches the sink, only what was in flight at the kill is sent twice, and nothing is
/// left pending.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_while_deliveries_are_pending_and_in_flight_loses_none() {
    if sqlite_only("kill_9_while_deliveries_are_pending_and_in_flight_loses_none") {
        return;
    }
    const EVENTS: usize = 10_000;
    const MAX_IN_FLIGHT: usize = 32;
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    // The sink's port, refusing connections until the sink starts again on it.
    let port = Sink::start().await.stop().await;
    let yaml = destination_yaml(
        &format!("http://127.0.0.1:{port}/hooks"),
        "10s",
        MAX_IN_FLIGHT,
    );
    let bin = start_binary_with(tmp.path(), &[], &[], &yaml);

    // The backlog: every event stored while the sink is down.
    let posting = Instant::now();
    let ids = post_events(&bin.public, EVENTS, 32).await;
    let posting = posting.elapsed();
    let ids: HashSet<String> = ids.into_iter().collect();
    assert_eq!(ids.len(), EVENTS, "one id per event");
    let status = destination_status(&client, &bin.admin, "app").await;
    assert_eq!(status["pending"], EVENTS, "{status:#}");

    // The sink is back, slow enough that attempts are in flight; delivery runs, then SIGKILL.
    let sink = Sink::start_on(port).await;
    sink.set(Mode::Delay(Duration::from_millis(20)));
    let draining = Instant::now();
    tokio::time::sleep(Duration::from_secs(1)).await;
    bin.signal("KILL");
    assert!(!bin.wait().await.success(), "killed");
    let before_kill = sink.requests().len();
    assert!(
        before_kill > MAX_IN_FLIGHT && before_kill < EVENTS,
        "the kill came mid-drain: {before_kill} requests before it"
    );

    // Restarted on the same store: it delivers the rest.
    let bin = start_binary_with(tmp.path(), &[], &[], &yaml);
    let done = until_all_received(&sink, &ids, Duration::from_secs(120)).await;
    let drain = done - draining;

    // Every stored event reached the sink; only attempts in flight at the kill came twice.
    let stored: HashSet<String> = bin
        .all_events(&client)
        .await
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        stored, ids,
        "the store holds exactly the acknowledged events"
    );
    let status = destination_until(&client, &bin.admin, "app", Duration::from_secs(10), |d| {
        d["pending"] == 0
    })
    .await;
    assert_eq!(status["failed"], 0, "{status:#}");
    // Nothing more arrives once nothing is pending.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let requests = sink.requests();
    let seen = receipts(&requests);
    assert!(
        seen.keys().all(|id| ids.contains(id)),
        "only stored events are delivered"
    );
    let repeats = requests.len() - seen.len();
    let most = seen.values().copied().max().unwrap_or(0);
    assert!(most <= 2, "an event reached the sink {most} times");
    assert!(
        repeats <= MAX_IN_FLIGHT,
        "{repeats} events were sent again: more than the {MAX_IN_FLIGHT} that can be in flight"
    );
    bin.signal("TERM");
    assert!(bin.wait().await.success());
    println!(
        "kill -9 mid-delivery: {EVENTS} events stored in {posting:?}; {before_kill} requests before the kill; all {EVENTS} delivered {drain:?} after the sink started (kill and restart included); {repeats} sent twice (max_in_flight {MAX_IN_FLIGHT}); 0 lost, 0 pending; test took {:?}",
        started.elapsed()
    );
}

/// The delivery of the event `id`, from the admin API of `app`: (the delivery, its attempts).
async fn delivery_of(app: &TestApp, id: &str) -> (Value, Vec<Value>) {
    let list = app
        .admin_json(&format!("/admin/deliveries?event_id={id}"))
        .await;
    let all = list["deliveries"].as_array().unwrap();
    assert_eq!(all.len(), 1, "one delivery of the event: {list:#}");
    let one = app
        .admin_json(&format!("/admin/deliveries/{}", all[0]["id"]))
        .await;
    (all[0].clone(), one["attempts"].as_array().unwrap().clone())
}

/// Posts an Identus event to `app`; answers its id.
async fn identus_event(app: &TestApp) -> String {
    let res = app.identus(&identus_body()).await;
    assert_eq!(res.status(), 200, "the event is accepted");
    res.headers()["hookgate-event-id"]
        .to_str()
        .unwrap()
        .to_string()
}

/// SIGTERM's path with an attempt in flight that answers within `server.shutdown_timeout`: the
/// stop waits for it, and it is recorded delivered; nothing is sent again after a restart.
#[tokio::test]
async fn sigterm_lets_an_attempt_in_flight_finish() {
    let sink = Sink::start().await;
    sink.set(Mode::Delay(Duration::from_millis(500)));
    let url = sink.url("/hooks");
    let tmp = tempfile::tempdir().unwrap();
    let config = |s: &mut hookgate::config::Settings| {
        destination(
            s,
            "app",
            json!({"kind": "http", "url": url, "timeout": "10s"}),
        );
    };
    let app = spawn_in(tmp.path(), config).await;
    let id = identus_event(&app).await;
    sink.wait_for(1, Duration::from_secs(10)).await;

    let stopping = Instant::now();
    app.stop().await;
    let took = stopping.elapsed();

    // The stop waited for the answer (about 500 ms after it was sent), no longer than the
    // shutdown timeout (5 s).
    assert!(took < Duration::from_secs(5), "stopped after {took:?}");
    let app = spawn_in(tmp.path(), config).await;
    let (delivery, attempts) = delivery_of(&app, &id).await;
    assert_eq!(delivery["state"], "delivered", "{delivery:#}");
    assert_eq!(delivery["attempts_made"], 1);
    assert_eq!(attempts.len(), 1, "{attempts:#?}");
    assert_eq!(attempts[0]["status"], 200);
    assert!(
        attempts[0]["duration_ms"].as_i64().unwrap() >= 450,
        "the attempt was the slow one: {attempts:#?}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = sink.requests();
    assert_eq!(got.len(), 1, "the event was sent once");
    assert_eq!(got[0].header("hookgate-event-id"), id);
    app.stop().await;
    println!("graceful stop with an attempt in flight: stopped in {took:?}, delivered once");
}

/// SIGTERM's path with an attempt in flight that outlives `server.shutdown_timeout` (the sink
/// hangs, the destination's timeout is 30 s): the stop cuts it off in time and records no
/// attempt; after a restart the event is sent again and delivered, as attempt 1.
#[tokio::test]
async fn sigterm_cuts_off_an_attempt_that_outlives_the_shutdown_timeout_and_it_is_made_after_restart()
 {
    let sink = Sink::start().await;
    sink.set(Mode::Hang);
    let url = sink.url("/hooks");
    let tmp = tempfile::tempdir().unwrap();
    let config = |s: &mut hookgate::config::Settings| {
        s.server.shutdown_timeout = hookgate::config::HumanDuration(Duration::from_millis(300));
        destination(
            s,
            "app",
            json!({"kind": "http", "url": url, "timeout": "30s"}),
        );
    };
    let app = spawn_in(tmp.path(), config).await;
    let id = identus_event(&app).await;
    sink.wait_for(1, Duration::from_secs(10)).await;

    let stopping = Instant::now();
    app.stop().await;
    let took = stopping.elapsed();
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(3),
        "the attempt got the shutdown timeout (300 ms), not its own 30 s: stopped after {took:?}"
    );

    sink.set(Mode::Ok);
    let app = spawn_in(tmp.path(), config).await;
    let got = sink.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(got[1].header("hookgate-event-id"), id);
    assert_eq!(
        got[1].header("hookgate-attempt"),
        "1",
        "the cut-off attempt was not counted"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    let (delivery, attempts) = loop {
        let (d, a) = delivery_of(&app, &id).await;
        if d["state"] != "pending" || Instant::now() > deadline {
            break (d, a);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert_eq!(delivery["state"], "delivered", "{delivery:#}");
    assert_eq!(delivery["attempts_made"], 1, "{delivery:#}");
    assert_eq!(attempts.len(), 1, "only the attempt made: {attempts:#?}");
    assert_eq!(attempts[0]["status"], 200);
    assert_eq!(attempts[0]["number"], 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.requests().len(), 2, "sent once more, not again");
    app.stop().await;
    println!("graceful stop past the shutdown timeout: stopped in {took:?}; made after restart");
}

/// A fresh schema on the PostgreSQL test server and a store URL on it tagged with an
/// `application_name` of its own; `None` (the test says it is skipped) unless the suite runs
/// on PostgreSQL.
fn pg_store(test: &str) -> Option<(PgSchemaGuard, String)> {
    let Some(base) = postgres_base() else {
        println!("{test}: skipped (PostgreSQL only: HOOKGATE_TEST_BACKEND=postgres)");
        return None;
    };
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let schema = PgSchemaGuard {
        base: base.clone(),
        schema: format!("hg_api_{}_dlv{tag}", std::process::id()),
    };
    pg_execute(&base, &format!("CREATE SCHEMA {}", schema.schema));
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!(
        "{base}{sep}options=-csearch_path%3D{}&application_name=hookgate_dlv_{tag}",
        schema.schema
    );
    Some((schema, url))
}

/// PostgreSQL: two replicas on one database, one destination, a backlog of 1 000 events: each
/// event reaches the sink exactly once, whichever replica sends it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_a_backlog_and_deliver_each_event_once() {
    let Some((schema, store)) =
        pg_store("two_replicas_share_a_backlog_and_deliver_each_event_once")
    else {
        return;
    };
    const EVENTS: usize = 1000;
    let port = Sink::start().await.stop().await;
    let url = format!("http://127.0.0.1:{port}/hooks");
    // Each replica names itself in a header of its destination, so the sink can tell them apart.
    let config = |replica: &'static str| {
        let (store, url) = (store.clone(), url.clone());
        move |s: &mut hookgate::config::Settings| {
            s.store.url = store;
            s.store.pool_size = 8;
            destination(
                s,
                "app",
                json!({"kind": "http", "url": url, "timeout": "10s", "max_in_flight": 16,
                       "retry": RETRY.as_slice(), "headers": {"X-Replica": replica}}),
            );
        }
    };
    let a = spawn_app_with(config("a")).await;
    let b = spawn_in(&a.dir, config("b")).await;
    let admin_a = a.admin.trim_start_matches("http://").to_string();
    let client = reqwest::Client::new();
    let public_a = a.base.trim_start_matches("http://").to_string();
    let public_b = b.base.trim_start_matches("http://").to_string();
    let (ids_a, ids_b) = tokio::join!(
        post_events(&public_a, EVENTS / 2, 8),
        post_events(&public_b, EVENTS / 2, 8)
    );
    let ids: HashSet<String> = ids_a.into_iter().chain(ids_b).collect();
    assert_eq!(ids.len(), EVENTS);

    let sink = Sink::start_on(port).await;
    sink.set(Mode::Delay(Duration::from_millis(10)));
    let draining = Instant::now();
    let done = until_all_received(&sink, &ids, Duration::from_secs(60)).await;
    let drain = done - draining;
    destination_until(&client, &admin_a, "app", Duration::from_secs(10), |d| {
        d["pending"] == 0
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let requests = sink.requests();
    let seen = receipts(&requests);
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "{} events reached the sink more than once, e.g. {:?}",
        twice.len(),
        twice.iter().take(3).collect::<Vec<_>>()
    );
    assert_eq!(requests.len(), EVENTS, "each event exactly once");
    let by_a = requests
        .iter()
        .filter(|r| r.header("x-replica") == "a")
        .count();
    a.stop().await;
    b.stop().await;
    drop(schema);
    println!(
        "two replicas: {EVENTS} events delivered once each in {drain:?}; replica a sent {by_a}, replica b {}",
        EVENTS - by_a
    );
}

/// PostgreSQL: replica A (the real binary) drains a backlog through a slow sink and is killed
/// with SIGKILL; replica B, started after, delivers the rest, and what A had leased once its
/// leases expire (the destination's `timeout`, 1 s, plus 30 s): every event reaches the sink,
/// and nothing is left pending.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_mid_drain_leaves_nothing_undelivered() {
    let Some((schema, store)) = pg_store("a_replica_killed_mid_drain_leaves_nothing_undelivered")
    else {
        return;
    };
    const EVENTS: usize = 1000;
    const MAX_IN_FLIGHT: usize = 32;
    let tmp = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let port = Sink::start().await.stop().await;
    let url = format!("http://127.0.0.1:{port}/hooks");
    let yaml = destination_yaml(&url, "1s", MAX_IN_FLIGHT);
    let a = start_binary_with(tmp.path(), &[("HOOKGATE__STORE__URL", &store)], &[], &yaml);
    let ids: HashSet<String> = post_events(&a.public, EVENTS, 16)
        .await
        .into_iter()
        .collect();

    let sink = Sink::start_on(port).await;
    sink.set(Mode::Delay(Duration::from_millis(100)));
    tokio::time::sleep(Duration::from_millis(1000)).await;
    a.signal("KILL");
    assert!(!a.wait().await.success(), "killed");
    let killed = Instant::now();
    let before_kill = sink.requests().len();
    assert!(
        before_kill > MAX_IN_FLIGHT && before_kill < EVENTS,
        "the kill came mid-drain: {before_kill} requests before it"
    );

    let b = spawn_in(tmp.path(), |s| {
        s.store.url = store.clone();
        destination(
            s,
            "app",
            json!({"kind": "http", "url": url, "timeout": "1s", "max_in_flight": MAX_IN_FLIGHT,
                   "retry": RETRY.as_slice()}),
        );
    })
    .await;
    let done = until_all_received(&sink, &ids, Duration::from_secs(90)).await;
    let received = done - killed;
    // What A had leased and sent may have reached the sink before the kill: it is still
    // pending, under A's leases, until they expire and B makes it again.
    let status = destination_until(
        &client,
        b.admin.trim_start_matches("http://"),
        "app",
        Duration::from_secs(60),
        |d| d["pending"] == 0,
    )
    .await;
    let settled = killed.elapsed();
    assert_eq!(status["failed"], 0, "{status:#}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let requests = sink.requests();
    let seen = receipts(&requests);
    let repeats = requests.len() - seen.len();
    assert!(
        repeats <= MAX_IN_FLIGHT,
        "{repeats} events were sent again: more than the {MAX_IN_FLIGHT} A can have had leased"
    );
    // The arrival of the rest, after the kill: those B could claim at once, then A's leases.
    let after_kill: Vec<Duration> = requests
        .iter()
        .filter(|r| r.at > killed)
        .map(|r| r.at - killed)
        .collect();
    let late = after_kill
        .iter()
        .filter(|d| **d > Duration::from_secs(20))
        .count();
    b.stop().await;
    drop(schema);
    println!(
        "replica killed mid-drain: {before_kill} requests before the kill; every one of {EVENTS} events received {received:?} after it, none pending {settled:?} after it; {late} requests more than 20 s after (A's leases, 1 s + 30 s); {repeats} sent twice"
    );
}

/// CPU time (user + system) of process `pid` so far, from /proc.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // utime and stime are fields 14 and 15 of stat(5), 12 and 13 after the name and state.
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}

/// An attempt in flight (the sink holds the answer) while nothing else is due: the worker waits
/// for it, it does not poll the store in a loop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempt_in_flight_does_not_make_the_worker_spin() {
    if !std::path::Path::new("/proc/self/stat").exists() {
        println!("skipped: no /proc");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let sink = Sink::start().await;
    sink.set(Mode::Hang);
    let yaml = destination_yaml(&sink.url("/hooks"), "30s", 32);
    // On a PostgreSQL run, the binary on PostgreSQL too (its own attempt is under its lease).
    let pg = postgres_base()
        .and_then(|_| pg_store("an_attempt_in_flight_does_not_make_the_worker_spin"));
    // A short shutdown timeout: SIGTERM cuts the hanging attempt off soon.
    let mut env = vec![("HOOKGATE__SERVER__SHUTDOWN_TIMEOUT", "500ms")];
    env.extend(
        pg.iter()
            .map(|(_, url)| ("HOOKGATE__STORE__URL", url.as_str())),
    );
    let bin = start_binary_with(tmp.path(), &env, &[], &yaml);
    post_events(&bin.public, 1, 1).await;
    sink.wait_for(1, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = cpu_time(bin.pid());
    let wall = Instant::now();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let used = cpu_time(bin.pid()) - before;
    let wall = wall.elapsed();
    let stopping = Instant::now();
    bin.signal("TERM");
    assert!(bin.wait().await.success(), "SIGTERM: exit 0");
    let took = stopping.elapsed();
    assert!(
        took < Duration::from_secs(3),
        "the hanging attempt was cut off after the shutdown timeout (500 ms): {took:?}"
    );
    drop(pg);
    println!("one attempt in flight for {wall:?}: hookgate used {used:?} of CPU");
    assert!(
        used < wall / 10,
        "hookgate used {used:?} of CPU in {wall:?} with one attempt in flight and nothing due"
    );
}

/// The baseline of the tests above, on either backend: a backlog of 2 000 events, stored while
/// the sink is stopped, then drained with attempts in flight and no fault: each event reaches
/// the sink exactly once (a finished attempt is never claimed again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_is_delivered_exactly_once_without_faults() {
    const EVENTS: usize = 2000;
    let port = Sink::start().await.stop().await;
    let url = format!("http://127.0.0.1:{port}/hooks");
    let app = spawn_app_with(|s| {
        destination(
            s,
            "app",
            json!({"kind": "http", "url": url, "timeout": "10s", "max_in_flight": 32,
                   "retry": RETRY.as_slice()}),
        );
    })
    .await;
    let ids: HashSet<String> = post_events(app.base.trim_start_matches("http://"), EVENTS, 16)
        .await
        .into_iter()
        .collect();
    let sink = Sink::start_on(port).await;
    sink.set(Mode::Delay(Duration::from_millis(5)));
    let draining = Instant::now();
    let done = until_all_received(&sink, &ids, Duration::from_secs(60)).await;
    let drain = done - draining;
    let client = reqwest::Client::new();
    destination_until(
        &client,
        app.admin.trim_start_matches("http://"),
        "app",
        Duration::from_secs(10),
        |d| d["pending"] == 0,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let requests = sink.requests();
    let seen = receipts(&requests);
    assert_eq!(seen.len(), EVENTS);
    assert_eq!(
        requests.len(),
        EVENTS,
        "{} events reached the sink more than once",
        seen.values().filter(|n| **n > 1).count()
    );
    app.stop().await;
    println!("no faults: {EVENTS} events delivered exactly once in {drain:?}");
}
