//! A test HTTP sink: the receiving end of delivery. [`Sink`] listens on `127.0.0.1:0`, records
//! every request (method, path, headers, exact body, when it arrived) and answers as told, for
//! every request ([`Sink::set`]) or for the next ones in order ([`Sink::script`]). [`Sink::stop`]
//! closes the listener and every connection, so that the port refuses connections; a later sink
//! can take the port again ([`Sink::start_on`]).
//!
//! Below it, the tests of `deliver::http::HttpSender` against it.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{Notify, oneshot};
use tokio::task::{JoinHandle, JoinSet};

/// How the sink answers a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// 200 `ok`.
    Ok,
    /// 500 `sink failure`.
    Fail,
    /// 429 with `Retry-After: N` (seconds).
    TooMany(u64),
    /// 503 with `Retry-After: N` (seconds).
    Unavailable(u64),
    /// 410 Gone.
    Gone,
    /// No answer for an hour: longer than any timeout.
    Hang,
    /// 200 `ok` after this long (a slow but healthy destination).
    Delay(Duration),
    /// 200 with a body of this many bytes (`x`).
    Big(usize),
    /// 302 to this location.
    Redirect(String),
}

/// One request as the sink got it.
#[derive(Debug, Clone)]
pub struct Received {
    /// Its method.
    pub method: Method,
    /// Its path and query.
    pub path: String,
    /// Its headers.
    pub headers: HeaderMap,
    /// Its exact body.
    pub body: Bytes,
    /// When its body had arrived.
    pub at: Instant,
}

impl Received {
    /// The value of header `name` as text (panics when it is absent or repeated).
    pub fn header(&self, name: &str) -> &str {
        let mut values = self.headers.get_all(name).iter();
        let value = values.next().unwrap_or_else(|| panic!("no {name} header"));
        assert!(values.next().is_none(), "{name} repeated");
        value.to_str().unwrap()
    }
}

/// What the connections share.
#[derive(Default)]
struct State {
    /// Every request so far, in the order they arrived.
    requests: Vec<Received>,
    /// The answers of the next requests, in order.
    script: VecDeque<Mode>,
    /// The answer when the script is empty (`None`: [`Mode::Ok`]).
    mode: Option<Mode>,
}

/// A running sink; dropping it stops it.
pub struct Sink {
    /// Its port on 127.0.0.1.
    port: u16,
    /// The requests and the answers to give.
    state: Arc<Mutex<State>>,
    /// Woken at every recorded request, for [`Sink::wait_for`].
    arrived: Arc<Notify>,
    /// Tells the accept loop to stop (dropped with the sink: it stops too).
    stop: Option<oneshot::Sender<()>>,
    /// The accept loop, which owns the listener and every connection.
    task: Option<JoinHandle<()>>,
}

impl Sink {
    /// A sink on a free port, answering 200.
    pub async fn start() -> Sink {
        Self::start_on(0).await
    }

    /// A sink on `port` (0: any free one), e.g. one a stopped sink gave back.
    pub async fn start_on(port: u16) -> Sink {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let arrived = Arc::new(Notify::new());
        let (stop, mut stopped) = oneshot::channel();
        let task = tokio::spawn({
            let state = state.clone();
            let arrived = arrived.clone();
            async move {
                // Dropped when the loop ends: every connection is aborted with it.
                let mut connections = JoinSet::new();
                loop {
                    tokio::select! {
                        _ = &mut stopped => break,
                        Some(_) = connections.join_next(), if !connections.is_empty() => {}
                        accepted = listener.accept() => {
                            let Ok((stream, _)) = accepted else { continue };
                            let state = state.clone();
                            let arrived = arrived.clone();
                            connections.spawn(async move {
                                let service = service_fn(move |request| {
                                    answer(request, state.clone(), arrived.clone())
                                });
                                let _ = hyper::server::conn::http1::Builder::new()
                                    .serve_connection(TokioIo::new(stream), service)
                                    .await;
                            });
                        }
                    }
                }
            }
        });
        Sink {
            port,
            state,
            arrived,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Every request so far, in the order they arrived.
    pub fn requests(&self) -> Vec<Received> {
        self.state.lock().unwrap().requests.clone()
    }

    /// The requests once there are at least `n` (panics after `timeout`).
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let arrived = self.arrived.notified();
            let requests = self.requests();
            if requests.len() >= n {
                return requests;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                panic!(
                    "the sink got {} of {n} requests in {timeout:?}",
                    requests.len()
                );
            }
        }
    }

    /// Answers every request with `mode` from now on (after any script).
    pub fn set(&self, mode: Mode) {
        self.state.lock().unwrap().mode = Some(mode);
    }

    /// Answers the next requests with `modes`, in order; then as [`Sink::set`] says.
    pub fn script(&self, modes: Vec<Mode>) {
        self.state.lock().unwrap().script = modes.into();
    }

    /// Closes the listener and every connection (the port now refuses connections) and gives
    /// back the port.
    pub async fn stop(mut self) -> u16 {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
        self.port
    }
}

