//! Delivery benchmark: what one HTTP destination costs the receive path, how fast a backlog
//! drains, and how long an event takes from the sender's 2xx to the destination.
//!
//! ```text
//! cargo bench --bench delivery              # 5 s per measurement, 5 rounds
//! cargo bench --bench delivery -- --quick   # 2 s per measurement, 1 round
//! ```
//!
//! It starts the release `hookgate` (SQLite, `synchronous=FULL`) as a separate process, and in
//! its own process the load generator and the sink (a hyper server on 127.0.0.1 answering 200
//! at once, recording when each `Hookgate-Event-Id` arrived). Everything shares the machine's
//! cores. Rows:
//! - **receive, no destination** and **receive, one HTTP destination**: Identus events (1.5 KB),
//!   closed loop, 32 connections; alternating, median of the rounds. The second also delivers
//!   every event to the sink while it receives.
//! - **drain**: the destination paused while ~5 s of events are received, then resumed: the
//!   backlog's events per second into the sink.
//! - **2xx → sink at 1 000/s**: an open loop of 1 000 events/s; for each event, the time from
//!   the moment the sender had hookgate's 2xx to the moment the sink had the delivery
//!   (zero when the delivery arrived first).
//!
//! - **RabbitMQ** and **JetStream** (when `HOOKGATE_TEST_AMQP_URL` / `HOOKGATE_TEST_NATS_URL`
//!   are set): the same drain and 2xx → consumer rows, to a `format: raw` RabbitMQ destination
//!   (publisher confirms) with a consumer on a queue bound to its exchange, and to a JetStream
//!   subject (acknowledged by the stream) with a core subscription on it.
//!
//! The result is printed and written to `target/bench/delivery.md`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

const IDENTUS_TOKEN: &str = "identus-bench-token-0001";
const ADMIN_TOKEN: &str = "admin-bench-token-0001";
const FIXTURE: &str = include_str!("../tests/fixtures/identus_connection.json");
const CONNECTIONS: usize = 32;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(quick));
}

/// The sink: when each event id arrived, and how many requests.
#[derive(Default)]
struct Sink {
    arrived: Mutex<HashMap<String, Instant>>,
    count: AtomicU64,
}

impl Sink {
    /// One delivery received now, of event `id` when it names one (its first arrival counts).
    fn received(&self, id: Option<String>) {
        let now = Instant::now();
        if let Some(id) = id {
            self.arrived.lock().unwrap().entry(id).or_insert(now);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
    }
}

async fn start_sink() -> (Arc<Sink>, String) {
    let sink = Arc::new(Sink::default());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let s = sink.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let s = s.clone();
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                        let s = s.clone();
                        async move {
                            let id = req
                                .headers()
                                .get("hookgate-event-id")
                                .and_then(|v| v.to_str().ok())
                                .map(str::to_string);
                            let _ = req.into_body().collect().await;
                            s.received(id);
                            Ok::<_, std::convert::Infallible>(hyper::Response::new(
                                Empty::<Bytes>::new(),
                            ))
                        }
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (sink, addr)
}

struct Hookgate {
    child: Child,
    addr: String,
    admin: String,
    _dir: tempfile::TempDir,
}

impl Hookgate {
    /// CPU time hookgate's process has used so far (all threads, user and system).
    fn cpu(&self) -> Duration {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // Fields after the command name (which is in parentheses): utime is the 12th, stime
        // the 13th,
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<u64> = rest
            .split_whitespace()
            .map(|x| x.parse().unwrap_or(0))
            .collect();
        // in clock ticks of USER_HZ, which Linux fixes at 100 for what /proc shows.
        let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
        Duration::from_millis(ticks * 10)
    }
}

impl Drop for Hookgate {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_hookgate(sink: Option<&str>) -> Hookgate {
    start_with(sink.map_or_else(String::new, |addr| {
        format!(
            "destinations:\n  sink:\n    kind: http\n    url: http://{addr}/hooks\n    max_in_flight: 64\n"
        )
    }))
}

fn start_with(destination: String) -> Hookgate {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "server:\n  listen: 127.0.0.1:0\n  max_concurrent_requests: 4096\nadmin:\n  listen: 127.0.0.1:0\n  token: {ADMIN_TOKEN}\nstore:\n  url: sqlite://{}\nlog:\n  format: json\n  level: warn,hookgate::startup=info\nsources:\n  identus:\n    kind: identus\n    path: /identus/events\n    verify: {{ scheme: bearer, secrets: [\"{IDENTUS_TOKEN}\"] }}\n{destination}",
        dir.path().join("hookgate.db").display()
    );
    let file = dir.path().join("bench.yaml");
    std::fs::write(&file, config).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_hookgate"))
        .args(["--config", file.to_str().unwrap(), "serve"])
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
    let (addr, admin) = loop {
        let line = lines.next().expect("hookgate says it listens").unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        if v["fields"]["message"] == "hookgate is listening" {
            break (
                v["fields"]["public"].as_str().unwrap().to_string(),
                v["fields"]["admin"].as_str().unwrap().to_string(),
            );
        }
    };
    // Keep draining its output so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Hookgate {
        child,
        addr,
        admin,
        _dir: dir,
    }
}

