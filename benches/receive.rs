//! The receive-path benchmark: hookgate beside a bare server, in one run.
//!
//! ```text
//! cargo bench --bench receive                 # full run (~10 minutes: 3 runs per row), table + JSON + SVG
//! cargo bench --bench receive -- --repeat 5   # runs per row (the row shows their median)
//! cargo bench --bench receive -- --only abp   # only the scenarios whose name contains "abp"
//! cargo bench --bench receive -- --only 'identus$'   # only the scenario named "identus"
//! cargo bench --bench receive -- --report docs/bench.json --out docs   # redraw a saved run
//! cargo bench --bench receive -- --quick      # 2 s per measurement, for a smoke run
//! cargo bench --bench receive -- --out DIR    # where bench.json and bench.svg go (default target/bench)
//! cargo bench --bench receive -- --postgres [URL]   # + identus rows on PostgreSQL (URL or $HOOKGATE_TEST_POSTGRES_URL)
//! cargo bench --bench receive -- --traces     # + a hookgate-traced row per closed-loop scenario
//! ```
//!
//! It starts, as separate processes so that CPU time and memory are their own:
//! - a **bare server** (this program again, in the `bare` role): axum, reads the body, answers
//!   200 — the physical limit of this machine for the same requests;
//! - **hookgate** (the release binary) with SQLite in a temporary folder and the three sources;
//! - with `--postgres`, for the identus scenario: **hookgate-pg** (one hookgate process on
//!   PostgreSQL, in a schema of its own created before the run and dropped after, chosen with
//!   `options=-csearch_path%3D<schema>`) and **hookgate-pg×2** (two hookgate processes on that
//!   schema, the connections spread over both; they share the cores with everything else);
//! - with `--traces`: **hookgate-traced** (hookgate on SQLite with `telemetry.otlp.endpoint` set,
//!   every trace sampled) and, as its collector, a second bare server (it reads each OTLP export
//!   and answers 200), so that the cost of traces is hookgate's own;
//! - if installed, **adnanh/webhook** (Debian's `webhook`) with a `payload-hmac-sha256` rule.
//!
//! The load generator is its own tokio/hyper client in this process, on the same cores:
//! closed loop (N connections, each sending the next request when the answer arrives) and
//! open loop (a fixed rate, each request timed from when it was due, so a slow server cannot
//! hide its queue). Every figure is also given as a ratio to the bare server's in the same run.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;

const ROLE_VAR: &str = "HOOKGATE_BENCH_ROLE";
const KRATOS_KEY: &str = "bench-kratos-key-0123456789";
const ADMIN_TOKEN: &str = "bench-admin-token-0123456789";
const IDENTUS_TOKEN: &str = "bench-identus-token-0123456789";
const ABP_SECRET: &str = "whs_0f1e2d3c4b5a69788796a5b4c3d2e1f0";
const WEBHOOK_SECRET: &str = "bench-webhook-hmac-secret";
/// The one event the duplicate scenario sends again and again.
const DUPLICATE_ID: &str = "d0d0d0d0-0000-4000-8000-000000000001";

fn main() {
    if std::env::var(ROLE_VAR).as_deref() == Ok("bare") {
        bare_server();
        return;
    }
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let repeats = args
        .iter()
        .position(|a| a == "--repeat")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(if quick { 1 } else { 3 })
        .max(1);
    // `--only NAME`: run only the scenarios whose name contains NAME (for tuning).
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let out = args
        .iter()
        .position(|a| a == "--out")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/target/bench")));
    // `--report FILE`: redraw the table and plot of a saved run (its bench.json) into --out.
    if let Some(saved) = args
        .iter()
        .position(|a| a == "--report")
        .and_then(|i| args.get(i + 1))
    {
        let report: Report =
            serde_json::from_str(&std::fs::read_to_string(saved).unwrap()).unwrap();
        write_report(report, &out);
        return;
    }
    // `--postgres [URL]`: also the identus rows on PostgreSQL (default: $HOOKGATE_TEST_POSTGRES_URL).
    let postgres = args.iter().position(|a| a == "--postgres").map(|i| {
        args.get(i + 1)
            .filter(|v| !v.starts_with("--"))
            .cloned()
            .or_else(|| std::env::var("HOOKGATE_TEST_POSTGRES_URL").ok())
            .expect("--postgres needs a URL or HOOKGATE_TEST_POSTGRES_URL")
    });
    // `--traces`: also hookgate with traces on, exporting to a local collector that drops them.
    let traces = args.iter().any(|a| a == "--traces");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(quick, repeats, only.as_deref(), postgres, traces, &out));
}

// ---------------------------------------------------------------------------------------------
// The bare server
// ---------------------------------------------------------------------------------------------

fn bare_server() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let app = axum::Router::new().fallback(|body: Bytes| async move {
            std::hint::black_box(body.len());
            "ok"
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("listening {}", listener.local_addr().unwrap());
        axum::serve(listener, app).await.unwrap();
    });
}

// ---------------------------------------------------------------------------------------------
// Servers under test
// ---------------------------------------------------------------------------------------------