/// Records the request, then answers it as the script or the mode says.
async fn answer(
    request: Request<Incoming>,
    state: Arc<Mutex<State>>,
    arrived: Arc<Notify>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let mode = {
        let mut state = state.lock().unwrap();
        state.requests.push(Received {
            method: parts.method,
            path: parts
                .uri
                .path_and_query()
                .map_or("/".to_string(), |p| p.to_string()),
            headers: parts.headers,
            body,
            at: Instant::now(),
        });
        let scripted = state.script.pop_front();
        scripted.unwrap_or_else(|| state.mode.clone().unwrap_or(Mode::Ok))
    };
    arrived.notify_waiters();
    let reply = |status: StatusCode, body: Bytes| {
        let mut r = Response::new(Full::new(body));
        *r.status_mut() = status;
        r
    };
    Ok(match mode {
        Mode::Ok => reply(StatusCode::OK, Bytes::from_static(b"ok")),
        Mode::Fail => reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            Bytes::from_static(b"sink failure"),
        ),
        Mode::TooMany(s) | Mode::Unavailable(s) => {
            let status = if matches!(mode, Mode::TooMany(_)) {
                StatusCode::TOO_MANY_REQUESTS
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            let mut r = reply(status, Bytes::from_static(b"later"));
            r.headers_mut()
                .insert(http::header::RETRY_AFTER, s.to_string().parse().unwrap());
            r
        }
        Mode::Gone => reply(StatusCode::GONE, Bytes::from_static(b"gone")),
        Mode::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            reply(StatusCode::OK, Bytes::new())
        }
        Mode::Delay(wait) => {
            tokio::time::sleep(wait).await;
            reply(StatusCode::OK, Bytes::from_static(b"ok"))
        }
        Mode::Big(n) => reply(StatusCode::OK, Bytes::from(vec![b'x'; n])),
        Mode::Redirect(location) => {
            let mut r = reply(StatusCode::FOUND, Bytes::new());
            r.headers_mut()
                .insert(http::header::LOCATION, location.parse().unwrap());
            r
        }
    })
}

mod http_sender {
    //! `deliver::http::HttpSender` against the sink.

    use super::*;
    use hookgate::config::destinations::{HttpTarget, Signing, whsec_key};
    use hookgate::deliver::attempt::{ErrorKind, Outgoing, RESPONSE_BYTES};
    use hookgate::deliver::http::HttpSender;
    use hookgate::store::EventId;
    use secrecy::{SecretSlice, SecretString};

    const WHSEC: &str = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    fn target(url: String) -> HttpTarget {
        HttpTarget {
            url,
            headers: Vec::new(),
            sign: Signing::None,
            timeout: Duration::from_secs(5),
        }
    }

    fn sender(target: &HttpTarget) -> HttpSender {
        HttpSender::new("app", target).expect("sender")
    }

    fn outgoing(body: &'static [u8]) -> Outgoing {
        Outgoing {
            event_id: EventId::new(),
            source: "identus".into(),
            event_type: Some("ConnectionUpdated".into()),
            hook: None,
            content_type: "application/json; charset=utf-8".into(),
            body: Bytes::from_static(body),
            received_at: "2026-11-26T10:20:30.123Z".into(),
            attempt: 3,
            trace: Vec::new(),
        }
    }

