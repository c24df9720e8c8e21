//! Load and resources: past the concurrency limit the answer is a fast 503 and memory stays
//! bounded; slow clients are cut at the request timeout; idle connections cannot crowd out the
//! others.

use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;

use crate::helpers::*;

/// Peak resident memory of a process, in KiB (`VmHWM`).
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// An Identus event padded to about `size` bytes (whitespace inside the JSON).
fn big_event(n: usize, size: usize) -> Vec<u8> {
    let e = connection_event(
        &format!("b19b19b1-0000-4000-8000-{n:012}"),
        &format!("conn-{n}"),
        "InvitationGenerated",
        "2024-05-01T10:20:30Z",
    );
    let pad = " ".repeat(size.saturating_sub(e.len()));
    e.replacen("{", &format!("{{{pad}"), 1).into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_concurrency_limit_503_comes_first_memory_stays_bounded_and_it_recovers() {
    if !std::path::Path::new("/proc/self/status").exists() {
        println!("skipped: no /proc to read memory from");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let limit = 8;
    let bin = start_binary(
        tmp.path(),
        &[(
            "HOOKGATE__SERVER__MAX_CONCURRENT_REQUESTS",
            &limit.to_string(),
        )],
        &[],
    );
    let pid = bin.pid();
    let idle_kib = peak_rss_kib(pid);
    let clients = 256;
    let body_size = 1000 * 1024;
    let mut tasks = Vec::new();
    for n in 0..clients {
        let url = format!("http://{}/identus/events", bin.public);
        let body = big_event(n, body_size);
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let started = Instant::now();
            let res = client
                .post(url)
                .header("content-type", "application/json")
                .bearer_auth(IDENTUS_TOKEN)
                .body(body)
                .send()
                .await;
            match res {
                Ok(r) => (
                    r.status().as_u16(),
                    r.headers().contains_key("retry-after"),
                    started.elapsed(),
                ),
                // Refused before the upload finished: the connection closes under the sender.
                Err(_) => (0, false, started.elapsed()),
            }
        }));
    }
    let mut ok = 0;
    let mut shed = 0;
    let mut cut = 0;
    let mut slowest_503 = Duration::ZERO;
    let mut slowest_200 = Duration::ZERO;
    for t in tasks {
        match t.await.unwrap() {
            (200, _, took) => {
                ok += 1;
                slowest_200 = slowest_200.max(took);
            }
            (503, true, took) => {
                shed += 1;
                slowest_503 = slowest_503.max(took);
            }
            (0, _, _) => cut += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    let peak_kib = peak_rss_kib(pid);
    println!(
        "{clients} clients x {} KiB at a limit of {limit}: {ok} stored, {shed} shed with 503, {cut} cut off mid-upload; peak RSS {} MiB (idle {} MiB); slowest 503 {slowest_503:?}, slowest 200 {slowest_200:?}",
        body_size / 1024,
        peak_kib / 1024,
        idle_kib / 1024
    );
    assert!(ok >= limit, "at least the limit's worth was stored: {ok}");
    assert!(shed > 0, "requests past the limit were shed");
    // Memory: the bodies in flight are bounded by the limit, not by the clients. 256 bodies of
    // 1000 KiB would be 250 MiB; the limit's worth is 8 MiB. The bound leaves room for the
    // allocator and the connections' buffers.
    let bound_kib = idle_kib + 4 * (limit as u64) * 1024 + 48 * 1024;
    assert!(
        peak_kib < bound_kib,
        "peak RSS {peak_kib} KiB over {bound_kib} KiB"
    );
    // It recovers: the load is gone, every event goes in.
    let client = reqwest::Client::new();
    for n in clients..clients + 20 {
        let res = client
            .post(format!("http://{}/identus/events", bin.public))
            .header("content-type", "application/json")
            .bearer_auth(IDENTUS_TOKEN)
            .body(big_event(n, 4096))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    bin.signal("TERM");
    assert!(bin.wait().await.success());
}

#[tokio::test]
async fn slow_headers_and_slow_bodies_are_cut_at_the_request_timeout_with_408() {
    let app = spawn_app_with(|s| {
        s.server.request_timeout = hookgate::config::HumanDuration(Duration::from_millis(600));
    })
    .await;
    // Slow headers: a byte every 100 ms, for ever.
    let mut slow_head = app.raw().await;
    let head = identus_head(100);
    let trickle = tokio::spawn(async move {
        for b in head.as_bytes() {
            if slow_head.write_all(&[*b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        slow_head
    });
    // Slow body: the head at once, then the body a byte every 100 ms.
    let mut slow_body = app.raw().await;
    let body = IDENTUS_DID.as_bytes().to_vec();
    write_all(&mut slow_body, identus_head(body.len()).as_bytes()).await;
    let dribble = tokio::spawn(async move {
        for b in &body {
            if slow_body.write_all(&[*b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        slow_body
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // Meanwhile, others are served.
    assert_eq!(app.identus(IDENTUS_CONNECTION).await.status(), 200);
    let mut slow_head = trickle.await.unwrap();
    let answer = read_response(&mut slow_head, Duration::from_secs(2)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "slow headers: {answer}");
    let mut slow_body = dribble.await.unwrap();
    let answer = read_response(&mut slow_body, Duration::from_secs(2)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "slow body: {answer}");
    // Neither was stored; the fast one was.
    assert_eq!(app.all_events().await.len(), 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_idle_connections_do_not_stop_it_answering_others() {
    let app = spawn_app_with(|s| {
        s.server.request_timeout = hookgate::config::HumanDuration(Duration::from_secs(5));
    })
    .await;
    let mut idle = Vec::new();
    for i in 0..3000 {
        let mut s = app.raw().await;
        if i % 2 == 0 {
            // Half of them start a request and stop.
            let _ = s
                .write_all(b"POST /identus/events HTTP/1.1\r\nhost: x\r\n")
                .await;
        }
        idle.push(s);
    }
    for _ in 0..20 {
        assert_eq!(app.identus(IDENTUS_DID).await.status(), 200);
    }
    drop(idle);
    app.stop().await;
}

#[tokio::test]
async fn past_max_connections_a_connection_gets_503_and_room_returns_when_idle_ones_close() {
    let app = spawn_app_with(|s| {
        s.server.max_connections = 50;
        s.server.request_timeout = hookgate::config::HumanDuration(Duration::from_millis(500));
    })
    .await;
    let mut idle = Vec::new();
    for _ in 0..50 {
        idle.push(app.raw().await);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut extra = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    let answer = read_response(&mut extra, Duration::from_secs(2)).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("retry-after: 1"),
        "{answer}"
    );
    // The idle connections are closed after the request timeout, and there is room again.
    for s in &mut idle {
        assert_eq!(
            read_response(s, Duration::from_secs(3)).await,
            "",
            "closed silently"
        );
    }
    assert_eq!(app.identus(IDENTUS_DID).await.status(), 200);
    app.stop().await;
}
