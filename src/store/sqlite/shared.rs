//! What the store handle and its writer thread share.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

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