/// A server process and where it listens.
struct Server {
    name: &'static str,
    child: Child,
    addr: String,
    /// Milliseconds from spawn to the first successful readiness probe.
    ready_ms: f64,
    /// hookgate's admin listener (its `/metrics`).
    admin: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// User + system CPU seconds so far.
    fn cpu_seconds(&self) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap_or_default();
        // Fields after the command name (which may hold spaces) start after the last ')'.
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        // utime and stime are fields 14 and 15 of /proc/pid/stat, i.e. 11 and 12 after the name.
        (ticks(11) + ticks(12)) / clock_ticks()
    }

    /// Resets the peak-RSS counter (Linux `clear_refs` 5).
    fn reset_peak_rss(&self) {
        let _ = std::fs::write(format!("/proc/{}/clear_refs", self.pid()), "5");
    }

    fn status_kib(&self, field: &str) -> f64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| {
                l.strip_prefix(field)?
                    .trim()
                    .strip_suffix("kB")?
                    .trim()
                    .parse()
                    .ok()
            })
            .unwrap_or(0.0)
    }

    /// Bytes the store has written so far: to the WAL (its frames, from
    /// `hookgate_store_wal_frames_total`, a page and a 24-byte header each) and to the database
    /// file (the rest of what the writer and checkpoint threads wrote: `wchar` of
    /// /proc/PID/task/TID/io). None for a server without a store.
    async fn store_writes(&self) -> Option<(u64, u64)> {
        let admin = self.admin.as_deref()?;
        let metrics = get_text(admin, "/metrics").await.ok()?;
        let frames: f64 = metrics
            .lines()
            .find_map(|l| {
                l.strip_prefix("hookgate_store_wal_frames_total")?
                    .trim()
                    .parse()
                    .ok()
            })
            .unwrap_or(0.0);
        let db = self._dir.as_ref()?.path().join("hookgate.db");
        let header = std::fs::read(&db).ok()?;
        // The page size: 2 bytes at offset 16 of the header, big-endian (1 means 65536).
        let page = match u16::from_be_bytes([*header.get(16)?, *header.get(17)?]) {
            1 => 65536,
            n => u64::from(n),
        };
        let wal = frames as u64 * (page + 24);
        if std::env::var_os("HOOKGATE_BENCH_COMMITS").is_some() {
            let get = |name: &str| -> f64 {
                metrics
                    .lines()
                    .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
                    .unwrap_or(0.0)
            };
            eprintln!(
                "  commits {} batch sum {} commit seconds {:.3}",
                get("hookgate_store_commit_seconds_count"),
                get("hookgate_store_batch_size_sum"),
                get("hookgate_store_commit_seconds_sum")
            );
        }
        let tasks = std::fs::read_dir(format!("/proc/{}/task", self.pid())).ok()?;
        let mut written = 0;
        for task in tasks.flatten() {
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            let io = std::fs::read_to_string(task.path().join("io")).unwrap_or_default();
            let wchar: u64 = io
                .lines()
                .find_map(|l| l.strip_prefix("wchar:")?.trim().parse().ok())
                .unwrap_or(0);
            if comm.trim() == "hookgate-writer" || comm.starts_with("hookgate-checkp") {
                written += wchar;
            }
        }
        Some((wal, written.saturating_sub(wal)))
    }

    fn peak_rss_mib(&self) -> f64 {
        self.status_kib("VmHWM:") / 1024.0
    }

    fn rss_mib(&self) -> f64 {
        self.status_kib("VmRSS:") / 1024.0
    }
}

