//! Delivery to RabbitMQ (DESIGN.md "Delivery", `kind: rabbitmq`) against the machine's broker
//! (`HOOKGATE_TEST_AMQP_URL`; skipped without): a consumer bound the way MassTransit binds
//! receives the envelope; `format: raw` keeps the bytes; a publish no queue takes is a failed
//! attempt; connections the broker closes mid-stream lose nothing. And to NATS JetStream
//! (`HOOKGATE_TEST_NATS_URL`): each event stored once, a retried delivery dropped as a duplicate,
//! connections killed mid-stream lose nothing.

use std::collections::HashSet;
use std::time::Duration;

use futures_util::StreamExt;
use lapin::options::{
    BasicConsumeOptions, BasicGetOptions, ExchangeDeclareOptions, ExchangeDeleteOptions,
    QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};
use serde_json::{Value, json};

use crate::helpers::eventually;
use crate::helpers::{GUIDE_IDENTITY, TestApp, connection_event, kratos_body, spawn_app_with};

pub(crate) fn amqp_url(test: &str) -> Option<String> {
    match std::env::var("HOOKGATE_TEST_AMQP_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            println!("{test}: skipped: HOOKGATE_TEST_AMQP_URL is not set");
            None
        }
    }
}

pub(crate) fn unique() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn destination(settings: &mut hookgate::config::Settings, id: &str, block: Value) {
    settings.destinations.insert(
        id.into(),
        serde_json::from_value(block).expect("destination block"),
    );
}

/// A channel on the broker, for the test's side.
pub(crate) async fn channel(url: &str) -> (Connection, Channel) {
    let conn = Connection::connect(url, ConnectionProperties::default())
        .await
        .expect("the test connects to RabbitMQ");
    let ch = conn.create_channel().await.expect("channel");
    (conn, ch)
}

/// Declares `exchange` (durable, as hookgate and MassTransit do) and a durable queue bound to
/// it with `key`; answers the queue's name.
pub(crate) async fn bound_queue(
    ch: &Channel,
    exchange: &str,
    kind: ExchangeKind,
    key: &str,
) -> String {
    ch.exchange_declare(
        exchange.into(),
        kind,
        ExchangeDeclareOptions {
            durable: true,
            ..ExchangeDeclareOptions::default()
        },
        FieldTable::default(),
    )
    .await
    .expect("exchange");
    let queue = format!("hookgate-test-{}", unique());
    ch.queue_declare(
        queue.as_str().into(),
        QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        },
        FieldTable::default(),
    )
    .await
    .expect("queue");
    ch.queue_bind(
        queue.as_str().into(),
        exchange.into(),
        key.into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .expect("bind");
    queue
}

pub(crate) async fn cleanup(url: &str, exchanges: &[&str], queues: &[&str]) {
    let (_c, ch) = channel(url).await;
    for q in queues {
        let _ = ch
            .queue_delete((*q).into(), QueueDeleteOptions::default())
            .await;
    }
    for x in exchanges {
        let _ = ch
            .exchange_delete((*x).into(), ExchangeDeleteOptions::default())
            .await;
    }
}

