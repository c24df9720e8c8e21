//! What the store handle and its writer thread share.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Mutex, PoisonError};

use tokio::sync::watch;

use crate::store::error::LastFailure;
use crate::store::recent::RecentKeys;

/// State shared between the store handle and its writer thread.
pub(super) struct Shared {
    /// False once the writer thread has stopped (closed, or died).
    pub(super) writer_alive: AtomicBool,
    /// The reason the last commit failed, cleared by the next successful one (or probe).
    pub(super) last_failure: LastFailure,
    /// Recently committed dedupe keys, filled by the writer after each commit: retries are
    /// answered from here without a trip through the writer.
    pub(super) recent: Mutex<RecentKeys>,
    /// Counts commits that stored something new; long polls of the feed wait on it
    /// (`EventStore::commits`).
    pub(super) commits: watch::Sender<u64>,
    /// Counts changes that made deliveries due (`OutboxStore::deliveries_queued`).
    pub(super) queued: watch::Sender<u64>,
    /// Events in the store: counted once at open, then kept by the writer (+ appended,
    /// − pruned), so `hookgate_store_events` never costs a `count(*)`.
    pub(super) events: AtomicI64,
    /// Where each destination's fresh deliveries start (see [`FreshFloors`]).
    pub(super) fresh: FreshFloors,
}

/// For each destination, an id below which it has no fresh delivery (queued with its event,
/// never attempted: `state = 'pending' AND next_attempt_at IS NULL`). Fresh deliveries are in
/// no index: a claim finds them by id from here, and moves the floor up to the first one it
/// sees. A destination not in the map has its floor found by a scan (once per start).
///
/// This holds because a fresh delivery's id is never below one given before (the writer
/// numbers them itself, see `writer::DeliveryIds`), and a delivery stops being fresh only by
/// being attempted or retried, never back.
#[derive(Default)]
pub(super) struct FreshFloors(Mutex<HashMap<String, i64>>);

impl FreshFloors {
    /// The floor of `destination`, if known.
    pub(super) fn get(&self, destination: &str) -> Option<i64> {
        self.lock().get(destination).copied()
    }

    /// Raises the floor of `destination` to what a claim found (never lowers it).
    pub(super) fn raise(&self, destination: &str, floor: i64) {
        let mut floors = self.lock();
        let f = floors.entry(destination.to_string()).or_insert(floor);
        *f = (*f).max(floor);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, i64>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Shared {
    /// Whether the last commit failed.
    pub(super) fn failed(&self) -> bool {
        self.last_failure.failed()
    }

    /// Wakes every waiter of the feed: a commit stored something new.
    pub(super) fn note_commit(&self) {
        // `send_modify` updates the value even while nobody waits (`send` would not).
        self.commits.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Wakes the delivery workers: deliveries were queued or made due.
    pub(super) fn note_queued(&self) {
        self.queued.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Adds `delta` to the events in the store and shows the total as `hookgate_store_events`.
    pub(super) fn count_events(&self, delta: i64) {
        let total = self.events.fetch_add(delta, Ordering::Relaxed) + delta;
        metrics::gauge!("hookgate_store_events").set(total as f64);
    }
}
