//! The delivery workers: one task per destination claims its due deliveries, attempts each in a
//! task of its own (at most `max_in_flight` at once), and records what came of it.
//!
//! A destination's task never waits on another's: a slow or dead destination fills its own
//! `max_in_flight` and nothing else. The receive path never waits on delivery at all: it only
//! writes the delivery rows, in the event's transaction.
//!
//! Delivery runs on a thread of its own at the lowest scheduling priority (nice 19), with its
//! own small runtime: when the machine is short of CPU, receiving (answering senders, whose
//! retries are limited) goes first and deliveries, safe in the outbox, catch up after. The
//! store is still called on the main runtime ([`Remote`]), so its connections and blocking
//! reads never run at that priority.
//!
//! The task sleeps until the store says deliveries were queued (a new event, a retry, a replay,
//! a resume), until its next delivery is due, or [`POLL`] at most (other replicas' rows, expired
//! leases).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use super::attempt::{Attempted, Outgoing};
use super::schedule;
use crate::config::Destination;
use crate::store::hooks::hook_of_headers;
use crate::store::outbox::{AttemptRecord, Claimed, Finish, Next, now_ms};
use crate::store::{Store, StoreError, stored_content_type};
use crate::telemetry::traces;

/// The longest a destination's task sleeps without looking at the store.
const POLL: Duration = Duration::from_secs(1);

/// Deliveries claimed at once, at most.
const CLAIM_BATCH: usize = 64;

/// After a wake-up for new deliveries, the pause that lets a few more gather before the next
/// claim (one read for several). It adds at most this much to a delivery's latency.
const CLAIM_PAUSE: Duration = Duration::from_millis(5);

/// A lease outlives the attempt's timeout by this much (PostgreSQL): time to record it.
const LEASE_MARGIN: Duration = Duration::from_secs(30);

/// How often a failed write of an attempt's outcome is tried again, at most.
const FINISH_TRIES: u32 = 5;

/// What sends one attempt to a destination, whatever its kind.
#[async_trait]
pub trait Sender: Send + Sync + 'static {
    /// Makes one attempt; never fails: what went wrong is in the outcome.
    async fn send(&self, out: &Outgoing) -> Attempted;
}

/// A destination with what sends to it.
pub struct Worker {
    /// The destination.
    pub destination: Destination,
    /// Its sender.
    pub sender: Arc<dyn Sender>,
    /// How long an attempt may take (its lease is longer).
    pub timeout: Duration,
}

/// The store, called on the main runtime (its connections and blocking reads keep their
/// priority: at delivery's, a claim starves beside any other busy process).
#[derive(Clone)]
struct Remote {
    store: Arc<dyn Store>,
    main: tokio::runtime::Handle,
}

impl Remote {
    /// Runs `f` on the store, on the main runtime.
    async fn call<T, F, Fut>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(Arc<dyn Store>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<T, StoreError>> + Send + 'static,
        T: Send + 'static,
    {
        let store = self.store.clone();
        self.main
            .spawn(async move { f(store).await })
            .await
            .unwrap_or_else(|e| Err(StoreError::Unavailable(format!("a store call failed: {e}"))))
    }
}

/// Starts delivery on a thread of its own (none when there is no destination): every
/// destination's task runs until `stop`; then attempts in flight get `grace` to finish, and
/// those that do not are given back to the store. The thread ends when all have stopped.
///
/// # Errors
/// When the thread or its runtime cannot be made.
pub fn start(
    store: Arc<dyn Store>,
    workers: Vec<Worker>,
    stop: CancellationToken,
    grace: Duration,
) -> std::io::Result<Option<std::thread::JoinHandle<()>>> {
    if workers.is_empty() {
        return Ok(None);
    }
    let remote = Remote {
        store,
        main: tokio::runtime::Handle::current(),
    };
    let thread = std::thread::Builder::new()
        .name("hookgate-delivery".into())
        .spawn(move || {
            if let Err(e) = thread_priority::set_current_thread_priority(
                thread_priority::ThreadPriority::Min,
            ) {
                tracing::warn!(error = ?e, "delivery runs at normal priority (its priority could not be lowered)");
            }
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(error = %e, "delivery could not start: no runtime");
                    return;
                }
            };
            runtime.block_on(run(remote, workers, stop, grace));
        })?;
    Ok(Some(thread))
}

async fn run(remote: Remote, workers: Vec<Worker>, stop: CancellationToken, grace: Duration) {
    let ids: Vec<String> = workers.iter().map(|w| w.destination.id.clone()).collect();
    let mut tasks = JoinSet::new();
    for w in workers {
        tasks.spawn(run_destination(remote.clone(), w, stop.clone(), grace));
    }
    let monitor = tokio::spawn(monitor(remote, ids, stop));
    while tasks.join_next().await.is_some() {}
    monitor.abort();
}