/// The next message on `queue`, within 10 s.
pub(crate) async fn next_message(ch: &Channel, queue: &str) -> lapin::message::Delivery {
    let mut consumer = ch
        .basic_consume(
            queue.into(),
            format!("test-{}", unique()).as_str().into(),
            BasicConsumeOptions {
                no_ack: true,
                ..BasicConsumeOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("consume");
    tokio::time::timeout(Duration::from_secs(10), consumer.next())
        .await
        .expect("a message within 10 s")
        .expect("a message")
        .expect("no consumer error")
}

pub(crate) fn header(d: &lapin::message::Delivery, name: &str) -> String {
    match d
        .properties
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get(name))
    {
        Some(AMQPValue::LongString(s)) => s.to_string(),
        other => panic!("header {name}: {other:?}"),
    }
}

/// Posts a new Identus connection event; answers its body and hookgate's event id.
async fn identus_event(app: &TestApp, n: usize) -> (String, String) {
    let body = connection_event(
        &uuid::Uuid::new_v4().to_string(),
        &uuid::Uuid::new_v4().to_string(),
        "ConnectionResponseSent",
        &format!("2024-05-01T10:20:{:02}.123456Z", n % 60),
    );
    let res = app.identus(&body).await;
    assert_eq!(res.status(), 200, "the event is accepted");
    let id = res.headers()["hookgate-event-id"]
        .to_str()
        .unwrap()
        .to_string();
    (body, id)
}

#[tokio::test]
async fn a_masstransit_consumer_receives_kratos_identity_updated_with_the_identity_as_stored() {
    let Some(url) = amqp_url(
        "a_masstransit_consumer_receives_kratos_identity_updated_with_the_identity_as_stored",
    ) else {
        return;
    };
    // The consumer's side, as MassTransit sets it up: a fanout exchange named after the message
    // type, a queue bound to it.
    let name = format!("HookgateTests{}.Identities:KratosIdentityUpdated", unique());
    let urn = format!("urn:message:{name}");
    let (_conn, ch) = channel(&url).await;
    let queue = bound_queue(&ch, &name, ExchangeKind::Fanout, "").await;
    let app = spawn_app_with(|s| {
        destination(
            s,
            "bus",
            json!({"kind": "rabbitmq", "url": url, "format": "masstransit",
                   "message_type": urn, "message": "kratos_identity_updated",
                   "sources": ["kratos"]}),
        )
    })
    .await;
    let body = kratos_body(GUIDE_IDENTITY);
    let res = app.kratos(&body, &[]).await;
    assert_eq!(res.status(), 200);
    let id = res.headers()["hookgate-event-id"]
        .to_str()
        .unwrap()
        .to_string();
    let m = next_message(&ch, &queue).await;
    // AMQP properties as MassTransit sets them.
    assert_eq!(
        m.properties.content_type().as_ref().map(|c| c.as_str()),
        Some("application/vnd.masstransit+json")
    );
    assert_eq!(
        m.properties.message_id().as_ref().map(|c| c.as_str()),
        Some(id.as_str())
    );
    assert_eq!(*m.properties.delivery_mode(), Some(2), "persistent");
    assert_eq!(m.exchange.as_str(), name);
    // The envelope.
    let text = String::from_utf8(m.data.clone()).expect("UTF-8");
    let v: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(v["messageId"], id);
    assert_eq!(v["messageType"], json!([urn]));
    assert_eq!(v["headers"]["Hookgate-Event-Id"], id);
    assert_eq!(v["headers"]["Hookgate-Source"], "kratos");
    assert!(v["sentTime"].is_string());
    assert!(v["responseAddress"].is_null() && v["faultAddress"].is_null());
    let stored = app.admin_json(&format!("/admin/events/{id}")).await;
    assert_eq!(v["message"]["id"], id);
    assert_eq!(v["message"]["dateOccurred"], stored["received_at"]);
    // The identity exactly as Kratos sent it: the same bytes, not a re-serialization.
    assert!(
        text.contains(&format!("\"identity\":{}", GUIDE_IDENTITY.trim_end())),
        "the identity is spliced byte for byte: {text}"
    );
    eventually(
        &app,
        &format!("/admin/deliveries?event_id={id}"),
        Duration::from_secs(10),
        |d| d["deliveries"][0]["state"] == "delivered",
    )
    .await;
    app.stop().await;
    cleanup(&url, &[&name], &[&queue]).await;
}

#[tokio::test]
async fn raw_keeps_the_bytes_and_a_publish_no_queue_takes_is_a_failed_attempt() {
    let Some(url) =
        amqp_url("raw_keeps_the_bytes_and_a_publish_no_queue_takes_is_a_failed_attempt")
    else {
        return;
    };
    let exchange = format!("hookgate-test-{}", unique());
    let lost = format!("HookgateTests{}:Nobody", unique());
    let (_conn, ch) = channel(&url).await;
    let queue = bound_queue(&ch, &exchange, ExchangeKind::Topic, "hg.identus.#").await;
    let app = spawn_app_with(|s| {
        destination(
            s,
            "raw",
            json!({"kind": "rabbitmq", "url": url, "format": "raw", "exchange": exchange,
                   "routing_key": "hg.{source}.{event_type}"}),
        );
        destination(
            s,
            "lost",
            json!({"kind": "rabbitmq", "url": url, "message_type": format!("urn:message:{lost}"),
                   "retry": ["1h"]}),
        );
    })
    .await;
    let (body, id) = identus_event(&app, 30).await;
    let m = next_message(&ch, &queue).await;
    assert_eq!(&m.data[..], body.as_bytes(), "the exact bytes received");
    assert_eq!(m.routing_key.as_str(), "hg.identus.ConnectionUpdated");
    assert_eq!(
        m.properties.content_type().as_ref().map(|c| c.as_str()),
        Some("application/json")
    );
    assert_eq!(header(&m, "Hookgate-Event-Id"), id);
    assert_eq!(header(&m, "Hookgate-Source"), "identus");
    assert_eq!(header(&m, "Hookgate-Event-Type"), "ConnectionUpdated");
    assert_eq!(header(&m, "Hookgate-Attempt"), "1");
    // The envelope to an exchange no queue is bound to: confirmed, but returned.
    let d = eventually(
        &app,
        &format!("/admin/deliveries?destination=lost&event_id={id}"),
        Duration::from_secs(10),
        |d| d["deliveries"][0]["attempts_made"] == 1,
    )
    .await;
    let delivery = &d["deliveries"][0];
    assert_eq!(delivery["state"], "pending", "retried later: {d:#}");
    let detail = app
        .admin_json(&format!("/admin/deliveries/{}", delivery["id"]))
        .await;
    assert_eq!(detail["attempts"][0]["error"], "unroutable", "{detail:#}");
    let status = app.admin_json("/admin/destinations").await;
    let kinds: Vec<&str> = status["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["rabbitmq", "rabbitmq"]);
    for d in status["destinations"].as_array().unwrap() {
        assert_eq!(d["connection"], "connected", "{d:#}");
    }
    app.stop().await;
    cleanup(&url, &[&exchange, &lost], &[&queue]).await;
}

#[tokio::test]
async fn connections_the_broker_closes_mid_stream_lose_nothing() {
    let Some(url) = amqp_url("connections_the_broker_closes_mid_stream_lose_nothing") else {
        return;
    };
    let exchange = format!("hookgate-test-{}", unique());
    let queue = {
        let (conn, ch) = channel(&url).await;
        let q = bound_queue(&ch, &exchange, ExchangeKind::Topic, "#").await;
        let _ = conn.close(200, "set up".into()).await;
        q
    };
    // Its own destination id names hookgate's connection, so that only it is closed (the other
    // tests' connections, on the same broker, are not).
    let id = format!("killed-{}", &unique()[..12]);
    let app = spawn_app_with(|s| {
        // `rabbitmqctl` starts an Erlang VM on the same two cores mid-stream: the events must
        // not be lost, and the test does not time their answers (the suite's 2 s would).
        s.server.request_timeout = hookgate::config::HumanDuration(Duration::from_secs(10));
        destination(
            s,
            &id,
            json!({"kind": "rabbitmq", "url": url, "format": "raw", "exchange": exchange,
                   "retry": SHORT_RETRIES}),
        )
    })
    .await;
    // The broker closes hookgate's connection mid-stream.
    let ids = stream_with_breaks(&app, || {
        assert!(close_connections_named(&format!("hookgate {id}")) > 0);
    })
    .await;
    // Every event is in the queue (at least once).
    let (_conn, ch) = channel(&url).await;
    let mut got = HashSet::new();
    while let Some(m) = ch
        .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: true })
        .await
        .expect("basic.get")
    {
        got.insert(
            m.delivery
                .properties
                .message_id()
                .as_ref()
                .map(|s| s.to_string())
                .unwrap_or_default(),
        );
    }
    let missing: Vec<_> = ids.difference(&got).collect();
    assert!(missing.is_empty(), "lost: {missing:?}");
    app.stop().await;
    cleanup(&url, &[&exchange], &[&queue]).await;
}

