//! The delivery workers: one task per destination claims its due deliveries, attempts each in a
//! task of its own (at most `max_in_flight` at once), and records what came of it.
//!
//! A destination's task never waits on another's: a slow or dead destination fills its own
//! `max_in_flight` and nothing else. The receive path never waits on delivery at all: it only
//! writes the delivery rows, in the event's transaction.
//!
//! The task sleeps until the store says deliveries were queued (a new event, a retry, a replay,
//! a resume), until its next delivery is due, or [`POLL`] at most (other replicas' rows, expired
//! leases).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::attempt::{Attempted, Outgoing};
use super::schedule;
use crate::config::Destination;
use crate::store::Store;
use crate::store::outbox::{AttemptRecord, Claimed, Finish, Next, now_ms};

/// The longest a destination's task sleeps without looking at the store.
const POLL: Duration = Duration::from_secs(1);

/// Deliveries claimed at once, at most.
const CLAIM_BATCH: usize = 64;

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

/// Runs every destination's task until `stop`; then attempts in flight get `grace` to finish,
/// and those that do not are given back to the store. Returns when all have stopped.
pub async fn run(
    store: Arc<dyn Store>,
    workers: Vec<Worker>,
    stop: CancellationToken,
    grace: Duration,
) {
    let mut tasks = JoinSet::new();
    for w in workers {
        tasks.spawn(run_destination(store.clone(), w, stop.clone(), grace));
    }
    while tasks.join_next().await.is_some() {}
}

/// The content type stored with the event (`application/json` when none was).
fn content_type(headers: &str) -> String {
    serde_json::from_str::<HashMap<String, String>>(headers)
        .ok()
        .and_then(|mut h| h.remove("content-type"))
        .unwrap_or_else(|| "application/json".to_string())
}

async fn run_destination(
    store: Arc<dyn Store>,
    w: Worker,
    stop: CancellationToken,
    grace: Duration,
) {
    let w = Arc::new(w);
    let id = w.destination.id.clone();
    let max = w.destination.max_in_flight.max(1);
    let lease_ms = i64::try_from((w.timeout + LEASE_MARGIN).as_millis()).unwrap_or(i64::MAX);
    let mut queued = store.deliveries_queued();
    let mut in_flight: HashMap<tokio::task::Id, (i64, i64)> = HashMap::new();
    let mut attempts: JoinSet<()> = JoinSet::new();
    loop {
        if stop.is_cancelled() {
            break;
        }
        queued.borrow_and_update();
        let free = max.saturating_sub(in_flight.len());
        let mut more_due = false;
        if free > 0 {
            let ask = free.min(CLAIM_BATCH);
            let busy: Vec<i64> = in_flight.values().map(|(d, _)| *d).collect();
            match store.claim(&id, ask, now_ms(), lease_ms, &busy).await {
                Ok(claims) => {
                    more_due = claims.len() == ask;
                    for c in claims {
                        let claim = (c.delivery_id, c.lease);
                        let handle = attempts.spawn(attempt(store.clone(), w.clone(), c));
                        in_flight.insert(handle.id(), claim);
                    }
                }
                Err(e) => {
                    tracing::warn!(destination = %id, error = %e, "deliveries could not be claimed; trying again shortly");
                }
            }
        }
        if more_due && in_flight.len() < max {
            continue;
        }
        let wait = if in_flight.len() >= max {
            POLL
        } else {
            let busy: Vec<i64> = in_flight.values().map(|(d, _)| *d).collect();
            match store.next_due(&id, now_ms(), &busy).await {
                Ok(Some(due)) => {
                    let ms = u64::try_from(due.saturating_sub(now_ms())).unwrap_or(0);
                    Duration::from_millis(ms).min(POLL)
                }
                Ok(None) | Err(_) => POLL,
            }
        };
        tokio::select! {
            () = stop.cancelled() => break,
            Some(done) = attempts.join_next_with_id(), if !attempts.is_empty() => {
                let task = match &done { Ok((task, ())) => *task, Err(e) => e.id() };
                in_flight.remove(&task);
            }
            _ = queued.changed() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
    // Stopping: no new attempts; those in flight get the grace period.
    let deadline = tokio::time::Instant::now() + grace;
    while !attempts.is_empty() {
        match tokio::time::timeout_at(deadline, attempts.join_next_with_id()).await {
            Ok(Some(done)) => {
                let task = match &done {
                    Ok((task, ())) => *task,
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
    if !in_flight.is_empty() {
        let left: Vec<(i64, i64)> = in_flight.into_values().collect();
        tracing::warn!(destination = %id, attempts = left.len(), "attempts still in flight at shutdown were cut off; they are made again after the next start");
        if let Err(e) = store.release(left).await {
            tracing::warn!(destination = %id, error = %e, "deliveries could not be given back; their leases expire instead");
        }
    }
}

/// Makes one attempt of a claimed delivery and records it.
async fn attempt(store: Arc<dyn Store>, w: Arc<Worker>, c: Claimed) {
    let d = &w.destination;
    let number = c.attempts_made.saturating_add(1);
    let out = Outgoing {
        event_id: c.event_id,
        content_type: content_type(&c.headers),
        source: c.source,
        event_type: c.event_type,
        body: c.body,
        attempt: number,
    };
    let at = now_ms();
    let started = Instant::now();
    let outcome = w.sender.send(&out).await;
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
    if outcome.delivered() {
        tracing::debug!(destination = %d.id, event_id = %out.event_id, attempt = number, "delivered");
    } else {
        tracing::info!(destination = %d.id, event_id = %out.event_id, attempt = number, status = ?outcome.status, error = error.as_deref().unwrap_or(""), next = result, "delivery attempt failed");
    }
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
            response: (!outcome.response.is_empty()).then_some(outcome.response.clone()),
        },
        next,
        gone: outcome.gone(),
        pause_after_ms: i64::try_from(d.pause_after.as_millis()).unwrap_or(i64::MAX),
        last_error,
    };
    let mut wait = Duration::from_millis(100);
    for tries in 1..=FINISH_TRIES {
        match store.finish(vec![finish.clone()], now_ms()).await {
            Ok(paused) => {
                for p in paused {
                    tracing::warn!(destination = %p, gone = finish.gone, "destination paused: its deliveries wait until POST /admin/destinations/{p}/resume");
                }
                return;
            }
            Err(e) if tries < FINISH_TRIES => {
                tracing::warn!(destination = %d.id, error = %e, "an attempt's outcome could not be recorded; trying again");
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
            Err(e) => {
                tracing::error!(destination = %d.id, delivery_id = c.delivery_id, error = %e, "an attempt's outcome could not be recorded; the delivery stays pending and will be attempted again");
            }
        }
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
