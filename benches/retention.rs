//! The retention benchmark: a store of 1 M events pruned to 100 k.
//!
//! ```text
//! cargo bench --bench retention                      # 1 M events, 100 k kept, 1k req/s (~5 min)
//! cargo bench --bench retention -- --events 200000 --keep 20000   # a smaller store
//! cargo bench --bench retention -- --rate 2000       # the steady load of part B
//! ```
//!
//! It builds a store as hookgate lays it out (its own migrations, incremental auto-vacuum) with
//! `--events` Identus-sized events (≈1.5 KiB), all but `--keep` of them received two days and
//! more ago, a connection projection per 20 events (50 k) pointing at old events (so pruning copies their JSON),
//! and checkpoints it. Then:
//!
//! - **A. Prune rate and space given back**, in this process through the store API, batch by
//!   batch as the pruner runs them ([`PRUNE_BATCH`] events each, then incremental vacuum
//!   steps): events per second, the time of one batch and one vacuum step (the time the writes
//!   queued behind it wait), and the file's size before and after.
//! - **B. Receive latency while pruning**, on a copy of the same store: the release binary under
//!   a steady open-loop load (`--rate` Identus requests per second, each timed from when it was
//!   due), first with `store.retention: 0` (nothing to prune, the baseline; `--baseline`
//!   seconds, 30 by default), then with `store.retention: 1d`, until the pruner logs its pass;
//!   the first 3 s of each are not measured. p50/p99/p99.9 of both, and their ratios.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use hookgate::config::StoreSettings;
use hookgate::store::retention::PRUNE_BATCH;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use rusqlite::{Connection, params};
use time::OffsetDateTime;
use tokio::net::TcpStream;

const IDENTUS_TOKEN: &str = "bench-identus-token-0123456789";
/// Connections of the open-loop load (enough that a slow answer does not hold the next due one).
const CONNECTIONS: usize = 64;
/// The first seconds of each run of part B, not measured: connections, first reads of a store
/// just opened.
const WARMUP: Duration = Duration::from_secs(3);
/// Events per connection projection in the built store (1 M events: 50 k connections).
const EVENTS_PER_PROJECTION: usize = 20;

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let events: usize = arg(&args, "--events", 1_000_000);
    let keep: usize = arg(&args, "--keep", 100_000).min(events);
    let rate: u64 = arg(&args, "--rate", 1000);
    let baseline_secs: u64 = arg(&args, "--baseline", 30);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(events, keep, rate, Duration::from_secs(baseline_secs)));
}