/// How often the backlog gauges are refreshed.
const MONITOR_EVERY: Duration = Duration::from_secs(5);

/// Shows each destination's backlog as `hookgate_delivery_pending` and
/// `hookgate_delivery_oldest_pending_seconds`, and warns once about deliveries waiting for a
/// destination that is no longer configured (they are never attempted, and their events are
/// never pruned, until it is configured again).
async fn monitor(store: Remote, ids: Vec<String>, stop: CancellationToken) {
    let mut warned = false;
    let mut tick = tokio::time::interval(MONITOR_EVERY);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let Ok(all) = store.call(|s| async move { s.destinations().await }).await else {
            continue;
        };
        let now = now_ms();
        for d in &all {
            if !ids.contains(&d.id) {
                if !warned && d.pending > 0 {
                    tracing::warn!(destination = %d.id, pending = d.pending, "deliveries wait for a destination that is not configured: they are attempted once it is configured again (and their events are kept until then)");
                }
                continue;
            }
            metrics::gauge!("hookgate_delivery_pending", "destination" => d.id.clone())
                .set(d.pending as f64);
            let oldest = d
                .oldest_pending_at
                .map_or(0.0, |at| now.saturating_sub(at).max(0) as f64 / 1000.0);
            metrics::gauge!("hookgate_delivery_oldest_pending_seconds", "destination" => d.id.clone())
                .set(oldest);
        }
        warned = true;
    }
}

/// The content type stored with the event (`application/json` when none was).
fn content_type(headers: &str) -> String {
    stored_content_type(headers).unwrap_or_else(|| "application/json".to_string())
}

async fn run_destination(store: Remote, w: Worker, stop: CancellationToken, grace: Duration) {
    let w = Arc::new(w);
    let (record, recorded) = mpsc::unbounded_channel();
    let recorder = tokio::spawn(recorder(store.clone(), recorded));
    let id = w.destination.id.clone();
    let max = w.destination.max_in_flight.max(1);
    let lease_ms = i64::try_from((w.timeout + LEASE_MARGIN).as_millis()).unwrap_or(i64::MAX);
    let mut queued = store.store.deliveries_queued();
    let mut in_flight: HashMap<tokio::task::Id, (i64, i64)> = HashMap::new();
    let mut attempts: JoinSet<Option<i64>> = JoinSet::new();
    // Whether the last claim got all it asked for (more may be due).
    let mut full = true;
    // The earliest retry this task's attempts scheduled (it wakes for it).
    let mut retry_at: Option<i64> = None;
    loop {
        if stop.is_cancelled() {
            break;
        }
        queued.borrow_and_update();
        let free = max.saturating_sub(in_flight.len());
        // Claim when there is room worth a read: nothing in flight, a quarter of the slots
        // free, or more known to be due.
        let mut got = None;
        if free > 0 && (in_flight.is_empty() || full || free >= (max / 4).max(1)) {
            let ask = free.min(CLAIM_BATCH);
            let busy: Vec<i64> = in_flight.values().map(|(d, _)| *d).collect();
            let dest = id.clone();
            let claim = store
                .call(move |s| async move { s.claim(&dest, ask, now_ms(), lease_ms, &busy).await })
                .await;
            match claim {
                Ok(claims) => {
                    full = claims.len() == ask;
                    got = Some(claims.len());
                    for c in claims {
                        let claim = (c.delivery_id, c.lease);
                        let handle = attempts.spawn(attempt(record.clone(), w.clone(), c));
                        in_flight.insert(handle.id(), claim);
                    }
                }
                Err(e) => {
                    full = false;
                    tracing::warn!(destination = %id, error = %e, "deliveries could not be claimed; trying again shortly");
                }
            }
        }
        if full && in_flight.len() < max {
            continue;
        }
        let mut wait = POLL;
        if got == Some(0) {
            // Nothing due now (but what is in flight): when is the next one?
            let dest = id.clone();
            let busy: Vec<i64> = in_flight.values().map(|(d, _)| *d).collect();
            if let Ok(Some(due)) = store
                .call(move |s| async move { s.next_due(&dest, now_ms(), &busy).await })
                .await
            {
                let ms = u64::try_from(due.saturating_sub(now_ms())).unwrap_or(0);
                wait = wait.min(Duration::from_millis(ms));
            }
        }
        if let Some(at) = retry_at {
            let ms = u64::try_from(at.saturating_sub(now_ms())).unwrap_or(0);
            wait = wait.min(Duration::from_millis(ms));
        }
        tokio::select! {
            () = stop.cancelled() => break,
            Some(done) = attempts.join_next_with_id(), if !attempts.is_empty() => {
                let mut next = Some(done);
                // Every attempt that has finished meanwhile, before claiming again.
                while let Some(done) = next.take() {
                    let (task, retry) = match done {
                        Ok((task, retry)) => (task, retry),
                        Err(e) => (e.id(), None),
                    };
                    in_flight.remove(&task);
                    if let Some(at) = retry {
                        retry_at = Some(retry_at.map_or(at, |r| r.min(at)));
                    }
                    next = attempts.try_join_next_with_id();
                }
            }
            _ = queued.changed() => {
                // New deliveries come with nearly every commit: let a few gather before reading
                // the store again (one claim for several; at most one per pause while the
                // receive path is busy).
                tokio::time::sleep(CLAIM_PAUSE).await;
            }
            () = tokio::time::sleep(wait) => {
                if retry_at.is_some_and(|at| at <= now_ms()) {
                    retry_at = None;
                    full = true;
                }
            }
        }
    }
    // Stopping: no new attempts; those in flight get the grace period.
    let deadline = tokio::time::Instant::now() + grace;
    while !attempts.is_empty() {
        match tokio::time::timeout_at(deadline, attempts.join_next_with_id()).await {
            Ok(Some(done)) => {
                let task = match &done {
                    Ok((task, _)) => *task,
                    Err(e) => e.id(),
                };
                in_flight.remove(&task);
            }
            Ok(None) => break,
            Err(_) => {
                attempts.abort_all();
                while attempts.join_next().await.is_some() {}
                break;
            }
        }
    }
    drop(record);
    let _ = recorder.await;
    if !in_flight.is_empty() {
        let left: Vec<(i64, i64)> = in_flight.into_values().collect();
        tracing::warn!(destination = %id, attempts = left.len(), "attempts still in flight at shutdown were cut off; they are made again after the next start");
        if let Err(e) = store
            .call(move |s| async move { s.release(left).await })
            .await
        {
            tracing::warn!(destination = %id, error = %e, "deliveries could not be given back; their leases expire instead");
        }
    }
}