/// Waits short enough for a test, and long enough (about 15 s in all) to outlast a reconnect.
const SHORT_RETRIES: [&str; 10] = [
    "200ms", "500ms", "1s", "2s", "2s", "2s", "2s", "2s", "2s", "2s",
];

/// Sends 150 events, calling `broken` before the 51st and the 101st; waits until every delivery
/// is done and checks none failed. Answers the event ids.
async fn stream_with_breaks(app: &TestApp, mut broken: impl FnMut()) -> HashSet<String> {
    let mut ids = HashSet::new();
    for n in 0..150 {
        if n == 50 || n == 100 {
            broken();
        }
        ids.insert(identus_event(app, n).await.1);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    eventually(app, "/admin/destinations", Duration::from_secs(60), |v| {
        v["destinations"][0]["pending"] == 0
    })
    .await;
    let failed = app.admin_json("/admin/deliveries?state=failed").await;
    assert_eq!(failed["deliveries"], json!([]), "none failed");
    ids
}

/// Has the broker close every client connection named `name` (`rabbitmqctl close_connection`,
/// as an operator or a broker restart would); answers how many it closed.
fn close_connections_named(name: &str) -> usize {
    let rabbitmqctl = |args: &[&str]| {
        let out = std::process::Command::new("rabbitmqctl")
            .args(args)
            .output()
            .expect("rabbitmqctl runs (the broker's CLI, on every machine with the broker)");
        assert!(
            out.status.success(),
            "rabbitmqctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let listed = rabbitmqctl(&[
        "list_connections",
        "-q",
        "--no-table-headers",
        "pid",
        "client_properties",
    ]);
    let quoted = format!("\"{name}\"");
    let mut closed = 0;
    for line in listed.lines().filter(|l| l.contains(&quoted)) {
        if let Some(pid) = line.split_whitespace().next() {
            rabbitmqctl(&["close_connection", pid, "closed by hookgate's test"]);
            closed += 1;
        }
    }
    closed
}

pub(crate) fn nats_url(test: &str) -> Option<String> {
    match std::env::var("HOOKGATE_TEST_NATS_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            println!("{test}: skipped: HOOKGATE_TEST_NATS_URL is not set");
            None
        }
    }
}

