//! The promises under faults: the real binary killed with SIGKILL under load, stopped with
//! SIGTERM under load, and starved of disk space; clients behave like senders (retry what was not
//! acknowledged). `HOOKGATE_CRASH_ROUNDS` sets how many kills the crash test makes
//! (`tests/scripts/faults.sh` runs many more than CI does).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::helpers::*;

/// A run's id: the first four groups of a fresh UUID, so that `{run}-{n:012}` is a UUID (the
/// Identus envelope id is one).
fn new_run() -> String {
    let mut id = uuid::Uuid::new_v4().hyphenated().to_string();
    id.truncate(23);
    id
}

/// The body of the `n`th event of a run: an Identus connection update with ids of its own.
fn event(run: &str, n: usize) -> String {
    connection_event(
        &format!("{run}-{n:012}"),
        &format!("conn-{run}-{n:08}"),
        "ConnectionResponseSent",
        "2024-05-01T10:20:30.123456Z",
    )
}

/// What a sender saw for one request.
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    /// 2xx with this event id: the sender will not send it again.
    Acked(String),
    /// Anything else (503, a reset connection, a timeout): the sender retries.
    Failed(String),
}

async fn send(client: &reqwest::Client, public: &str, body: &str) -> Outcome {
    let res = client
        .post(format!("http://{public}/identus/events"))
        .header("content-type", "application/json")
        .bearer_auth(IDENTUS_TOKEN)
        .body(body.to_string())
        .send()
        .await;
    match res {
        Ok(r) if r.status().is_success() => {
            let id = r
                .headers()
                .get("hookgate-event-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            match r.bytes().await {
                // The answer was cut off: the sender cannot know it was acknowledged.
                Err(e) => Outcome::Failed(format!("answer cut off: {e}")),
                Ok(_) => Outcome::Acked(id),
            }
        }
        Ok(r) => {
            let status = r.status();
            let retry_after = r.headers().contains_key("retry-after");
            assert!(
                status == 503 && retry_after,
                "under faults the only refusal is 503 with Retry-After, got {status}"
            );
            Outcome::Failed(status.to_string())
        }
        Err(e) => Outcome::Failed(format!("connection: {e}")),
    }
}

/// Senders that post events `next..` from `clients` connections until `stop` is set or the
/// server goes away; every outcome is recorded under the event's number.
fn load(
    public: &str,
    run: &Arc<str>,
    clients: usize,
    next: &Arc<AtomicUsize>,
    stop: &Arc<AtomicBool>,
    outcomes: &Arc<Mutex<BTreeMap<usize, Outcome>>>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..clients)
        .map(|_| {
            let (public, run, next, stop, outcomes) = (
                public.to_string(),
                run.clone(),
                next.clone(),
                stop.clone(),
                outcomes.clone(),
            );
            tokio::spawn(async move {
                let client = reqwest::Client::builder()
                    .timeout(Duration::from_secs(10))
                    .build()
                    .unwrap();
                while !stop.load(Ordering::SeqCst) {
                    let n = next.fetch_add(1, Ordering::SeqCst);
                    let outcome = send(&client, &public, &event(&run, n)).await;
                    let failed = matches!(outcome, Outcome::Failed(_));
                    outcomes.lock().unwrap().insert(n, outcome);
                    if failed {
                        // The server is gone or refusing: stop this sender (it retries later).
                        break;
                    }
                }
            })
        })
        .collect()
}

/// Sends each of `numbers` again, as a sender retrying what it was not told was stored; every
/// retry must be acknowledged, and its id is recorded in `acked`.
async fn retry_all<'a>(
    client: &reqwest::Client,
    public: &str,
    run: &str,
    numbers: impl IntoIterator<Item = &'a usize>,
    acked: &mut HashMap<usize, String>,
) {
    for n in numbers {
        match send(client, public, &event(run, *n)).await {
            Outcome::Acked(id) => {
                acked.insert(*n, id);
            }
            other => panic!("retry of event {n}: {other:?}"),
        }
    }
}

