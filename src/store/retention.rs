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
/// batch wait only a few milliseconds (a backend may also stop a batch after a time budget;
/// docs/bench.md, "Retention").
pub const PRUNE_BATCH: usize = 500;

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

/// Waits as long as the step begun at `since` took (waiting for its turn included), so that
/// retention takes at most about half of the writer's time and the writes that arrive in the
/// pause are committed without waiting behind it. False when `stop` was cancelled.
async fn yield_to_writes(since: Instant, stop: &CancellationToken) -> bool {
    tokio::select! {
        () = stop.cancelled() => false,
        () = tokio::time::sleep(since.elapsed()) => true,
    }
}

/// When events must have been received before to be pruned: `retention` before `now`. `None`
/// when that is before any date there can be (a retention of thousands of years): then no event
/// is that old, and nothing is pruned.
fn cutoff(now: OffsetDateTime, retention: Duration) -> Option<OffsetDateTime> {
    now.checked_sub(time::Duration::try_from(retention).ok()?)
}

/// One pass: delete what is past the retention, then give the space back. Logs one line when it
/// deleted something.
async fn prune_pass<S: RetentionStore + ?Sized>(
    store: &S,
    retention: Duration,
    stop: &CancellationToken,
) {
    let started = Instant::now();
    let Some(cutoff) = cutoff(OffsetDateTime::now_utc(), retention) else {
        return;
    };
    let mut deleted = 0u64;
    let mut failed = None;
    loop {
        let batch = Instant::now();
        match store.prune(cutoff, PRUNE_BATCH).await {
            Ok(p) => {
                deleted += p.deleted;
                if !p.more || !yield_to_writes(batch, stop).await {
                    break;
                }
            }
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    if deleted > 0 && !stop.is_cancelled() {
        loop {
            let step = Instant::now();
            match store.reclaim().await {
                Ok(true) => {
                    if !yield_to_writes(step, stop).await {
                        break;
                    }
                }
                Ok(false) => break,
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
    }
    if deleted > 0 {
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

/// The end of the old events: the largest `seq` received before the cutoff, found by a binary
/// search over `seq`, so that no index on `received_at` is needed (every commit would write a
/// page of it). Events are stored in about the order they are received (`received_at` is taken
/// before the commit that gives `seq`; replicas commit out of order by milliseconds). Where
/// that order is broken (a clock set back, old events imported by `copy-store` after newer
/// ones), the prune itself still checks `received_at < cutoff` for each event, so a younger
/// event is never taken, and an older one stored after a younger one may wait until the
/// younger one is old too.
///
/// A backend drives it: it finds the oldest event (stopping if that one is young) and the
/// newest `seq`, then answers each [`OldEnd::next_probe`] with the first event at or after that
/// `seq` and whether it is old.
pub struct OldEnd {
    /// An old event's `seq`.
    lo: i64,
    /// Every event after it is young (or there is none).
    hi: i64,
}

impl OldEnd {
    /// A search from the oldest event's `seq` (old) and the newest `seq`.
    pub fn new(oldest: i64, newest: i64) -> Self {
        Self {
            lo: oldest,
            hi: newest.max(oldest),
        }
    }

    /// The `seq` to look at next, or `None` when [`OldEnd::end`] is found.
    pub fn next_probe(&self) -> Option<i64> {
        (self.lo < self.hi).then(|| self.lo + (self.hi - self.lo) / 2 + 1)
    }

    /// What the probe at `probed` found: the first event at or after it, and whether it is old.
    pub fn answer(&mut self, probed: i64, found: Option<(i64, bool)>) {
        match found {
            Some((seq, true)) => self.lo = seq,
            _ => self.hi = probed - 1,
        }
    }

    /// The end found.
    pub fn end(&self) -> i64 {
        self.lo
    }
}

/// The cutoff as text `received_at` can be compared with: `YYYY-MM-DDTHH:MM:SS` in UTC, rounded
/// down to the second, without fraction or `Z`.
///
/// `received_at` is RFC 3339 in UTC (`2024-05-01T10:20:30.123456Z`, the fraction only when not
/// zero), so text order is time order to the second; within one second `.` sorts before `Z`,
/// which would make `…:30.5Z` look older than `…:30Z`. Against this cutoff, every time in its
/// second sorts after it (a prefix sorts first), so `received_at < cutoff` holds exactly for
/// events of an earlier second: never an event younger than the retention, at most one second
/// late. Both backends compare with it (retention, and the feed's time range).
pub fn cutoff_text(cutoff: OffsetDateTime) -> String {
    cutoff
        .to_offset(time::UtcOffset::UTC)
        .format(time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]"
        ))
        // Only a year past 9999 fails to format: nothing can be older than that, so prune
        // nothing rather than everything.
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// A store with `backlog` old events; notes every call, and cancels `stop` at the
    /// `cancel_at`-th prune call.
    struct Fake {
        backlog: Mutex<u64>,
        calls: Mutex<Vec<&'static str>>,
        reclaim_steps: u32,
        stop: CancellationToken,
        cancel_at: Option<usize>,
    }

    impl Fake {
        fn new(backlog: u64) -> Self {
            Self {
                backlog: Mutex::new(backlog),
                calls: Mutex::new(Vec::new()),
                reclaim_steps: 3,
                stop: CancellationToken::new(),
                cancel_at: None,
            }
        }

        fn calls(&self) -> Vec<&'static str> {
            self.calls.lock().unwrap().clone()
        }
    }

    #[async_trait]
    impl RetentionStore for Fake {
        async fn prune(&self, _: OffsetDateTime, limit: usize) -> Result<Pruned, StoreError> {
            let mut calls = self.calls.lock().unwrap();
            calls.push("prune");
            if self.cancel_at == Some(calls.len()) {
                self.stop.cancel();
            }
            let mut backlog = self.backlog.lock().unwrap();
            let deleted = (*backlog).min(limit as u64);
            *backlog -= deleted;
            Ok(Pruned {
                deleted,
                more: deleted == limit as u64,
            })
        }

        async fn reclaim(&self) -> Result<bool, StoreError> {
            let mut calls = self.calls.lock().unwrap();
            calls.push("reclaim");
            let steps = calls.iter().filter(|c| **c == "reclaim").count();
            Ok(steps < self.reclaim_steps as usize)
        }
    }

    const DAY: Duration = Duration::from_secs(24 * 3600);

    #[tokio::test]
    async fn a_pass_prunes_batch_after_batch_while_there_is_a_backlog_then_gives_space_back() {
        let store = Fake::new(PRUNE_BATCH as u64 * 2 + 5);
        prune_pass(&store, DAY, &store.stop).await;
        assert_eq!(
            store.calls(),
            ["prune", "prune", "prune", "reclaim", "reclaim", "reclaim"]
        );
        assert_eq!(*store.backlog.lock().unwrap(), 0);
    }

    #[tokio::test]
    async fn a_retention_longer_than_the_calendar_prunes_nothing_and_does_not_panic() {
        let store = Fake::new(100);
        let retention = humantime::parse_duration("20000years").unwrap();
        prune_pass(&store, retention, &store.stop).await;
        assert!(store.calls().is_empty());
        assert_eq!(
            cutoff(OffsetDateTime::UNIX_EPOCH + DAY, DAY),
            Some(OffsetDateTime::UNIX_EPOCH)
        );
        assert_eq!(cutoff(OffsetDateTime::now_utc(), Duration::MAX), None);
    }

    #[tokio::test]
    async fn a_pass_that_deleted_nothing_does_not_vacuum() {
        let store = Fake::new(0);
        prune_pass(&store, DAY, &store.stop).await;
        assert_eq!(store.calls(), ["prune"]);
    }

    #[tokio::test]
    async fn the_pruner_stops_between_two_batches_when_asked() {
        let mut store = Fake::new(PRUNE_BATCH as u64 * 10);
        store.cancel_at = Some(2);
        let stop = store.stop.clone();
        tokio::time::timeout(Duration::from_secs(10), run_pruner(&store, DAY, stop))
            .await
            .expect("the pruner stops");
        assert_eq!(store.calls(), ["prune", "prune"]);
        assert_eq!(
            *store.backlog.lock().unwrap(),
            PRUNE_BATCH as u64 * 8,
            "the batch under way finished whole"
        );
    }

    #[tokio::test]
    async fn a_retention_of_zero_prunes_nothing() {
        let store = Fake::new(100);
        tokio::time::timeout(
            Duration::from_secs(10),
            run_pruner(&store, Duration::ZERO, CancellationToken::new()),
        )
        .await
        .expect("the pruner returns at once");
        assert!(store.calls().is_empty());
    }

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