    #[tokio::test]
    async fn a_200_is_delivered_with_the_exact_bytes_every_header_and_a_valid_signature() {
        // Arrange
        let sink = Sink::start().await;
        let mut t = target(sink.url("/hooks?x=1"));
        t.sign = Signing::StandardWebhooks {
            keys: vec![SecretSlice::from(whsec_key(WHSEC).unwrap())],
        };
        let out = outgoing(br#"{"type":"ConnectionUpdated","data":{"id":"zo\u00eb"}}"#);

        // Act
        let a = sender(&t).send(&out).await;

        // Assert
        assert!(a.delivered(), "{a:?}");
        assert_eq!(
            (a.status, a.error, a.response.as_str()),
            (Some(200), None, "ok")
        );
        assert_eq!(a.retry_after, None);
        let got = sink.wait_for(1, Duration::from_secs(5)).await;
        assert_eq!(got.len(), 1);
        let r = &got[0];
        assert_eq!(r.method, Method::POST);
        assert_eq!(r.path, "/hooks?x=1");
        assert_eq!(r.body, out.body);
        assert_eq!(r.header("content-type"), "application/json; charset=utf-8");
        assert_eq!(r.header("hookgate-event-id"), out.event_id.to_string());
        assert_eq!(r.header("hookgate-source"), "identus");
        assert_eq!(r.header("hookgate-event-type"), "ConnectionUpdated");
        assert_eq!(r.header("hookgate-attempt"), "3");
        assert!(r.header("user-agent").starts_with("hookgate/"));
        assert_eq!(r.header("webhook-id"), out.event_id.to_string());
        standardwebhooks::Webhook::new(WHSEC)
            .unwrap()
            .verify(&r.body, &r.headers)
            .expect("a valid Standard Webhooks signature");
    }

    #[tokio::test]
    async fn a_500_is_not_delivered_and_keeps_the_answer() {
        let sink = Sink::start().await;
        sink.set(Mode::Fail);
        let mut out = outgoing(b"{}");
        out.event_type = None;
        let a = sender(&target(sink.url("/"))).send(&out).await;
        assert!(!a.delivered());
        assert_eq!(a.status, Some(500));
        assert_eq!(a.error, None);
        assert_eq!(a.response, "sink failure");
        assert_eq!(a.retry_after, None);
        let got = sink.requests();
        assert!(got[0].headers.get("hookgate-event-type").is_none());
    }

    #[tokio::test]
    async fn retry_after_is_read_from_a_429_and_a_503() {
        let sink = Sink::start().await;
        sink.script(vec![Mode::TooMany(7), Mode::Unavailable(30), Mode::Gone]);
        let s = sender(&target(sink.url("/")));
        let out = outgoing(b"{}");
        let a = s.send(&out).await;
        assert_eq!(a.status, Some(429));
        assert_eq!(a.retry_after, Some(Duration::from_secs(7)));
        let a = s.send(&out).await;
        assert_eq!(a.status, Some(503));
        assert_eq!(a.retry_after, Some(Duration::from_secs(30)));
        let a = s.send(&out).await;
        assert!(a.gone() && !a.delivered(), "{a:?}");
        // The script is spent: the global mode (200) again.
        assert!(s.send(&out).await.delivered());
        let got = sink.wait_for(4, Duration::from_secs(5)).await;
        assert_eq!(got.len(), 4);
        assert!(got.windows(2).all(|w| w[0].at <= w[1].at));
    }

    #[tokio::test]
    async fn only_the_first_4096_bytes_of_a_huge_answer_are_read() {
        let sink = Sink::start().await;
        sink.set(Mode::Big(1024 * 1024));
        let started = Instant::now();
        let a = sender(&target(sink.url("/"))).send(&outgoing(b"{}")).await;
        assert!(a.delivered(), "{:?}", a.error);
        assert_eq!(a.response.len(), RESPONSE_BYTES);
        assert!(a.response.bytes().all(|b| b == b'x'));
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn a_hang_past_the_timeout_is_a_timeout_of_about_the_timeout() {
        let sink = Sink::start().await;
        sink.set(Mode::Hang);
        let mut t = target(sink.url("/"));
        t.timeout = Duration::from_millis(200);
        let a = sender(&t).send(&outgoing(b"{}")).await;
        assert_eq!(a.error, Some(ErrorKind::Timeout), "{a:?}");
        assert_eq!(a.status, None);
        assert!(
            a.duration >= Duration::from_millis(200) && a.duration < Duration::from_millis(1000),
            "{:?}",
            a.duration
        );
        assert_eq!(sink.requests().len(), 1);
    }

    #[tokio::test]
    async fn a_stopped_sink_refuses_connections_and_its_port_can_be_taken_again() {
        let sink = Sink::start().await;
        let t = target(sink.url("/"));
        let s = sender(&t);
        assert!(s.send(&outgoing(b"{}")).await.delivered());
        let port = sink.stop().await;
        // Let the client see its pooled connection closed.
        tokio::time::sleep(Duration::from_millis(100)).await;

        // The pooled connection is gone too: a new one is refused.
        let a = s.send(&outgoing(b"{}")).await;
        assert_eq!(a.error, Some(ErrorKind::Connect), "{a:?}");
        assert_eq!(a.status, None);

        let again = Sink::start_on(port).await;
        assert_eq!(again.url("/"), t.url);
        assert!(s.send(&outgoing(b"{}")).await.delivered());
        assert_eq!(again.requests().len(), 1);
    }

    #[tokio::test]
    async fn a_redirect_is_not_followed() {
        let sink = Sink::start().await;
        sink.set(Mode::Redirect(sink.url("/elsewhere")));
        let a = sender(&target(sink.url("/hooks")))
            .send(&outgoing(b"{}"))
            .await;
        assert_eq!(a.status, Some(302));
        assert!(!a.delivered());
        tokio::time::sleep(Duration::from_millis(100)).await;
        let got = sink.requests();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].path, "/hooks");
    }

    #[tokio::test]
    async fn a_static_header_arrives_and_debug_never_shows_it() {
        let sink = Sink::start().await;
        let mut t = target(sink.url("/"));
        t.headers.push((
            http::HeaderName::from_static("authorization"),
            SecretString::from("Bearer app-token-s3cret"),
        ));
        let s = sender(&t);
        assert!(s.send(&outgoing(b"{}")).await.delivered());
        let got = sink.requests();
        assert_eq!(got[0].header("authorization"), "Bearer app-token-s3cret");
        let shown = format!("{s:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("authorization"), "{shown}");
    }
}