fn clock_ticks() -> f64 {
    // sysconf(_SC_CLK_TCK) is 100 on every Linux this runs on; `getconf` confirms it when present.
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

async fn wait_ready(addr: &str, path: &str, started: Instant) -> f64 {
    let deadline = started + Duration::from_secs(30);
    loop {
        if let Ok(status) = get(addr, path).await {
            if status == 200 {
                return started.elapsed().as_secs_f64() * 1000.0;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{addr}{path} did not become ready"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

async fn get(addr: &str, path: &str) -> Result<u16, Box<dyn std::error::Error + Send + Sync>> {
    let stream = TcpStream::connect(addr).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let req = Request::get(path)
        .header("host", "bench")
        .body(Full::new(Bytes::new()))?;
    let res = sender.send_request(req).await?;
    Ok(res.status().as_u16())
}

async fn get_text(
    addr: &str,
    path: &str,
) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
    let stream = TcpStream::connect(addr).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let req = Request::get(path)
        .header("host", "bench")
        .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
        .body(Full::new(Bytes::new()))?;
    let body = sender
        .send_request(req)
        .await?
        .into_body()
        .collect()
        .await?;
    Ok(String::from_utf8_lossy(&body.to_bytes()).into_owned())
}

fn read_line_with(child: &mut Child, mut pick: impl FnMut(&str) -> Option<String>) -> String {
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let found = loop {
        let line = lines
            .next()
            .expect("the server printed its address")
            .unwrap();
        if let Some(v) = pick(&line) {
            break v;
        }
    };
    // Keep draining so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    found
}

async fn start_bare() -> Server {
    let started = Instant::now();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(ROLE_VAR, "bare")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let addr = read_line_with(&mut child, |l| {
        l.strip_prefix("listening ").map(str::to_string)
    });
    let ready_ms = wait_ready(&addr, "/", started).await;
    Server {
        name: "bare",
        child,
        addr,
        ready_ms,
        admin: None,
        _dir: None,
    }
}

/// Runs SQL on PostgreSQL (the schema of the PostgreSQL rows).
async fn pg_execute(url: &str, sql: &str) {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {url}: {e}"));
    let conn = tokio::spawn(conn);
    client.batch_execute(sql).await.unwrap();
    drop(client);
    let _ = conn.await;
}

/// hookgate on SQLite in a temporary folder, or on `store` (a PostgreSQL URL) when given; with
/// traces exported to `otlp` (`host:port` of a collector) when given.
async fn start_hookgate(store: Option<&str>, name: &'static str, otlp: Option<&str>) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let store = store.map_or_else(
        || format!("sqlite://{}", dir.path().join("hookgate.db").display()),
        str::to_string,
    );
    let config = format!(
        r#"
server:
  listen: 127.0.0.1:0
  max_concurrent_requests: 4096
admin:
  listen: 127.0.0.1:0
  token: {ADMIN_TOKEN}
store:
  url: "{store}"
log:
  format: json
  level: warn,hookgate::startup=info
sources:
  kratos:
    kind: kratos
    path: /kratos/sync-identity
    verify: {{ scheme: api_key, header: X-Api-Key, secrets: ["{KRATOS_KEY}"] }}
  identus:
    kind: identus
    path: /identus/events
    verify: {{ scheme: bearer, secrets: ["{IDENTUS_TOKEN}"] }}
  abp:
    kind: abp
    path: /abp/webhooks
    verify: {{ scheme: abp_signature, secrets: ["{ABP_SECRET}"] }}
"#,
    );
    let config = match otlp {
        Some(collector) => {
            config + &format!("telemetry:\n  otlp:\n    endpoint: http://{collector}\n")
        }
        None => config,
    };
    let file = dir.path().join("bench.yaml");
    std::fs::write(&file, config).unwrap();
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_hookgate"))
        .args(["--config", file.to_str().unwrap(), "serve"])
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let addrs = read_line_with(&mut child, |l| {
        let v: serde_json::Value = serde_json::from_str(l).ok()?;
        (v["fields"]["message"] == "hookgate is listening").then(|| {
            format!(
                "{} {}",
                v["fields"]["public"].as_str().unwrap(),
                v["fields"]["admin"].as_str().unwrap()
            )
        })
    });
    let (addr, admin) = addrs.split_once(' ').unwrap();
    let (addr, admin) = (addr.to_string(), admin.to_string());
    let ready_ms = wait_ready(&addr, "/readyz", started).await;
    Server {
        name,
        child,
        addr,
        ready_ms,
        admin: Some(admin),
        _dir: Some(dir),
    }
}

/// adnanh/webhook, when Debian's `webhook` package is installed.
async fn start_webhook() -> Option<Server> {
    let bin = ["/usr/bin/webhook", "/usr/local/bin/webhook"]
        .into_iter()
        .find(|p| Path::new(p).exists())?;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let hooks = serde_json::json!([{
        "id": "abp",
        "execute-command": "/bin/true",
        "include-command-output-in-response": false,
        "trigger-rule": {"match": {"type": "payload-hmac-sha256", "secret": WEBHOOK_SECRET,
                                    "parameter": {"source": "header", "name": "X-Signature"}}}
    }]);
    let file = dir.path().join("hooks.json");
    std::fs::write(&file, hooks.to_string()).unwrap();
    let started = Instant::now();
    let child = Command::new(bin)
        .args([
            "-hooks",
            file.to_str().unwrap(),
            "-ip",
            "127.0.0.1",
            "-port",
            &port.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let addr = format!("127.0.0.1:{port}");
    let ready_ms = wait_ready(&addr, "/", started).await;
    Some(Server {
        name: "webhook",
        child,
        addr,
        ready_ms,
        admin: None,
        _dir: Some(dir),
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

// ---------------------------------------------------------------------------------------------
// Requests shaped like the senders'
// ---------------------------------------------------------------------------------------------

/// What a scenario sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Identus `ConnectionUpdated`, bearer token, a new envelope id each time (durable insert).
    Identus,
    /// ABP `WebhookPayload`, HMAC-signed, a new `Id` each time (durable insert).
    Abp,
    /// Kratos identity, API key, a new trigger id each time (durable insert).
    Kratos,
    /// One Identus event sent again and again: verify, parse, dedupe lookup, no new row.
    Duplicate,
    /// ABP-like signed body for adnanh/webhook (`X-Signature: sha256=<hex>`).
    WebhookHmac,
}

/// Builds request `n` of a kind; `pad` sets the body size.
#[derive(Clone)]
struct Maker {
    kind: Kind,
    pad: Arc<str>,
    run: u64,
}

impl Maker {
    fn new(kind: Kind, body_size: usize) -> Self {
        // The template without padding is ~600 bytes; the padding brings it to `body_size`.
        let pad = "x".repeat(body_size.saturating_sub(620));
        let run = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        Self {
            kind,
            pad: Arc::from(pad),
            run,
        }
    }

    /// The same scenario with new ids, so that a repeated measurement inserts new events.
    fn fresh(&self) -> Self {
        static RUNS: AtomicU64 = AtomicU64::new(1);
        let mut m = self.clone();
        m.run = m
            .run
            .wrapping_add(RUNS.fetch_add(1, Ordering::Relaxed) << 20);
        m
    }

    fn path(&self) -> &'static str {
        match self.kind {
            Kind::Identus | Kind::Duplicate => "/identus/events",
            Kind::Abp => "/abp/webhooks",
            Kind::Kratos => "/kratos/sync-identity",
            Kind::WebhookHmac => "/hooks/abp",
        }
    }

    fn uuid(&self, n: u64) -> String {
        let r = self.run;
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            (r >> 32) as u32,
            (r >> 16) as u16,
            r as u16 & 0xfff,
            (n >> 48) as u16 & 0xfff,
            n & 0xffff_ffff_ffff
        )
    }

    fn request(&self, n: u64) -> Request<Full<Bytes>> {
        let pad = &self.pad;
        let builder = Request::post(self.path())
            .header("host", "bench")
            .header("content-type", "application/json");
        let (builder, body) = match self.kind {
            Kind::Identus | Kind::Duplicate => {
                let id = if self.kind == Kind::Duplicate {
                    DUPLICATE_ID.to_string()
                } else {
                    self.uuid(n)
                };
                let body = format!(
                    r#"{{"type":"ConnectionUpdated","id":"{id}","ts":"2024-05-01T10:20:30.123456Z","data":{{"connectionId":"{id}","thid":"0527aea1-d131-3948-a34d-03af39aba8b4","label":"Peter","myDid":"did:peer:12345","theirDid":"did:peer:67890","role":"Inviter","state":"ConnectionResponseSent","invitation":{{"id":"0527aea1-d131-3948-a34d-03af39aba8b4","type":"https://didcomm.org/out-of-band/2.0/invitation","from":"did:peer:1234457","invitationUrl":"https://my.domain.com/path?_oob={pad}"}},"createdAt":"2024-05-01T10:19:00.000001Z","updatedAt":"2024-05-01T10:20:30.100001Z","metaRetries":5,"self":"{id}","kind":"Connection"}},"walletId":"00000000-0000-0000-0000-000000000000"}}"#
                );
                (
                    builder.header("authorization", format!("Bearer {IDENTUS_TOKEN}")),
                    body,
                )
            }
            Kind::Abp | Kind::WebhookHmac => {
                let id = self.uuid(n);
                let body = format!(
                    r#"{{"Id":"{id}","WebhookEvent":"NewUserRegistered","Attempt":1,"Data":{{"UserName":"john.doe","EmailAddress":"john.doe@example.com","TenantId":1,"Roles":["User"],"Profile":"{pad}"}},"CreationTimeUtc":"2024-05-01T10:20:30.1234567Z"}}"#
                );
                let sig = if self.kind == Kind::Abp {
                    (
                        "abp-webhook-signature",
                        hookgate::verify::abp_signature::sign(
                            ABP_SECRET.as_bytes(),
                            body.as_bytes(),
                        ),
                    )
                } else {
                    (
                        "x-signature",
                        format!(
                            "sha256={}",
                            hmac_hex(WEBHOOK_SECRET.as_bytes(), body.as_bytes())
                        ),
                    )
                };
                (builder.header(sig.0, sig.1), body)
            }
            Kind::Kratos => {
                let id = self.uuid(n);
                let body = format!(
                    "{{\n  \"identity\": {{\n    \"id\": \"{id}\",\n    \"schema_id\": \"default\",\n    \"schema_url\": \"\",\n    \"state\": \"active\",\n    \"traits\": {{ \"email\": \"user-{n}@example.com\", \"bio\": \"{pad}\" }},\n    \"verifiable_addresses\": [{{ \"id\": \"{id}\", \"value\": \"user-{n}@example.com\", \"verified\": false, \"via\": \"email\", \"status\": \"pending\", \"created_at\": \"0001-01-01T00:00:00Z\", \"updated_at\": \"0001-01-01T00:00:00Z\" }}],\n    \"metadata_public\": null,\n    \"created_at\": \"0001-01-01T00:00:00Z\",\n    \"updated_at\": \"0001-01-01T00:00:00Z\",\n    \"organization_id\": null\n  }}\n}}\n"
                );
                (
                    builder
                        .header("x-api-key", KRATOS_KEY)
                        .header("ory-webhook-trigger-id", id),
                    body,
                )
            }
        };
        builder.body(Full::new(Bytes::from(body))).unwrap()
    }
}

fn hmac_hex(key: &[u8], body: &[u8]) -> String {
    use hmac::Mac as _;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

// ---------------------------------------------------------------------------------------------
// Load generation
// ---------------------------------------------------------------------------------------------

/// How the load is applied.
#[derive(Clone, Copy, Debug)]
enum Load {
    /// N connections, each sending its next request when the answer arrives.
    Closed { connections: usize },
    /// A fixed rate over N connections; latency counts from when each request was due.
    Open { rate: u64, connections: usize },
}

#[derive(Default)]
struct Tally {
    hist: Option<Histogram<u64>>,
    ok: u64,
    errors: u64,
    /// When the last measured answer arrived: past the window's end when the server fell behind
    /// an open-loop rate, so the achieved rate is counted over the time it really took.
    last_done: Option<Instant>,
}

async fn drive(
    addrs: &[&str],
    maker: &Maker,
    load: Load,
    warmup: Duration,
    measure: Duration,
) -> (Histogram<u64>, u64, u64, f64, u64) {
    let maker = &maker.fresh();
    let counter = Arc::new(AtomicU64::new(0));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let start = Instant::now() + Duration::from_millis(50);
    let measure_from = start + warmup;
    let end = measure_from + measure;
    let connections = match load {
        Load::Closed { connections } | Load::Open { connections, .. } => connections,
    };
    let mut tasks = Vec::with_capacity(connections);
    for i in 0..connections {
        // Connections spread round-robin over the servers' addresses.
        let addr = addrs[i % addrs.len()].to_string();
        let maker = maker.clone();
        let counter = counter.clone();
        let tally = tally.clone();
        tasks.push(tokio::spawn(async move {
            let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
            let (mut ok, mut errors) = (0u64, 0u64);
            let mut last_done: Option<Instant> = None;
            let mut sender = match connect(&addr).await {
                Some(s) => s,
                None => return,
            };
            tokio::time::sleep_until(start.into()).await;
            loop {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let due = match load {
                    Load::Closed { .. } => Instant::now(),
                    Load::Open { rate, .. } => {
                        let due =
                            start + Duration::from_nanos(n.saturating_mul(1_000_000_000) / rate);
                        if due >= end {
                            break;
                        }
                        tokio::time::sleep_until(due.into()).await;
                        due
                    }
                };
                if due >= end {
                    break;
                }
                let req = maker.request(n);
                let result = async {
                    let res = sender.send_request(req).await?;
                    let status = res.status();
                    res.into_body().collect().await?;
                    Ok::<_, Box<dyn std::error::Error + Send + Sync>>(status)
                }
                .await;
                let done = Instant::now();
                if due >= measure_from {
                    last_done = Some(last_done.map_or(done, |l| l.max(done)));
                    match result {
                        Ok(status) if status.is_success() => {
                            ok += 1;
                            let _ = hist.record(
                                u64::try_from((done - due).as_micros())
                                    .unwrap_or(u64::MAX)
                                    .max(1),
                            );
                        }
                        _ => errors += 1,
                    }
                }
                if result.is_err() {
                    match connect(&addr).await {
                        Some(s) => sender = s,
                        None => break,
                    }
                }
            }
            let mut t = tally.lock().unwrap();
            t.ok += ok;
            t.errors += errors;
            t.last_done = match (t.last_done, last_done) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
            match &mut t.hist {
                Some(h) => h.add(&hist).unwrap(),
                None => t.hist = Some(hist),
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let t = std::mem::take(&mut *tally.lock().unwrap());
    let hist = t.hist.unwrap_or_else(|| Histogram::new(3).unwrap());
    let took = t
        .last_done
        .map_or(measure, |l| l.saturating_duration_since(measure_from))
        .max(measure);
    // Every task takes one number past the end before it stops: the rest were sent.
    let sent = counter
        .load(Ordering::Relaxed)
        .saturating_sub(connections as u64);
    (hist, t.ok, t.errors, took.as_secs_f64(), sent)
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

// ---------------------------------------------------------------------------------------------
// Measurements and report
// ---------------------------------------------------------------------------------------------

#[derive(Serialize, Deserialize, Clone)]
struct Row {
    scenario: String,
    server: String,
    load: String,
    body_bytes: usize,
    requests_per_s: f64,
    ok: u64,
    errors: u64,
    p50_ms: f64,
    p99_ms: f64,
    p999_ms: f64,
    cpu_us_per_request: f64,
    peak_rss_mib: f64,
    /// Measurements this row is the median of (peak RSS: the highest; ok/errors: the sum).
    repeats: usize,
    /// Ratios to the bare server's figures in the same scenario (throughput: higher is better).
    ratio_rps: Option<f64>,
    ratio_p99: Option<f64>,
    ratio_cpu: Option<f64>,
    #[serde(default)]
    ratio_p50: Option<f64>,
    #[serde(default)]
    ratio_p999: Option<f64>,
    #[serde(default)]
    ratio_rss: Option<f64>,
    /// Bytes the store wrote per request sent, warm-up included (hookgate only): to the WAL
    /// (the writer thread) and to the database file (the checkpoints).
    #[serde(default)]
    wal_bytes_per_request: Option<f64>,
    #[serde(default)]
    db_bytes_per_request: Option<f64>,
}

/// Measures `servers` (one, or several replicas sharing the load) as one row named `name`:
/// their CPU and peak RSS are summed.
#[allow(clippy::too_many_arguments)]
async fn measure(
    name: &str,
    servers: &[&Server],
    scenario: &str,
    maker: &Maker,
    load: Load,
    body: usize,
    warmup: Duration,
    dur: Duration,
) -> Row {
    let cpu_seconds = || servers.iter().map(|s| s.cpu_seconds()).sum::<f64>();
    for server in servers {
        server.reset_peak_rss();
    }
    let cpu0 = cpu_seconds();
    let server = servers[0];
    let io0 = server.store_writes().await;
    let addrs: Vec<&str> = servers.iter().map(|s| s.addr.as_str()).collect();
    let (hist, ok, errors, secs, sent) = drive(&addrs, maker, load, warmup, dur).await;
    // Let the checkpoint thread copy the last commits before counting what it wrote.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let io = server.store_writes().await.map(|(wal, db)| {
        let (wal0, db0) = io0.unwrap_or_default();
        let per = |b: u64| b as f64 / sent.max(1) as f64;
        (per(wal.saturating_sub(wal0)), per(db.saturating_sub(db0)))
    });
    // CPU covers warm-up too; count the requests of the warm-up at the measured rate.
    let cpu = cpu_seconds() - cpu0;
    let rps = ok as f64 / secs;
    let total = rps * (secs + warmup.as_secs_f64());
    let q = |p: f64| hist.value_at_quantile(p) as f64 / 1000.0;
    let load_name = match load {
        Load::Closed { connections } => format!("closed {connections}c"),
        Load::Open { rate, connections } => {
            format!("open {}k/s ({connections}c)", rate as f64 / 1000.0)
        }
    };
    let row = Row {
        scenario: scenario.to_string(),
        server: name.to_string(),
        load: load_name,
        body_bytes: body,
        requests_per_s: rps,
        ok,
        errors,
        p50_ms: q(0.50),
        p99_ms: q(0.99),
        p999_ms: q(0.999),
        cpu_us_per_request: if total > 0.0 { cpu * 1e6 / total } else { 0.0 },
        peak_rss_mib: servers.iter().map(|s| s.peak_rss_mib()).sum(),
        repeats: 1,
        ratio_rps: None,
        ratio_p99: None,
        ratio_cpu: None,
        ratio_p50: None,
        ratio_p999: None,
        ratio_rss: None,
        wal_bytes_per_request: io.map(|w| w.0),
        db_bytes_per_request: io.map(|w| w.1),
    };
    if let Some((wal, db)) = io {
        eprintln!("  store writes per request: WAL {wal:.0} B, database {db:.0} B");
    }
    eprintln!(
        "  {:<13} {:<28} {:>9.0} req/s  p50 {:>6.2} ms  p99 {:>7.2} ms  p99.9 {:>7.2} ms  cpu {:>6.1} us/req  rss {:>5.1} MiB  errors {}",
        row.server,
        format!("{} {}", row.scenario, row.load),
        row.requests_per_s,
        row.p50_ms,
        row.p99_ms,
        row.p999_ms,
        row.cpu_us_per_request,
        row.peak_rss_mib,
        row.errors
    );
    row
}

/// One row per server: the median of each figure over the repeated measurements.
fn medians(samples: Vec<Row>) -> Vec<Row> {
    let mut servers: Vec<String> = Vec::new();
    for r in &samples {
        if !servers.contains(&r.server) {
            servers.push(r.server.clone());
        }
    }
    servers
        .iter()
        .filter_map(|server| {
            let rs: Vec<&Row> = samples.iter().filter(|r| &r.server == server).collect();
            let median = |f: fn(&Row) -> f64| {
                let mut v: Vec<f64> = rs.iter().map(|r| f(r)).collect();
                v.sort_by(|a, b| a.total_cmp(b));
                v.get(v.len() / 2).copied().unwrap_or(0.0)
            };
            let mut row = (*rs.first()?).clone();
            row.requests_per_s = median(|r| r.requests_per_s);
            row.p50_ms = median(|r| r.p50_ms);
            row.p99_ms = median(|r| r.p99_ms);
            row.p999_ms = median(|r| r.p999_ms);
            row.cpu_us_per_request = median(|r| r.cpu_us_per_request);
            row.peak_rss_mib = rs.iter().map(|r| r.peak_rss_mib).fold(0.0, f64::max);
            row.ok = rs.iter().map(|r| r.ok).sum();
            row.errors = rs.iter().map(|r| r.errors).sum();
            row.repeats = rs.len();
            Some(row)
        })
        .collect()
}

#[derive(Serialize, Deserialize)]
struct Report {
    machine: String,
    date: String,
    hookgate_ready_ms: f64,
    bare_ready_ms: f64,
    hookgate_idle_rss_mib: f64,
    /// Each row is the median of this many measurements, bare and hookgate alternating.
    repeats: usize,
    /// Seconds measured per run (after a warm-up).
    seconds_per_run: f64,
    rows: Vec<Row>,
}

async fn run(
    quick: bool,
    repeats: usize,
    only: Option<&str>,
    postgres: Option<String>,
    traces: bool,
    out: &Path,
) {
    let (warmup, dur) = if quick {
        (Duration::from_millis(500), Duration::from_secs(2))
    } else {
        (Duration::from_secs(1), Duration::from_secs(5))
    };
    eprintln!("starting servers");
    let bare = start_bare().await;
    let hookgate = start_hookgate(None, "hookgate", None).await;
    // `--traces`: the collector (a bare server: reads each export, answers 200) and hookgate
    // exporting every span to it.
    let traced = if traces {
        let collector = start_bare().await;
        let traced = start_hookgate(None, "hookgate-traced", Some(collector.addr.as_str())).await;
        eprintln!("  ready: hookgate-traced {:.1} ms", traced.ready_ms);
        Some((collector, traced))
    } else {
        None
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_rss = hookgate.rss_mib();
    eprintln!(
        "  ready: bare {:.1} ms, hookgate {:.1} ms; hookgate idle RSS {:.1} MiB",
        bare.ready_ms, hookgate.ready_ms, idle_rss
    );

    // `--only NAME$`: only the scenario named exactly NAME.
    let wanted = |name: &str| {
        only.is_none_or(|o| match o.strip_suffix('$') {
            Some(exact) => name == exact,
            None => name.contains(o),
        })
    };
    // PostgreSQL: a fresh schema, two hookgate processes on it (the first alone is hookgate-pg).
    let pg = match &postgres {
        Some(base) if wanted("identus") => {
            let schema = format!(
                "bench_{}_{}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs()
            );
            pg_execute(base, &format!("CREATE SCHEMA {schema}")).await;
            let sep = if base.contains('?') { '&' } else { '?' };
            let url = format!("{base}{sep}options=-csearch_path%3D{schema}");
            let first = start_hookgate(Some(&url), "hookgate-pg", None).await;
            let second = start_hookgate(Some(&url), "hookgate-pg", None).await;
            eprintln!(
                "  ready: hookgate-pg {:.1} ms and {:.1} ms (schema {schema})",
                first.ready_ms, second.ready_ms
            );
            Some((base.clone(), schema, first, second))
        }
        _ => None,
    };

    let small = 1536;
    let large = 64 * 1024;
    let mut rows = Vec::new();
    let closed: Vec<(&str, Kind, usize, usize)> = vec![
        ("identus", Kind::Identus, small, 32),
        ("identus", Kind::Identus, small, 256),
        ("abp", Kind::Abp, small, 32),
        ("abp", Kind::Abp, small, 256),
        ("kratos", Kind::Kratos, small, 32),
        ("kratos", Kind::Kratos, small, 256),
        ("duplicate", Kind::Duplicate, small, 32),
        ("duplicate", Kind::Duplicate, small, 256),
        ("identus 64KB", Kind::Identus, large, 32),
        ("identus 64KB", Kind::Identus, large, 256),
    ];
    for (name, kind, body, connections) in closed.into_iter().filter(|c| wanted(c.0)) {
        eprintln!("{name}, {body} B bodies, closed loop, {connections} connections");
        let maker = Maker::new(kind, body);
        if kind == Kind::Duplicate {
            // The one event exists before the measurement starts.
            let mut stores = vec![hookgate.addr.as_str()];
            if let Some((_, traced)) = &traced {
                stores.push(traced.addr.as_str());
            }
            for addr in stores {
                drive(
                    &[addr],
                    &maker,
                    Load::Closed { connections: 1 },
                    Duration::ZERO,
                    Duration::from_millis(100),
                )
                .await;
            }
        }
        let mut targets: Vec<(&str, Vec<&Server>)> =
            vec![("bare", vec![&bare]), ("hookgate", vec![&hookgate])];
        if let Some((_, traced)) = &traced {
            targets.push(("hookgate-traced", vec![traced]));
        }
        if let Some((_, _, first, second)) = pg.as_ref().filter(|_| name == "identus") {
            targets.push(("hookgate-pg", vec![first]));
            targets.push(("hookgate-pg×2", vec![first, second]));
        }
        let mut samples = Vec::new();
        for _ in 0..repeats {
            for (server, servers) in &targets {
                samples.push(
                    measure(
                        server,
                        servers,
                        name,
                        &maker,
                        Load::Closed { connections },
                        body,
                        warmup,
                        dur,
                    )
                    .await,
                );
            }
        }
        rows.extend(medians(samples));
    }
    let rates: &[u64] = if wanted("open") {
        &[2_000, 10_000, 20_000]
    } else {
        &[]
    };
    for &rate in rates {
        eprintln!("identus, {small} B bodies, open loop at {rate}/s");
        let maker = Maker::new(Kind::Identus, small);
        let mut samples = Vec::new();
        for _ in 0..repeats {
            for server in [&bare, &hookgate] {
                let load = Load::Open {
                    rate,
                    connections: 256,
                };
                samples.push(
                    measure(
                        server.name,
                        &[server],
                        "identus",
                        &maker,
                        load,
                        small,
                        warmup,
                        dur,
                    )
                    .await,
                );
            }
        }
        rows.extend(medians(samples));
    }
    if !wanted("webhook") {
    } else if let Some(webhook) = start_webhook().await {
        eprintln!(
            "adnanh/webhook (payload-hmac-sha256, runs /bin/true), {small} B bodies, closed loop, 32 connections"
        );
        let maker = Maker::new(Kind::WebhookHmac, small);
        rows.push(
            measure(
                webhook.name,
                &[&webhook],
                "abp",
                &maker,
                Load::Closed { connections: 32 },
                small,
                warmup,
                dur,
            )
            .await,
        );
    } else {
        eprintln!("adnanh/webhook not installed (apt-get install webhook): no comparison row");
    }

    if let Some((base, schema, first, second)) = pg {
        drop((first, second));
        pg_execute(&base, &format!("DROP SCHEMA {schema} CASCADE")).await;
    }

    let report = Report {
        machine: machine(),
        date: String::from_utf8(
            Command::new("date")
                .arg("-u")
                .arg("+%Y-%m-%d %H:%M UTC")
                .output()
                .map(|o| o.stdout)
                .unwrap_or_default(),
        )
        .unwrap_or_default()
        .trim()
        .to_string(),
        hookgate_ready_ms: hookgate.ready_ms,
        bare_ready_ms: bare.ready_ms,
        hookgate_idle_rss_mib: idle_rss,
        repeats,
        seconds_per_run: dur.as_secs_f64(),
        rows,
    };
    write_report(report, out);
}

/// Adds the ratios to the bare server, prints the table and writes bench.{json,md,svg}.
fn write_report(mut report: Report, out: &Path) {
    add_ratios(&mut report.rows);
    let table = table(&report);
    println!("{table}");
    std::fs::create_dir_all(out).unwrap();
    std::fs::write(
        out.join("bench.json"),
        serde_json::to_string_pretty(&report).unwrap(),
    )
    .unwrap();
    // The retention benchmark's section (`benches/retention.rs`), written by hand, stays.
    let kept = std::fs::read_to_string(out.join("bench.md"))
        .ok()
        .and_then(|old| old.find("\n## Retention").map(|i| old[i..].to_string()))
        .unwrap_or_default();
    std::fs::write(out.join("bench.md"), format!("{table}{kept}")).unwrap();
    std::fs::write(out.join("bench.svg"), svg(&report)).unwrap();
    eprintln!("wrote {}/bench.{{json,md,svg}}", out.display());
}

/// Each figure as a ratio to the bare server's in the same scenario and load.
fn add_ratios(rows: &mut [Row]) {
    let bare: BTreeMap<(String, String), Row> = rows
        .iter()
        .filter(|r| r.server == "bare")
        .map(|r| ((r.scenario.clone(), r.load.clone()), r.clone()))
        .collect();
    for r in rows.iter_mut().filter(|r| r.server != "bare") {
        if let Some(b) = bare.get(&(r.scenario.clone(), r.load.clone())) {
            r.ratio_rps = Some(r.requests_per_s / b.requests_per_s);
            r.ratio_p50 = Some(r.p50_ms / b.p50_ms);
            r.ratio_p99 = Some(r.p99_ms / b.p99_ms);
            r.ratio_p999 = Some(r.p999_ms / b.p999_ms);
            r.ratio_cpu = Some(r.cpu_us_per_request / b.cpu_us_per_request);
            r.ratio_rss = Some(r.peak_rss_mib / b.peak_rss_mib);
        }
    }
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")?
                .split_once(':')
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_gib = mem
        .lines()
        .find_map(|l| {
            l.strip_prefix("MemTotal:")?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse::<f64>()
                .ok()
        })
        .unwrap_or(0.0)
        / 1024.0
        / 1024.0;
    format!("{cores} cores ({model}), {mem_gib:.0} GiB")
}

fn ratio(r: Option<f64>) -> String {
    r.map(|v| format!("{v:.2}×")).unwrap_or_else(|| "—".into())
}

fn table(report: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Machine: {} — {}. Each row: median of {} run(s) of {:.0} s (bare and hookgate alternating), load generator on the same cores. hookgate ready {:.0} ms after start (bare {:.0} ms), idle RSS {:.1} MiB.\n",
        report.machine,
        report.date,
        report.repeats,
        report.seconds_per_run,
        report.hookgate_ready_ms,
        report.bare_ready_ms,
        report.hookgate_idle_rss_mib
    );
    let _ = writeln!(
        s,
        "| scenario | load | server | req/s | ×bare | p50 ms | ×bare | p99 ms | ×bare | p99.9 ms | ×bare | CPU µs/req | ×bare | peak RSS MiB | ×bare | errors |"
    );
    let _ = writeln!(
        s,
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for r in &report.rows {
        let _ = writeln!(
            s,
            "| {} ({} B) | {} | {} | {:.0} | {} | {:.2} | {} | {:.2} | {} | {:.2} | {} | {:.1} | {} | {:.1} | {} | {} |",
            r.scenario,
            r.body_bytes,
            r.load,
            r.server,
            r.requests_per_s,
            ratio(r.ratio_rps),
            r.p50_ms,
            ratio(r.ratio_p50),
            r.p99_ms,
            ratio(r.ratio_p99),
            r.p999_ms,
            ratio(r.ratio_p999),
            r.cpu_us_per_request,
            ratio(r.ratio_cpu),
            r.peak_rss_mib,
            ratio(r.ratio_rss),
            r.errors
        );
    }
    if report.rows.iter().any(|r| r.server == "hookgate-traced") {
        let _ = writeln!(
            s,
            "\nhookgate-traced: hookgate on SQLite with traces on (`telemetry.otlp.endpoint`, every trace sampled: a request span and a store commit span per request), exporting to a local collector that reads each export and drops it (its CPU is not counted in the rows)."
        );
    }
    if report
        .rows
        .iter()
        .any(|r| r.server.starts_with("hookgate-pg"))
    {
        let _ = writeln!(
            s,
            "\nhookgate-pg: one hookgate process on PostgreSQL (a fresh schema). hookgate-pg×2: two hookgate processes on the same schema, the connections spread over both; they share the same cores with the load generator and PostgreSQL (whose CPU and memory are not counted in the rows)."
        );
    }
    s
}

/// Two horizontal bar charts (throughput, p99) with one group per scenario and load.
fn svg(report: &Report) -> String {
    let groups: Vec<(String, Vec<&Row>)> = {
        let mut order: Vec<String> = Vec::new();
        let mut map: BTreeMap<String, Vec<&Row>> = BTreeMap::new();
        for r in &report.rows {
            let key = format!("{} {}", r.scenario, r.load);
            if !map.contains_key(&key) {
                order.push(key.clone());
            }
            map.entry(key).or_default().push(r);
        }
        order
            .into_iter()
            .map(|k| {
                let v = map.remove(&k).unwrap_or_default();
                (k, v)
            })
            .collect()
    };
    let bar_h = 12.0;
    let group_gap = 10.0;
    let label_w = 230.0;
    let chart_w = 330.0;
    let mut legend = vec!["bare", "hookgate", "webhook"];
    for extra in ["hookgate-pg", "hookgate-pg×2", "hookgate-traced"] {
        if report.rows.iter().any(|r| r.server == extra) {
            legend.push(extra);
        }
    }
    // Room below the titles for a legend longer than three entries.
    let top = 50.0 + legend.len().saturating_sub(3) as f64 * 13.0;
    let height_of = |g: &Vec<&Row>| g.len() as f64 * bar_h + group_gap;
    let total_h: f64 = top + groups.iter().map(|(_, g)| height_of(g)).sum::<f64>() + 30.0;
    let width = label_w + 2.0 * chart_w + 120.0;
    let color = |server: &str| match server {
        "bare" => "#9aa5b1",
        "hookgate" => "#2f6fde",
        "hookgate-pg" => "#1f9e89",
        "hookgate-pg×2" => "#6a3d9a",
        "hookgate-traced" => "#c0392b",
        _ => "#e07b39",
    };
    let max_rps = report
        .rows
        .iter()
        .map(|r| r.requests_per_s)
        .fold(1.0, f64::max);
    let max_p99 = report.rows.iter().map(|r| r.p99_ms).fold(0.1, f64::max);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{total_h}" font-family="sans-serif" font-size="10">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="10" y="16" font-size="13" font-weight="bold">hookgate vs bare axum server — {} — {}</text>"#,
        report.machine, report.date
    );
    let _ = writeln!(
        s,
        r#"<text x="{label_w}" y="38" font-weight="bold">requests/s (higher is better)</text>"#
    );
    let _ = writeln!(
        s,
        r#"<text x="{}" y="38" font-weight="bold">p99 latency, ms (lower is better; log scale)</text>"#,
        label_w + chart_w + 60.0
    );
    for (i, server) in legend.iter().enumerate() {
        let c = color(server);
        let x = width - 110.0;
        let y = 10.0 + i as f64 * 13.0;
        let _ = writeln!(
            s,
            r#"<rect x="{x}" y="{y}" width="10" height="10" fill="{c}"/><text x="{}" y="{}">{server}</text>"#,
            x + 14.0,
            y + 9.0
        );
    }
    let log_scale = |v: f64| {
        let lo = 0.05_f64.ln();
        let hi = (max_p99 * 1.2).ln();
        ((v.max(0.05).ln() - lo) / (hi - lo)).clamp(0.0, 1.0) * chart_w
    };
    let mut y = top;
    for (name, rows) in &groups {
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
            label_w - 8.0,
            y + rows.len() as f64 * bar_h / 2.0 + 3.0,
            xml(name)
        );
        for r in rows {
            let c = color(&r.server);
            let mut bar = |x: f64, w: f64, label: String| {
                let _ = writeln!(
                    s,
                    r#"<rect x="{x}" y="{y}" width="{w:.1}" height="{}" fill="{c}"/><text x="{:.1}" y="{}">{label}</text>"#,
                    bar_h - 2.0,
                    x + w + 3.0,
                    y + 9.0
                );
            };
            bar(
                label_w,
                r.requests_per_s / max_rps * chart_w,
                format!("{:.0}", r.requests_per_s),
            );
            bar(
                label_w + chart_w + 60.0,
                log_scale(r.p99_ms),
                format!("{:.2}", r.p99_ms),
            );
            y += bar_h;
        }
        y += group_gap;
    }
    s.push_str("</svg>\n");
    s
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