/// A fresh Identus event's body.
fn body(n: u64, run: u64) -> Bytes {
    let id = format!("{:08x}-0000-4000-8000-{:012x}", run as u32, n);
    let conn = format!("{:08x}-1111-4000-8000-{:012x}", run as u32, n);
    Bytes::from(
        FIXTURE
            .replace("7f1e2b1a-3c1d-4a55-9f0e-2d0c6a4b9e01", &id)
            .replace("0527aea1-d131-3948-a34d-03af39aba8b4", &conn)
            + &" ".repeat(1536usize.saturating_sub(FIXTURE.len())),
    )
}

type Conn = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connect(addr: &str) -> Conn {
    let stream = TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    send
}

/// Posts one event; answers hookgate's event id on a 2xx.
async fn post(conn: &mut Conn, body: Bytes) -> Option<String> {
    conn.ready().await.ok()?;
    let req = Request::post("/identus/events")
        .header("host", "bench")
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {IDENTUS_TOKEN}"))
        .body(Full::new(body))
        .unwrap();
    let res = conn.send_request(req).await.ok()?;
    let ok = res.status().is_success();
    let id = res
        .headers()
        .get("hookgate-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let _ = res.into_body().collect().await;
    if ok { id } else { None }
}

static RUN: AtomicU64 = AtomicU64::new(0);

fn next_run() -> u64 {
    let base = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    base.wrapping_add(RUN.fetch_add(1, Ordering::Relaxed) << 32)
}

/// [`closed_loop`] on `hg`: events per second, and hookgate's CPU time per event in µs.
async fn measured(hg: &Hookgate, secs: Duration) -> (f64, f64) {
    let cpu = hg.cpu();
    let rate = closed_loop(&hg.addr, secs).await;
    let used = hg.cpu().saturating_sub(cpu);
    (
        rate,
        used.as_secs_f64() * 1e6 / (rate * secs.as_secs_f64()).max(1.0),
    )
}

/// Closed loop, `CONNECTIONS` connections, for `secs`: accepted events per second.
async fn closed_loop(addr: &str, secs: Duration) -> f64 {
    let run = next_run();
    let next = Arc::new(AtomicU64::new(0));
    let ok = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..CONNECTIONS {
        let (addr, next, ok, stop) = (addr.to_string(), next.clone(), ok.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut conn = connect(&addr).await;
            while !stop.load(Ordering::Relaxed) {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if post(&mut conn, body(n, run)).await.is_some() {
                    ok.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    let started = Instant::now();
    tokio::time::sleep(secs).await;
    stop.store(true, Ordering::Relaxed);
    let done = ok.load(Ordering::Relaxed);
    let elapsed = started.elapsed();
    for t in tasks {
        let _ = t.await;
    }
    done as f64 / elapsed.as_secs_f64()
}

async fn admin_post(admin: &str, path: &str) {
    let stream = TcpStream::connect(admin).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = Request::post(path)
        .header("host", "bench")
        .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let res = send.send_request(req).await.unwrap();
    assert!(res.status().is_success(), "POST {path}: {}", res.status());
}

async fn wait_for(sink: &Sink, n: u64, within: Duration) -> Option<Instant> {
    let deadline = Instant::now() + within;
    while sink.count.load(Ordering::Relaxed) < n {
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Some(Instant::now())
}

/// Open loop at `rate`/s for `secs`: for each event, 2xx → sink receipt, in ms.
async fn lag(hg: &Hookgate, sink: &Sink, rate: u64, secs: Duration) -> (Vec<f64>, u64) {
    let run = next_run();
    let senders = 16u64;
    let every = Duration::from_secs_f64(senders as f64 / rate as f64);
    let per_sender = (secs.as_secs_f64() * rate as f64 / senders as f64) as u64;
    let acked: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::new();
    for s in 0..senders {
        let (addr, acked) = (hg.addr.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            let mut conn = connect(&addr).await;
            let offset = every.mul_f64(s as f64 / senders as f64);
            for k in 0..per_sender {
                tokio::time::sleep_until(start + offset + every * u32::try_from(k).unwrap()).await;
                let n = s * 1_000_000 + k;
                if let Some(id) = post(&mut conn, body(n, run)).await {
                    acked.lock().unwrap().push((id, Instant::now()));
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    let sent = acked.len() as u64;
    // Every acknowledged event reaches the sink.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let all = {
            let arrived = sink.arrived.lock().unwrap();
            acked.iter().all(|(id, _)| arrived.contains_key(id))
        };
        if all || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let arrived = sink.arrived.lock().unwrap();
    let lags = acked
        .iter()
        .filter_map(|(id, at)| {
            arrived
                .get(id)
                .map(|got| got.saturating_duration_since(*at).as_secs_f64() * 1000.0)
        })
        .collect();
    (lags, sent)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v.get(i).copied().unwrap_or(0.0)
}

/// A RabbitMQ consumer feeding `sink` (by `message_id`), on a queue bound to a new topic
/// exchange; answers the exchange.
async fn rabbitmq_consumer(url: &str, sink: Arc<Sink>) -> String {
    use futures_util::StreamExt;
    use lapin::options::*;
    use lapin::types::FieldTable;
    let exchange = format!("hookgate-bench-{}", next_run());
    let conn = lapin::Connection::connect(url, lapin::ConnectionProperties::default())
        .await
        .expect("RabbitMQ");
    let ch = conn.create_channel().await.unwrap();
    ch.exchange_declare(
        exchange.as_str().into(),
        lapin::ExchangeKind::Topic,
        ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .unwrap();
    let q = ch
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    ch.queue_bind(
        q.name().clone(),
        exchange.as_str().into(),
        "#".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    let mut consumer = ch
        .basic_consume(
            q.name().clone(),
            "bench".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    tokio::spawn(async move {
        let _keep = conn;
        while let Some(Ok(m)) = consumer.next().await {
            sink.received(m.properties.message_id().as_ref().map(|id| id.to_string()));
        }
    });
    exchange
}

/// A core NATS subscription on `prefix.>` feeding `sink` (by `Nats-Msg-Id`): JetStream
/// publishes reach it once the stream has them.
async fn nats_consumer(url: &str, prefix: &str, sink: Arc<Sink>) {
    use futures_util::StreamExt;
    let client = async_nats::connect(url).await.expect("NATS");
    let mut sub = client.subscribe(format!("{prefix}.>")).await.unwrap();
    client.flush().await.unwrap();
    tokio::spawn(async move {
        let _keep = client;
        while let Some(m) = sub.next().await {
            let id = m.headers.as_ref().and_then(|h| h.get("Nats-Msg-Id"));
            sink.received(id.map(|v| v.as_str().to_string()));
        }
    });
}

/// Sustained delivery to a broker destination (a backlog received while paused, then resumed:
/// events per second into the consumer) and 2xx → consumer at 1 000/s.
/// A broker's figures: its drain rate, the backlog's size, and the 2xx → consumer times (ms).
struct BrokerRows {
    rate: f64,
    backlog: u64,
    lags: Vec<f64>,
}

impl BrokerRows {
    /// The two table rows of broker `name` (`how` it counts a delivery).
    fn table(mut self, name: &str, how: &str) -> String {
        let (p50, p99, max) = (
            percentile(&mut self.lags, 0.5),
            percentile(&mut self.lags, 0.99),
            percentile(&mut self.lags, 1.0),
        );
        format!(
            "| {name} ({how}): drain of a {}-event backlog | {:.0} events/s | |\n\
| {name}: 2xx → consumer at 1 000/s | p50 {p50:.1} ms, p99 **{p99:.1} ms**, max {max:.1} ms | |\n",
            self.backlog, self.rate
        )
    }
}

async fn broker_rows(destination: &str, sink: &Arc<Sink>, secs: Duration) -> BrokerRows {
    let hg = start_with(destination.to_string());
    admin_post(&hg.admin, "/admin/destinations/sink/pause").await;
    let rate = closed_loop(&hg.addr, secs).await;
    let backlog = (rate * secs.as_secs_f64()) as u64;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = sink.count.load(Ordering::Relaxed);
    let started = Instant::now();
    admin_post(&hg.admin, "/admin/destinations/sink/resume").await;
    let done = wait_for(sink, before + backlog, Duration::from_secs(120)).await;
    let drained = sink.count.load(Ordering::Relaxed) - before;
    let drain_rate = drained as f64
        / done
            .unwrap_or_else(Instant::now)
            .duration_since(started)
            .as_secs_f64();
    drop(hg);
    let hg = start_with(destination.to_string());
    let (lags, _) = lag(&hg, sink, 1000, secs * 2).await;
    drop(hg);
    BrokerRows {
        rate: drain_rate,
        backlog: drained,
        lags,
    }
}

async fn run(quick: bool) {
    let secs = Duration::from_secs(if quick { 2 } else { 5 });
    let rounds = if quick { 1 } else { 5 };
    let (sink, sink_addr) = start_sink().await;
    let mut none = Vec::new();
    let mut with = Vec::new();
    let mut delivered_while = Vec::new();
    let (mut cpu_none, mut cpu_with) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let hg = start_hookgate(None);
        let (rate, cpu) = measured(&hg, secs).await;
        none.push(rate);
        cpu_none.push(cpu);
        drop(hg);
        let hg = start_hookgate(Some(&sink_addr));
        let before = sink.count.load(Ordering::Relaxed);
        let started = Instant::now();
        let (rate, cpu) = measured(&hg, secs).await;
        let sent = sink.count.load(Ordering::Relaxed) - before;
        delivered_while.push(sent as f64 / started.elapsed().as_secs_f64());
        with.push(rate);
        cpu_with.push(cpu);
        drop(hg);
        println!(
            "round {}: receive {:.0}/s without a destination, {:.0}/s with one ({:.0} deliveries/s meanwhile); hookgate's CPU per event {:.0} µs without, {:.0} µs with",
            round + 1,
            none[round],
            with[round],
            delivered_while[round],
            cpu_none[round],
            cpu_with[round],
        );
    }
    let (none_m, with_m) = (median(none.clone()), median(with.clone()));
    // Drain: a paused destination's backlog.
    let hg = start_hookgate(Some(&sink_addr));
    admin_post(&hg.admin, "/admin/destinations/sink/pause").await;
    let (backlog_rate, cpu_paused) = measured(&hg, secs).await;
    let backlog = (backlog_rate * secs.as_secs_f64()) as u64;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = sink.count.load(Ordering::Relaxed);
    let started = Instant::now();
    admin_post(&hg.admin, "/admin/destinations/sink/resume").await;
    let done = wait_for(&sink, before + backlog, Duration::from_secs(120)).await;
    let drained = sink.count.load(Ordering::Relaxed) - before;
    let drain_rate = drained as f64
        / done
            .unwrap_or_else(Instant::now)
            .duration_since(started)
            .as_secs_f64();
    drop(hg);
    // 2xx → sink at 1 000 events/s.
    let hg = start_hookgate(Some(&sink_addr));
    let (mut lags, sent) = lag(&hg, &sink, 1000, secs * 2).await;
    drop(hg);
    let (p50, p99, max) = (
        percentile(&mut lags, 0.5),
        percentile(&mut lags, 0.99),
        percentile(&mut lags, 1.0),
    );
    // The brokers, when their URLs are set (as `.ci/run` sets them).
    let mut brokers = String::new();
    if let Ok(url) = std::env::var("HOOKGATE_TEST_AMQP_URL") {
        let sink = Arc::new(Sink::default());
        let exchange = rabbitmq_consumer(&url, sink.clone()).await;
        let dest = format!(
            "destinations:\n  sink:\n    kind: rabbitmq\n    url: \"{url}\"\n    format: raw\n    exchange: {exchange}\n    max_in_flight: 64\n"
        );
        let rows = broker_rows(&dest, &sink, secs).await;
        brokers.push_str(&rows.table("RabbitMQ", "`format: raw`, confirms"));
    }
    if let Ok(url) = std::env::var("HOOKGATE_TEST_NATS_URL") {
        let sink = Arc::new(Sink::default());
        let run = next_run();
        let prefix = format!("hgbench{run}");
        nats_consumer(&url, &prefix, sink.clone()).await;
        let dest = format!(
            "destinations:\n  sink:\n    kind: nats\n    url: \"{url}\"\n    subject: \"{prefix}.{{source}}.{{event_type}}\"\n    stream: {{ name: HGBENCH{run}, create: true }}\n    max_in_flight: 64\n"
        );
        let rows = broker_rows(&dest, &sink, secs).await;
        brokers.push_str(&rows.table("JetStream", "acknowledged"));
        if let Ok(c) = async_nats::connect(url.as_str()).await {
            let _ = async_nats::jetstream::new(c)
                .delete_stream(format!("HGBENCH{run}"))
                .await;
        }
    }
    let machine = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_default();
    let report = format!(
        "Delivery benchmark, {} ({} cores), {} s per measurement, {} round(s), SQLite, Identus 1.5 KB, closed loop {CONNECTIONS} connections:\n\n\
| measurement | figure | |\n|---|---:|---|\n\
| receive, no destination (median) | {none_m:.0} events/s | rounds: {} |\n\
| receive, one HTTP destination (median) | {with_m:.0} events/s | rounds: {}; **{:.2}×** of no destination |\n\
| deliveries meanwhile (median) | {:.0} /s | |\n\
| hookgate's CPU per event received (median) | {:.0} µs without, {:.0} µs with a destination (sending included) | rounds: {} / {} |\n\
| receive, the destination paused (deliveries queued, none sent) | {backlog_rate:.0} events/s | **{:.2}×** of no destination; {cpu_paused:.0} µs CPU per event |\n\
| drain of a {backlog}-event backlog | {drain_rate:.0} events/s | **{:.2}×** the receive rate with a destination{} |\n\
| 2xx → sink at 1 000/s ({sent} events) | p50 {p50:.1} ms, p99 **{p99:.1} ms**, max {max:.1} ms | {} of {sent} arrived |\n{brokers}",
        machine,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        secs.as_secs(),
        rounds,
        list(&none),
        list(&with),
        with_m / none_m,
        median(delivered_while),
        median(cpu_none.clone()),
        median(cpu_with.clone()),
        list(&cpu_none),
        list(&cpu_with),
        backlog_rate / none_m,
        drain_rate / with_m,
        if done.is_none() {
            " (not all within 120 s)"
        } else {
            ""
        },
        lags.len(),
    );
    println!("\n{report}");
    let out = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/target/bench"));
    let _ = std::fs::create_dir_all(out);
    let _ = std::fs::write(out.join("delivery.md"), report);
}

fn list(v: &[f64]) -> String {
    v.iter()
        .map(|x| format!("{x:.0}"))
        .collect::<Vec<_>>()
        .join(", ")
}