/// Splits outcomes into the acknowledged (with their ids) and the rest.
fn partition(outcomes: BTreeMap<usize, Outcome>) -> (HashMap<usize, String>, Vec<usize>) {
    let mut acked = HashMap::new();
    let mut failed = Vec::new();
    for (n, o) in outcomes {
        match o {
            Outcome::Acked(id) => {
                acked.insert(n, id);
            }
            Outcome::Failed(_) => failed.push(n),
        }
    }
    (acked, failed)
}

/// A pseudo-random number of milliseconds in `lo..hi` (no RNG crate needed).
fn random_ms(lo: u64, hi: u64) -> u64 {
    let r = u64::from_le_bytes(
        uuid::Uuid::new_v4().as_bytes()[..8]
            .try_into()
            .unwrap_or_default(),
    );
    lo + r % (hi - lo)
}

/// Checks the store against what senders were told: every acknowledged event is there with the
/// id it was acknowledged with and the bytes that were sent, and no event is there twice.
async fn check_store(
    bin: &Binary,
    client: &reqwest::Client,
    run: &str,
    acked: &HashMap<usize, String>,
    sample_raw: usize,
) -> HashSet<usize> {
    let events = bin.all_events(client).await;
    let mut stored: HashMap<usize, (String, serde_json::Value)> = HashMap::new();
    for e in &events {
        let sender_id = e["sender_id"].as_str().unwrap();
        let n: usize = sender_id
            .strip_prefix(&format!("{run}-"))
            .unwrap()
            .parse()
            .unwrap();
        let previous = stored.insert(
            n,
            (e["id"].as_str().unwrap().to_string(), e["payload"].clone()),
        );
        assert!(previous.is_none(), "event {n} is stored twice");
    }
    for (n, id) in acked {
        let (stored_id, payload) = stored
            .get(n)
            .unwrap_or_else(|| panic!("acknowledged event {n} ({id}) was lost"));
        assert_eq!(stored_id, id, "event {n} is stored under another id");
        let sent: serde_json::Value = serde_json::from_str(&event(run, *n)).unwrap();
        assert_eq!(payload, &sent, "event {n} is not whole");
    }
    // The exact bytes, for a sample (one request each).
    for (n, id) in acked.iter().take(sample_raw) {
        let raw = client
            .get(format!("http://{}/admin/events/{id}/raw", bin.admin))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(raw, event(run, *n).as_bytes(), "event {n}'s bytes");
    }
    stored.into_keys().collect()
}