async fn run(events: usize, keep: usize, rate: u64, baseline: Duration) {
    let dir = tempfile::Builder::new()
        .prefix("hookgate-retention-bench")
        .tempdir_in(concat!(env!("CARGO_MANIFEST_DIR"), "/target"))
        .unwrap();
    let a = dir.path().join("a.db");
    let started = Instant::now();
    build(&a, events, keep);
    println!(
        "built {events} events ({keep} recent) in {:.1} s: {}",
        started.elapsed().as_secs_f64(),
        mib(file_size(&a))
    );
    let b = dir.path().join("b.db");
    std::fs::copy(&a, &b).unwrap();

    // A. Through the store API.
    let before = store_size(&a);
    let settings = StoreSettings {
        url: format!("sqlite://{}", a.display()),
        retention: hookgate::config::HumanDuration(Duration::ZERO),
        ..StoreSettings::default()
    };
    let store = hookgate::store::connect(&settings).await.unwrap();
    let cutoff = OffsetDateTime::now_utc() - Duration::from_secs(24 * 3600);
    let mut batch_us = Histogram::<u64>::new(3).unwrap();
    let mut deleted = 0u64;
    let t = Instant::now();
    loop {
        let b = Instant::now();
        let p = store.prune(cutoff, PRUNE_BATCH).await.unwrap();
        batch_us.record(b.elapsed().as_micros() as u64).unwrap();
        deleted += p.deleted;
        if !p.more {
            break;
        }
    }
    let prune_secs = t.elapsed().as_secs_f64();
    let mut step_us = Histogram::<u64>::new(3).unwrap();
    let t = Instant::now();
    loop {
        let s = Instant::now();
        let more = store.reclaim().await.unwrap();
        step_us.record(s.elapsed().as_micros() as u64).unwrap();
        if !more {
            break;
        }
    }
    let reclaim_secs = t.elapsed().as_secs_f64();
    store.close().await;
    let after = store_size(&a);
    assert_eq!(deleted as usize, events - keep, "every old event pruned");

    println!("\n## A. Prune rate and space given back ({events} events → {keep})\n");
    println!("| figure | value |\n|---|---:|");
    println!("| events deleted | {deleted} |");
    println!(
        "| delete time | {prune_secs:.1} s ({:.0} events/s) |",
        deleted as f64 / prune_secs
    );
    println!(
        "| one batch of {PRUNE_BATCH} (p50 / p99 / max) | {:.1} / {:.1} / {:.1} ms |",
        ms(batch_us.value_at_quantile(0.5)),
        ms(batch_us.value_at_quantile(0.99)),
        ms(batch_us.max())
    );
    println!(
        "| giving space back | {reclaim_secs:.1} s in {} steps |",
        step_us.len()
    );
    println!(
        "| one vacuum step (p50 / p99 / max) | {:.1} / {:.1} / {:.1} ms |",
        ms(step_us.value_at_quantile(0.5)),
        ms(step_us.value_at_quantile(0.99)),
        ms(step_us.max())
    );
    println!(
        "| store on disk before → after | {} → {} ({:.1} %) |",
        mib(before),
        mib(after),
        100.0 * after as f64 / before as f64
    );

    // B. The binary under load, without and with pruning.
    println!("\n## B. Receive latency under {rate} req/s, with and without pruning\n");
    let base = {
        let server = Server::start(&b, "0");
        let (hist, errors) = load(&server.addr, rate, move |_| Some(baseline)).await;
        server.stop();
        (hist, errors, baseline.as_secs_f64())
    };
    let pruning = {
        let server = Server::start(&b, "1d");
        let done = server.pruned.clone();
        let (hist, errors) = load(&server.addr, rate, move |elapsed| {
            // Until the pruner logs its pass (delete + vacuum), at most 15 minutes.
            match *done.lock().unwrap() {
                Some(_) => None,
                None if elapsed > Duration::from_secs(900) => None,
                None => Some(elapsed + Duration::from_millis(100)),
            }
        })
        .await;
        let line = server.pruned.lock().unwrap().clone();
        server.stop();
        let secs = line
            .as_ref()
            .and_then(|l| l["fields"]["seconds"].as_f64())
            .unwrap_or(f64::NAN);
        println!(
            "pruner pass: {}",
            line.map(|l| l["fields"].to_string()).unwrap_or_default()
        );
        (hist, errors, secs)
    };
    let after_b = store_size(&b);
    println!("| run | seconds | requests | errors | p50 ms | p99 ms | p99.9 ms | max ms |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (name, (h, errors, secs)) in [("no pruning", &base), ("while pruning", &pruning)] {
        println!(
            "| {name} | {secs:.1} | {} | {errors} | {:.2} | {:.2} | {:.2} | {:.2} |",
            h.len(),
            ms(h.value_at_quantile(0.5)),
            ms(h.value_at_quantile(0.99)),
            ms(h.value_at_quantile(0.999)),
            ms(h.max())
        );
    }
    let ratio = |q: f64| pruning.0.value_at_quantile(q) as f64 / base.0.value_at_quantile(q) as f64;
    println!(
        "| ratio (pruning / none) | | | | {:.2}× | {:.2}× | {:.2}× | |",
        ratio(0.5),
        ratio(0.99),
        ratio(0.999)
    );
    println!("store on disk after run B: {}", mib(after_b));
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

fn mib(bytes: u64) -> String {
    format!("{:.0} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn file_size(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

/// The database file and its WAL.
fn store_size(db: &Path) -> u64 {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    file_size(db) + file_size(Path::new(&wal))
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// An Identus ConnectionUpdated body of ≈1.5 KiB for connection `conn`.
fn identus_body(id: &str, conn: &str) -> String {
    let pad = "x".repeat(900);
    format!(
        r#"{{"type":"ConnectionUpdated","id":"{id}","ts":"2024-05-01T10:20:30.123456Z","data":{{"connectionId":"{conn}","thid":"0527aea1-d131-3948-a34d-03af39aba8b4","label":"Peter","myDid":"did:peer:12345","theirDid":"did:peer:67890","role":"Inviter","state":"ConnectionResponseSent","invitation":{{"id":"0527aea1-d131-3948-a34d-03af39aba8b4","type":"https://didcomm.org/out-of-band/2.0/invitation","from":"did:peer:1234457","invitationUrl":"https://my.domain.com/path?_oob={pad}"}},"createdAt":"2024-05-01T10:19:00.000001Z","updatedAt":"2024-05-01T10:20:30.100001Z","metaRetries":5,"self":"{conn}","kind":"Connection"}},"walletId":"00000000-0000-0000-0000-000000000000"}}"#
    )
}

/// Builds the store directly in SQL (hookgate's own migrations; the bulk insert without fsync,
/// as no request waits), then leaves it as hookgate would find it: WAL, checkpointed.
fn build(path: &Path, events: usize, keep: usize) {
    let mut c = Connection::open(path).unwrap();
    c.pragma_update(None, "auto_vacuum", "INCREMENTAL").unwrap();
    c.pragma_update(None, "journal_mode", "OFF").unwrap();
    c.pragma_update(None, "synchronous", "OFF").unwrap();
    c.pragma_update(None, "cache_size", -512 * 1024).unwrap();
    hookgate::store::sqlite::schema::migrate(&mut c).unwrap();
    let now = OffsetDateTime::now_utc();
    let old = events - keep;
    let projections = (events / EVENTS_PER_PROJECTION).max(1);
    let tx = c.transaction().unwrap();
    {
        let mut insert = tx
            .prepare(
                "INSERT INTO events (id, source, kind, event_type, dedupe_key, received_at, headers, body)
                 VALUES (?1, 'identus', 'identus', 'ConnectionUpdated', ?1, ?2, ?3, ?4)",
            )
            .unwrap();
        let headers = r#"{"content-type":"application/json"}"#;
        for i in 0..events {
            // Old events one a second up to two days ago; recent ones over the last hour.
            let at = if i < old {
                now - Duration::from_secs(2 * 24 * 3600 + (old - i) as u64)
            } else {
                now - Duration::from_secs(3600) + Duration::from_millis(((i - old) * 30) as u64)
            };
            let id = uuid::Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 | i as u128)
                .to_string();
            let conn = format!("conn-{}", i % projections);
            insert
                .execute(params![
                    id,
                    rfc3339(at),
                    headers,
                    identus_body(&id, &conn).as_bytes()
                ])
                .unwrap();
        }
    }
    // The connections' latest state, set by the last old event of each.
    let first = old.saturating_sub(projections) as i64;
    tx.execute(
        "INSERT INTO projections (view, key, scope, state, attrs, ord, event_seq, body_start, body_len)
         SELECT 'identus/connections', 'conn-' || ((seq - 1) % ?3), '', 'ConnectionResponseSent',
                '{}', NULL, seq, 0, length(body)
         FROM events WHERE seq > ?1 AND seq <= ?2",
        params![first, old as i64, projections as i64],
    )
    .unwrap();
    tx.commit().unwrap();
    c.pragma_update(None, "journal_mode", "WAL").unwrap();
}

/// The release binary on a store, with its pruner's log line when it comes.
struct Server {
    child: Child,
    addr: String,
    pruned: Arc<Mutex<Option<serde_json::Value>>>,
    _config: tempfile::TempDir,
}

impl Server {
    fn start(db: &Path, retention: &str) -> Self {
        let config = tempfile::tempdir().unwrap();
        let file: PathBuf = config.path().join("bench.yaml");
        std::fs::write(
            &file,
            format!(
                r#"
server:
  listen: 127.0.0.1:0
  max_concurrent_requests: 4096
admin:
  listen: 127.0.0.1:0
  token: bench-admin-token-0123456789
store:
  url: sqlite://{db}
  retention: {retention}
log:
  format: json
  level: warn,hookgate::startup=info,hookgate::store=info
sources:
  identus:
    kind: identus
    path: /identus/events
    verify: {{ scheme: bearer, secrets: ["{IDENTUS_TOKEN}"] }}
"#,
                db = db.display()
            ),
        )
        .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_hookgate"))
            .args(["--config", file.to_str().unwrap(), "serve"])
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let addr = loop {
            let line = lines.next().expect("hookgate says it listens").unwrap();
            let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            if v["fields"]["message"] == "hookgate is listening" {
                break v["fields"]["public"].as_str().unwrap().to_string();
            }
        };
        let pruned = Arc::new(Mutex::new(None));
        let seen = pruned.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
                if v["fields"]["message"] == "pruned events older than store.retention" {
                    *seen.lock().unwrap() = Some(v);
                }
            }
        });
        Self {
            child,
            addr,
            pruned,
            _config: config,
        }
    }

    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// A steady open-loop load of `rate` Identus requests per second for as long as `until` (given
/// the time since start) says: each request is timed from when it was due, after [`WARMUP`]. The latencies of
/// the 2xx answers (µs), and the count of others.
async fn load(
    addr: &str,
    rate: u64,
    until: impl Fn(Duration) -> Option<Duration> + Send + Sync + 'static,
) -> (Histogram<u64>, u64) {
    let counter = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let until = Arc::new(until);
    let start = Instant::now() + Duration::from_millis(50);
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let mut tasks = Vec::new();
    for _ in 0..CONNECTIONS {
        let (addr, counter, errors, until) = (
            addr.to_string(),
            counter.clone(),
            errors.clone(),
            until.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut hist = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).unwrap();
            let mut sender = connect(&addr).await.unwrap();
            loop {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let due = start + Duration::from_nanos(n.saturating_mul(1_000_000_000) / rate);
                match until(due.saturating_duration_since(start)) {
                    Some(end) if due.saturating_duration_since(start) < end => {}
                    _ => break,
                }
                tokio::time::sleep_until(due.into()).await;
                let id = uuid::Uuid::from_u128(run ^ (u128::from(n) << 64)).to_string();
                let req = Request::post("/identus/events")
                    .header("host", "bench")
                    .header("content-type", "application/json")
                    .header("authorization", format!("Bearer {IDENTUS_TOKEN}"))
                    .body(Full::new(Bytes::from(identus_body(&id, &id))))
                    .unwrap();
                let result = async {
                    let res = sender.send_request(req).await?;
                    let status = res.status();
                    res.into_body().collect().await?;
                    Ok::<_, Box<dyn std::error::Error + Send + Sync>>(status)
                }
                .await;
                match result {
                    Ok(s) if s.is_success() => {
                        if due >= start + WARMUP {
                            let _ = hist.record((due.elapsed().as_micros() as u64).max(1));
                        }
                    }
                    Ok(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        sender = connect(&addr).await.unwrap();
                    }
                }
            }
            hist
        }));
    }
    let mut total = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).unwrap();
    for t in tasks {
        total.add(t.await.unwrap()).unwrap();
    }
    (total, errors.load(Ordering::Relaxed))
}

async fn connect(addr: &str) -> Option<hyper::client::conn::http1::SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(addr).await.ok()?;
    stream.set_nodelay(true).ok()?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .ok()?;
    tokio::spawn(conn);
    Some(sender)
}