#[tokio::test]
async fn jetstream_stores_each_event_once_even_when_its_delivery_is_made_again() {
    let Some(url) =
        nats_url("jetstream_stores_each_event_once_even_when_its_delivery_is_made_again")
    else {
        return;
    };
    let u = unique();
    let stream = format!("HGTEST{u}");
    let prefix = format!("hgtest{u}");
    let app = spawn_app_with(|s| {
        destination(
            s,
            "stream",
            json!({"kind": "nats", "url": url, "subject": format!("{prefix}.{{source}}.{{event_type}}"),
                   "stream": {"name": stream, "create": true}}),
        )
    })
    .await;
    let (body, id) = identus_event(&app, 30).await;
    let first = eventually(
        &app,
        &format!("/admin/deliveries?event_id={id}"),
        Duration::from_secs(10),
        |d| d["deliveries"][0]["state"] == "delivered",
    )
    .await;
    // What the stream holds: the exact bytes, on the filled-in subject, with the event id as
    // Nats-Msg-Id.
    let client = async_nats::connect(url.as_str()).await.expect("NATS");
    let js = async_nats::jetstream::new(client);
    let mut s = js
        .get_stream(&stream)
        .await
        .expect("the stream was created");
    let m = s.get_raw_message(1).await.expect("message 1");
    assert_eq!(&m.payload[..], body.as_bytes());
    assert_eq!(
        m.subject.as_str(),
        format!("{prefix}.identus.ConnectionUpdated")
    );
    let h = |name: &str| m.headers.get(name).map(|v| v.as_str().to_string());
    assert_eq!(h("Nats-Msg-Id").as_deref(), Some(id.as_str()));
    assert_eq!(h("Hookgate-Event-Id").as_deref(), Some(id.as_str()));
    assert_eq!(h("Hookgate-Source").as_deref(), Some("identus"));
    assert_eq!(h("Content-Type").as_deref(), Some("application/json"));
    // The delivery made again (as after an acknowledgement lost on the way back): the stream's
    // duplicate window drops the repeat, and the delivery counts as delivered.
    let delivery = first["deliveries"][0]["id"].clone();
    let res = app
        .client
        .post(format!("{}/admin/deliveries/{delivery}/retry", app.admin))
        .bearer_auth(crate::helpers::ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    let again = eventually(
        &app,
        &format!("/admin/deliveries?event_id={id}"),
        Duration::from_secs(10),
        |d| {
            d["deliveries"]
                .as_array()
                .is_some_and(|l| l.len() == 2 && l.iter().all(|x| x["state"] == "delivered"))
        },
    )
    .await;
    let newest = again["deliveries"][0]["id"].clone();
    let detail = app.admin_json(&format!("/admin/deliveries/{newest}")).await;
    let response = detail["attempts"][0]["response"]
        .as_str()
        .unwrap_or_default();
    assert!(response.contains("(duplicate)"), "{detail:#}");
    let info = s.info().await.expect("stream info");
    assert_eq!(info.state.messages, 1, "stored once");
    app.stop().await;
    let _ = js.delete_stream(&stream).await;
}

#[tokio::test]
async fn a_subject_no_stream_captures_is_a_failed_attempt_and_nats_down_is_connect() {
    let Some(url) =
        nats_url("a_subject_no_stream_captures_is_a_failed_attempt_and_nats_down_is_connect")
    else {
        return;
    };
    let app = spawn_app_with(|s| {
        destination(
            s,
            "nowhere",
            json!({"kind": "nats", "url": url, "subject": format!("hgnone{}.{{source}}", unique()),
                   "retry": ["1h"]}),
        );
        destination(
            s,
            "down",
            json!({"kind": "nats", "url": "nats://127.0.0.1:9", "subject": "x.{source}",
                   "timeout": "2s", "retry": ["1h"]}),
        );
    })
    .await;
    identus_event(&app, 30).await;
    for (dest, kind) in [("nowhere", "unroutable"), ("down", "connect")] {
        let d = eventually(
            &app,
            &format!("/admin/deliveries?destination={dest}"),
            Duration::from_secs(15),
            |d| d["deliveries"][0]["attempts_made"] == 1,
        )
        .await;
        let detail = app
            .admin_json(&format!("/admin/deliveries/{}", d["deliveries"][0]["id"]))
            .await;
        assert_eq!(detail["attempts"][0]["error"], kind, "{dest}: {detail:#}");
        assert_eq!(detail["state"], "pending", "{dest}: kept for a retry");
    }
    let status = app.admin_json("/admin/destinations").await;
    let connection = |id: &str| {
        status["destinations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["id"] == id)
            .map(|d| d["connection"].clone())
    };
    assert_eq!(connection("down"), Some(json!("disconnected")));
    assert_eq!(connection("nowhere"), Some(json!("connected")));
    // A broker outage is not hookgate being unready.
    let ready = app
        .client
        .get(format!("{}/readyz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    app.stop().await;
}

/// A TCP relay to NATS that the test can cut: every connection through it closes at once, as
/// when the server kills a client connection (the machine's server has no system account, so
/// the test cannot ask it to kick a client).
struct Relay {
    url: String,
    cut: tokio::sync::watch::Sender<u32>,
    /// How many connections the relay has taken.
    taken: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Relay {
    async fn to(upstream: &str) -> Relay {
        let upstream = upstream
            .trim_start_matches("nats://")
            .trim_end_matches('/')
            .to_string();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("nats://{}", listener.local_addr().unwrap());
        let (cut, _) = tokio::sync::watch::channel(0u32);
        let cuts = cut.clone();
        let taken = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = taken.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let mut cut = cuts.subscribe();
                cut.mark_unchanged();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.changed() => {}
                    }
                    // Both sockets drop here: the client sees its connection closed.
                });
            }
        });
        Relay { url, cut, taken }
    }

    /// Closes every connection through the relay (new ones are made as before).
    fn cut(&self) {
        self.cut.send_modify(|n| *n += 1);
    }
}