/// Kills hookgate with SIGKILL at a random moment under load from many senders, restarts it,
/// and checks nothing acknowledged was lost or doubled; then the senders retry what they were
/// not told was stored, and each event ends up stored exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_no_acknowledged_event_and_retries_store_each_once() {
    let rounds: usize = std::env::var("HOOKGATE_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let tmp = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let run: Arc<str> = Arc::from(new_run().as_str());
    let mut acked: HashMap<usize, String> = HashMap::new();
    let mut unacked: HashSet<usize> = HashSet::new();
    let next = Arc::new(AtomicUsize::new(0));
    let mut in_flight_at_kill = 0;
    for round in 0..rounds {
        let bin = start_binary(tmp.path(), &[], &[]);
        if round > 0 {
            check_store(&bin, &client, &run, &acked, 20).await;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let outcomes = Arc::new(Mutex::new(BTreeMap::new()));
        let before = next.load(Ordering::SeqCst);
        let senders = load(&bin.public, &run, 32, &next, &stop, &outcomes);
        tokio::time::sleep(Duration::from_millis(random_ms(150, 900))).await;
        bin.signal("KILL");
        let status = bin.wait().await;
        assert!(!status.success(), "killed: {status:?}");
        stop.store(true, Ordering::SeqCst);
        for s in senders {
            s.await.unwrap();
        }
        let outcomes = outcomes.lock().unwrap().clone();
        let sent = next.load(Ordering::SeqCst) - before;
        assert!(
            outcomes.len() == sent,
            "every request has an outcome ({} of {sent})",
            outcomes.len()
        );
        let (round_acked, round_failed) = partition(outcomes);
        acked.extend(round_acked);
        in_flight_at_kill += round_failed.len();
        unacked.extend(round_failed);
    }
    // After the last kill: a restart finds every acknowledged event, then the senders retry.
    let bin = start_binary(tmp.path(), &[], &[]);
    let stored_before_retry = check_store(&bin, &client, &run, &acked, 50).await;
    let committed_unacked = unacked.intersection(&stored_before_retry).count();
    retry_all(&client, &bin.public, &run, &unacked, &mut acked).await;
    // A retry of something already acknowledged is a duplicate with the same id.
    for (n, id) in acked.iter().take(50) {
        let res = client
            .post(format!("http://{}/identus/events", bin.public))
            .header("content-type", "application/json")
            .bearer_auth(IDENTUS_TOKEN)
            .body(event(&run, *n))
            .send()
            .await
            .unwrap();
        assert_eq!(accepted(res).await, (id.clone(), true), "event {n} again");
    }
    let stored = check_store(&bin, &client, &run, &acked, 0).await;
    assert_eq!(stored.len(), acked.len(), "each event stored exactly once");
    assert!(
        acked.len() > rounds * 10,
        "the load was real: {} events",
        acked.len()
    );
    bin.signal("TERM");
    assert!(bin.wait().await.success());
    println!(
        "crash test: {rounds} SIGKILLs, {} events acknowledged, 0 lost, 0 stored twice; {in_flight_at_kill} requests cut off by the kills ({committed_unacked} of them had been committed), all stored once after retry",
        acked.len()
    );
}

/// SIGTERM under load: every request either gets its 2xx after commit or fails at the
/// connection (or 503), never 2xx without a commit; the process exits 0 in time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_acknowledges_only_what_was_committed_and_exits_0() {
    let tmp = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let run: Arc<str> = Arc::from(new_run().as_str());
    let bin = start_binary(tmp.path(), &[], &[]);
    let stop = Arc::new(AtomicBool::new(false));
    let outcomes = Arc::new(Mutex::new(BTreeMap::new()));
    let next = Arc::new(AtomicUsize::new(0));
    let senders = load(&bin.public, &run, 32, &next, &stop, &outcomes);
    tokio::time::sleep(Duration::from_millis(random_ms(200, 600))).await;
    let signalled = std::time::Instant::now();
    bin.signal("TERM");
    let status = bin.wait().await;
    let took = signalled.elapsed();
    assert!(status.success(), "exit status {status:?}");
    // TEST_CONFIG's shutdown_timeout is 5 s (a coarse bound, not a performance figure).
    assert!(took < Duration::from_secs(6), "stopped after {took:?}");
    stop.store(true, Ordering::SeqCst);
    for s in senders {
        s.await.unwrap();
    }
    let outcomes = outcomes.lock().unwrap().clone();
    let (acked, failed) = partition(outcomes);
    let bin = start_binary(tmp.path(), &[], &[]);
    check_store(&bin, &client, &run, &acked, 20).await;
    let mut all = acked.clone();
    retry_all(&client, &bin.public, &run, &failed, &mut all).await;
    let stored = check_store(&bin, &client, &run, &all, 0).await;
    assert_eq!(stored.len(), all.len());
    assert!(!acked.is_empty());
    bin.signal("TERM");
    assert!(bin.wait().await.success());
    println!(
        "graceful stop: {} requests answered 2xx before exit 0 in {took:?}, {} refused or cut off, all stored once after retry",
        acked.len(),
        failed.len()
    );
}