/// An attempt's outcome on its way to the store, with where to say it is recorded.
type Record = (Finish, oneshot::Sender<()>);

/// Records attempts' outcomes: whatever has finished meanwhile goes in one `finish` (one
/// transaction; on SQLite part of the writer's next group commit). Each attempt waits for its
/// record, so that its delivery stays left out of claims until then.
async fn recorder(store: Remote, mut records: mpsc::UnboundedReceiver<Record>) {
    let mut batch: Vec<Record> = Vec::new();
    while let Some(first) = records.recv().await {
        batch.push(first);
        while batch.len() < RECORD_BATCH {
            match records.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        let (done, replies): (Vec<Finish>, Vec<oneshot::Sender<()>>) = batch.drain(..).unzip();
        let mut wait = Duration::from_millis(100);
        for tries in 1..=FINISH_TRIES {
            let this = done.clone();
            match store
                .call(move |s| async move { s.finish(this, now_ms()).await })
                .await
            {
                Ok(paused) => {
                    for p in paused {
                        tracing::warn!(destination = %p, "destination paused: its deliveries wait until POST /admin/destinations/{p}/resume");
                    }
                    break;
                }
                Err(e) if tries < FINISH_TRIES => {
                    tracing::warn!(error = %e, "attempts' outcomes could not be recorded; trying again");
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
                Err(e) => {
                    tracing::error!(error = %e, attempts = done.len(), "attempts' outcomes could not be recorded; their deliveries stay pending and will be attempted again");
                }
            }
        }
        for recorded in replies {
            let _ = recorded.send(());
        }
    }
}

/// Attempts' outcomes recorded in one transaction, at most.
const RECORD_BATCH: usize = 256;

/// Makes one attempt of a claimed delivery and hands its outcome to the recorder; answers
/// when the delivery is due again, if it is.
async fn attempt(record: mpsc::UnboundedSender<Record>, w: Arc<Worker>, c: Claimed) -> Option<i64> {
    let d = &w.destination;
    let number = c.attempts_made.saturating_add(1);
    // With traces on: the attempt's span, a child of the request that received the event.
    let span = traces::on().then(|| attempt_span(d, &c, number));
    let out = Outgoing {
        event_id: c.event_id,
        content_type: content_type(&c.headers),
        hook: hook_of_headers(&c.source, &c.headers),
        source: c.source,
        event_type: c.event_type,
        body: c.body,
        received_at: c.received_at,
        attempt: number,
        trace: span
            .as_ref()
            .map(traces::propagation_headers)
            .unwrap_or_default(),
    };
    let at = now_ms();
    let started = Instant::now();
    let outcome = match &span {
        Some(span) => w.sender.send(&out).instrument(span.clone()).await,
        None => w.sender.send(&out).await,
    };
    let elapsed = started.elapsed();
    metrics::histogram!("hookgate_delivery_attempt_seconds", "destination" => d.id.clone())
        .record(elapsed.as_secs_f64());
    let now = now_ms();
    let next = schedule::next(&d.retry, number, &outcome, now, schedule::random_unit());
    let result = match next {
        Next::Delivered => "delivered",
        Next::RetryAt(_) => "retrying",
        Next::Failed => "failed",
    };
    metrics::counter!("hookgate_deliveries_total", "destination" => d.id.clone(), "outcome" => result)
        .increment(1);
    let error = outcome.error.map(|e| e.as_str().to_string());
    let last_error = (!outcome.delivered()).then(|| match (&error, outcome.status) {
        (Some(kind), _) => format!("{kind}: {}", outcome.response),
        (None, Some(status)) => format!("HTTP {status}"),
        (None, None) => "no answer".to_string(),
    });
    if let Some(span) = span {
        // Ended here: the attempt, not the recording of it.
        record_outcome(&span, &outcome, result);
    }
    if outcome.delivered() {
        tracing::debug!(destination = %d.id, event_id = %out.event_id, attempt = number, "delivered");
    } else {
        tracing::info!(destination = %d.id, event_id = %out.event_id, attempt = number, status = ?outcome.status, error = error.as_deref().unwrap_or(""), next = result, "delivery attempt failed");
    }
    let gone = outcome.gone();
    let finish = Finish {
        delivery_id: c.delivery_id,
        lease: c.lease,
        destination: d.id.clone(),
        attempt: AttemptRecord {
            number,
            at,
            duration_ms: i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX),
            status: outcome.status,
            error,
            response: (!outcome.response.is_empty()).then_some(outcome.response),
        },
        next,
        gone,
        pause_after_ms: i64::try_from(d.pause_after.as_millis()).unwrap_or(i64::MAX),
        last_error,
    };
    let (recorded, wait) = oneshot::channel();
    if record.send((finish, recorded)).is_ok() {
        let _ = wait.await;
    }
    match next {
        Next::RetryAt(at) => Some(at),
        Next::Delivered | Next::Failed => None,
    }
}

/// The span of one attempt (traces on): a root in this process, whose parent is the request
/// span the event was received in (its stored trace context), when it has one. A client span
/// for HTTP, a producer span for the brokers; named `deliver {destination}`.
fn attempt_span(d: &Destination, c: &Claimed, number: u32) -> tracing::Span {
    let kind = match d.target {
        crate::config::Target::Http(_) => "client",
        crate::config::Target::Rabbitmq(_) | crate::config::Target::Nats(_) => "producer",
    };
    let span = tracing::info_span!(
        parent: None,
        "delivery attempt",
        otel.name = %format_args!("deliver {}", d.id),
        otel.kind = kind,
        hookgate.event_id = %c.event_id,
        hookgate.source = %c.source,
        hookgate.destination = %d.id,
        hookgate.delivery_id = c.delivery_id,
        hookgate.attempt = number,
        hookgate.outcome = tracing::field::Empty,
        http.response.status_code = tracing::field::Empty,
        error.type = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    );
    if let Some(stored) = c.trace_context.as_deref() {
        traces::set_stored_parent(&span, stored);
    }
    span
}

/// What came of the attempt, on its span: `hookgate.outcome` (delivered, retrying, failed),
/// the HTTP status, the error kind; anything but a delivery marks the span an error.
fn record_outcome(span: &tracing::Span, outcome: &Attempted, result: &'static str) {
    span.record("hookgate.outcome", result);
    if let Some(status) = outcome.status {
        span.record("http.response.status_code", status);
    }
    if let Some(error) = outcome.error {
        span.record("error.type", error.as_str());
    } else if !outcome.delivered() {
        if let Some(status) = outcome.status {
            span.record("error.type", tracing::field::display(status));
        }
    }
    if !outcome.delivered() {
        span.record("otel.status_code", "ERROR");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stored_content_type_is_sent() {
        assert_eq!(
            content_type(r#"{"content-type":"application/cloudevents+json","user-agent":"x"}"#),
            "application/cloudevents+json"
        );
        assert_eq!(content_type("{}"), "application/json");
        assert_eq!(content_type("not json"), "application/json");
    }
}
