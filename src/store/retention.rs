//! Retention: events older than `store.retention` are deleted, in small batches, off the
//! request path; the space they took is given back.
//!
//! [`RetentionStore`] is what a backend does (one batch, one step of giving space back);
//! [`run_pruner`] is when: a periodic pass, batch after batch while there is a backlog, each
//! batch a short transaction of its own so that the writes of arriving events go between them.
//! What a batch promises, whatever the backend:
//! - only events received before the cutoff go, and never one with a delivery still pending or
//!   failed (it waits until delivered, retried or dropped by an operator);
//! - a projection that points at an event being deleted gets its own copy of its JSON (and the
//!   event's id and time) in the same transaction, so projections keep the latest state;
//! - the feed cursor never goes back: new events get positions after every one ever handed out.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use super::error::StoreError;

/// Events deleted in one transaction at most: small enough that the writes queued behind a
/// batch wait only a few milliseconds (see docs/bench.md, "Retention").
pub const PRUNE_BATCH: usize = 1000;

/// What one prune batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pruned {
    /// Events deleted.
    pub deleted: u64,
    /// True when the batch was full: more events may be past the cutoff.
    pub more: bool,
}

/// Deleting old events and giving their space back.
#[async_trait]
pub trait RetentionStore: Send + Sync + 'static {
    /// Deletes up to `limit` of the oldest events received before `cutoff`, except those with
    /// a delivery pending or failed, in one transaction that first gives every projection
    /// pointing at them its own copy of its JSON.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the store cannot do it now (nothing was deleted).
    async fn prune(&self, cutoff: OffsetDateTime, limit: usize) -> Result<Pruned, StoreError>;

    /// Gives one bounded step of free space back to the file system. True when there is more
    /// worth giving back (another step would free more).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the store cannot do it now.
    async fn reclaim(&self) -> Result<bool, StoreError>;
}

/// How often the pruner looks for old events: a tenth of the retention (an event then lives at
/// most 10 % longer than asked), at most ten times a second and at least once a minute.
pub fn prune_interval(retention: Duration) -> Duration {
    (retention / 10).clamp(Duration::from_millis(100), Duration::from_secs(60))
}

/// Prunes `store` until `stop` is cancelled: every [`prune_interval`], a pass that deletes
/// batch after batch of events older than `retention`, then gives the space back. A `retention`
/// of zero keeps everything (the task returns at once). Stops between two batches, so what a
/// batch does is committed whole or not at all.
pub async fn run_pruner<S: RetentionStore + ?Sized>(
    store: &S,
    retention: Duration,
    stop: CancellationToken,
) {
    if retention.is_zero() {
        return;
    }
    let mut tick = tokio::time::interval(prune_interval(retention));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        prune_pass(store, retention, &stop).await;
    }
}

/// One pass: delete what is past the retention, then give the space back. Logs one line when it
/// deleted something.
async fn prune_pass<S: RetentionStore + ?Sized>(
    store: &S,
    retention: Duration,
    stop: &CancellationToken,
) {
    let started = Instant::now();
    let cutoff = OffsetDateTime::now_utc() - retention;
    let mut deleted = 0u64;
    let mut failed = None;
    while !stop.is_cancelled() {
        match store.prune(cutoff, PRUNE_BATCH).await {
            Ok(p) => {
                deleted += p.deleted;
                if !p.more {
                    break;
                }
            }
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    if deleted > 0 {
        while !stop.is_cancelled() {
            match store.reclaim().await {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        tracing::info!(
            deleted,
            seconds = started.elapsed().as_secs_f64(),
            retention = %humantime::format_duration(retention),
            "pruned events older than store.retention"
        );
    }
    if let Some(e) = failed {
        tracing::warn!(error = %e, deleted, "pruning stopped early; the next pass goes on");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interval_is_a_tenth_of_the_retention_within_bounds() {
        let cases = [
            ("1s", Duration::from_millis(100)),
            ("10s", Duration::from_secs(1)),
            ("5m", Duration::from_secs(30)),
            ("30d", Duration::from_secs(60)),
            ("1ms", Duration::from_millis(100)),
        ];
        for (retention, want) in cases {
            let r = humantime::parse_duration(retention).unwrap();
            assert_eq!(prune_interval(r), want, "retention {retention}");
        }
    }
}