#[tokio::test]
async fn nats_connections_killed_mid_stream_lose_nothing_and_store_each_event_once() {
    let Some(url) =
        nats_url("nats_connections_killed_mid_stream_lose_nothing_and_store_each_event_once")
    else {
        return;
    };
    let relay = Relay::to(&url).await;
    let u = unique();
    let stream = format!("HGKILL{u}");
    let prefix = format!("hgkill{u}");
    let app = spawn_app_with(|s| {
        destination(
            s,
            "stream",
            json!({"kind": "nats", "url": relay.url, "subject": format!("{prefix}.{{source}}"),
                   "stream": {"name": stream, "create": true}, "timeout": "2s",
                   "retry": SHORT_RETRIES}),
        )
    })
    .await;
    let ids = stream_with_breaks(&app, || relay.cut()).await;
    // The stream holds every event, once each.
    let client = async_nats::connect(url.as_str()).await.expect("NATS");
    let js = async_nats::jetstream::new(client);
    let mut s = js.get_stream(&stream).await.expect("the stream");
    let held = s.info().await.expect("stream info").state.messages;
    let mut got = HashSet::new();
    for seq in 1..=held {
        let m = s.get_raw_message(seq).await.expect("message");
        if let Some(id) = m.headers.get("Nats-Msg-Id") {
            got.insert(id.as_str().to_string());
        }
    }
    let missing: Vec<_> = ids.difference(&got).collect();
    assert!(missing.is_empty(), "lost: {missing:?}");
    assert_eq!(held, 150, "each event stored once");
    // The cuts were felt: hookgate connected again after each.
    let taken = relay.taken.load(std::sync::atomic::Ordering::SeqCst);
    assert!(taken >= 3, "hookgate connected {taken} times");
    app.stop().await;
    let _ = js.delete_stream(&stream).await;
}