/// The disk fills up (a file size limit, RLIMIT_FSIZE, on the process: writes past it fail as
/// they would on a full disk): requests get 503 with Retry-After and never a 2xx that was not
/// stored, `/readyz` says not ready; when space comes back (the limit is raised on the running
/// process) hookgate is ready again by itself and nothing acknowledged is missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_means_503_and_not_ready_then_recovery_without_restart() {
    if std::process::Command::new("prlimit")
        .arg("--version")
        .output()
        .is_err()
    {
        println!("skipped: prlimit (util-linux) is not installed");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let run = new_run();
    // Soft limit only, so it can be raised again on the running process.
    let bin = start_binary(
        tmp.path(),
        &[],
        &["prlimit", "--fsize=262144:unlimited", "--"],
    );
    let ready = |client: &reqwest::Client, public: &str| {
        let url = format!("http://{public}/readyz");
        let client = client.clone();
        async move { client.get(url).send().await.unwrap().status().as_u16() }
    };
    assert_eq!(ready(&client, &bin.public).await, 200);
    let mut acked = HashMap::new();
    let mut refused = Vec::new();
    let mut n = 0;
    // Fill until the store refuses steadily (the WAL and the database file both at the limit).
    let mut refused_in_a_row = 0;
    while refused_in_a_row < 20 {
        assert!(n < 20_000, "the store never filled up");
        match send(&client, &bin.public, &event(&run, n)).await {
            Outcome::Acked(id) => {
                acked.insert(n, id);
                refused_in_a_row = 0;
            }
            Outcome::Failed(why) => {
                assert_eq!(why, "503 Service Unavailable");
                refused.push(n);
                refused_in_a_row += 1;
            }
        }
        n += 1;
    }
    // Not ready while full. At the very edge a checkpoint can give the WAL back room for one
    // small write, so the probe behind /readyz may pass once: the store really was writable at
    // that moment, and the next write fills it again. So: readiness must say 503 within a few
    // tries while events keep coming, and any event taken meanwhile counts as acknowledged.
    let mut answers = Vec::new();
    loop {
        assert!(
            answers.len() < 40,
            "never not ready while full: {answers:?}"
        );
        let status = ready(&client, &bin.public).await;
        answers.push(format!("readyz {status}"));
        if status == 503 {
            break;
        }
        match send(&client, &bin.public, &event(&run, n)).await {
            Outcome::Acked(id) => {
                acked.insert(n, id);
                answers.push("event stored".into());
            }
            Outcome::Failed(why) => {
                assert_eq!(why, "503 Service Unavailable");
                refused.push(n);
                answers.push("event 503".into());
            }
        }
        n += 1;
    }
    let metrics = metrics_text(&client, &format!("http://{}", bin.admin)).await;
    assert!(metrics.contains("status=\"503\""), "503s are counted");

    // Space comes back.
    let pid = bin.pid().to_string();
    let raised = std::process::Command::new("prlimit")
        .args(["--pid", &pid, "--fsize=unlimited:unlimited"])
        .status()
        .unwrap();
    assert!(raised.success());
    assert_eq!(
        ready(&client, &bin.public).await,
        200,
        "ready again without a restart or a new event"
    );
    retry_all(&client, &bin.public, &run, &refused, &mut acked).await;
    let stored = check_store(&bin, &client, &run, &acked, 20).await;
    assert_eq!(stored.len(), acked.len());
    bin.signal("TERM");
    assert!(bin.wait().await.success());
    println!(
        "disk full: {} events stored before the disk filled, {} refused with 503 while full, all stored after space came back; /readyz while full: {answers:?}",
        acked.len() - refused.len(),
        refused.len()
    );
}

/// A store that cannot be created (its folder is a file) stops the start with an error naming
/// the field and the path, and exit code 1: hookgate never listens without a store.
#[test]
fn a_store_that_cannot_be_created_stops_the_start_naming_store_url() {
    let tmp = tempfile::tempdir().unwrap();
    let not_a_folder = tmp.path().join("not-a-folder");
    std::fs::write(&not_a_folder, "a file").unwrap();
    let db = not_a_folder.join("hookgate.db");
    let config = TEST_CONFIG.to_string() + &format!("store:\n  url: sqlite://{}\n", db.display());
    let file = tmp.path().join("bin.yaml");
    std::fs::write(&file, config).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_hookgate"))
        .args(["--config", file.to_str().unwrap(), "serve"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("hookgate started without a usable store");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("store.url"), "{stderr}");
    assert!(stderr.contains("not-a-folder"), "{stderr}");
}
