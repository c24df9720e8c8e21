//! [`OutboxStore`]: the deliveries of stored events to the configured destinations.
//!
//! A delivery row is written for every destination an event matches, in the event's own
//! transaction (see [`super::NewEvent::deliveries`]), so a stored event is never left
//! undelivered and nothing unstored is ever delivered. The delivery workers (`crate::deliver`)
//! claim due rows, attempt them outside any transaction, and [`OutboxStore::finish`] each
//! attempt: its record in the attempts log, the delivery's new state, and the destination's
//! health (which may pause it), in one transaction.
//!
//! Claims: on SQLite there is one process, and its workers know which deliveries they have in
//! flight (`in_flight`, left out of a claim); nothing is written to claim, and after a crash
//! every pending delivery is simply due again. On PostgreSQL several replicas share the rows
//! through a lease (`FOR UPDATE SKIP LOCKED`, then a lease token and an expiry): a replica that
//! dies mid-attempt leaves leases that expire, and another replica takes the rows over.
//!
//! Times are Unix milliseconds (UTC) throughout.

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::watch;

use super::error::StoreError;
use super::ids::EventId;

/// A delivery's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Waiting for its next attempt (or in one).
    Pending,
    /// A 2xx (or the broker's acknowledgement) was received.
    Delivered,
    /// Every attempt of the retry schedule failed; kept, visible, retryable.
    Failed,
}

impl DeliveryState {
    /// Its name in the store and the admin API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    /// The state named `s`.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Self::Pending,
            "delivered" => Self::Delivered,
            "failed" => Self::Failed,
            _ => return None,
        })
    }
}

/// A delivery claimed for an attempt, with what the attempt sends.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// The delivery.
    pub delivery_id: i64,
    /// The lease that must still be held to finish it (PostgreSQL; 0 on SQLite).
    pub lease: i64,
    /// Attempts made before this one.
    pub attempts_made: u32,
    /// The event.
    pub event_id: EventId,
    /// Its source.
    pub source: String,
    /// Its type.
    pub event_type: Option<String>,
    /// When it was received (RFC 3339).
    pub received_at: String,
    /// Its stored headers (a JSON object of strings).
    pub headers: String,
    /// Its exact bytes.
    pub body: Bytes,
    /// The trace context it was received in ([`super::NewEvent::trace_context`]), if any.
    pub trace_context: Option<String>,
}

/// One attempt, as recorded in the attempts log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    /// 1-based number of the attempt within its delivery.
    pub number: u32,
    /// When it started.
    pub at: i64,
    /// How long it took, in milliseconds.
    pub duration_ms: i64,
    /// The HTTP status, if an answer came.
    pub status: Option<u16>,
    /// The error kind (`timeout`, `connect`, …), if it failed without a usable answer.
    pub error: Option<String>,
    /// The first 4 KiB of the answer, or the error's text.
    pub response: Option<String>,
}

/// What an attempt leaves the delivery in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Delivered.
    Delivered,
    /// Pending again, due at this time.
    RetryAt(i64),
    /// Failed: the schedule is used up.
    Failed,
}

/// An attempt to record, with the delivery's new state and what it says of the destination.
#[derive(Debug, Clone)]
pub struct Finish {
    /// The delivery.
    pub delivery_id: i64,
    /// The lease it was claimed with ([`Claimed::lease`]): a finish under a lease another
    /// replica has taken over since is dropped.
    pub lease: i64,
    /// The destination (its health row is updated).
    pub destination: String,
    /// The attempt.
    pub attempt: AttemptRecord,
    /// The delivery's next state.
    pub next: Next,
    /// The destination asked not to be sent anything more (HTTP 410): pause it now.
    pub gone: bool,
    /// The destination's `pause_after`, in milliseconds: failing only for this long pauses it.
    pub pause_after_ms: i64,
    /// The error text kept as the delivery's `last_error` (None when delivered).
    pub last_error: Option<String>,
}

/// A destination as the store knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestinationStatus {
    /// Its id.
    pub id: String,
    /// Paused: none of its deliveries is attempted until it is resumed.
    pub paused: bool,
    /// Why it was paused.
    pub paused_reason: Option<String>,
    /// Deliveries pending.
    pub pending: i64,
    /// Deliveries failed.
    pub failed: i64,
    /// When the oldest pending delivery was created.
    pub oldest_pending_at: Option<i64>,
    /// Failed attempts since the last success.
    pub consecutive_failures: i64,
    /// The last successful attempt.
    pub last_success_at: Option<i64>,
    /// The last failed attempt.
    pub last_failure_at: Option<i64>,
}

/// A delivery as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRow {
    /// Its id.
    pub id: i64,
    /// The event delivered.
    pub event_id: EventId,
    /// The destination.
    pub destination: String,
    /// Its state.
    pub state: DeliveryState,
    /// Attempts made.
    pub attempts_made: u32,
    /// When the next attempt is due (pending only).
    pub next_attempt_at: Option<i64>,
    /// When it was delivered.
    pub delivered_at: Option<i64>,
    /// The last failed attempt's error.
    pub last_error: Option<String>,
    /// When it was created.
    pub created_at: i64,
}

/// A page request for deliveries, newest first.
#[derive(Debug, Clone, Default)]
pub struct DeliveryQuery {
    /// Only this destination.
    pub destination: Option<String>,
    /// Only this state.
    pub state: Option<DeliveryState>,
    /// Only deliveries of this event.
    pub event_id: Option<EventId>,
    /// At most this many (1..=1000).
    pub limit: u32,
    /// Only deliveries older than this id (the `next` of the previous page).
    pub after: Option<i64>,
}

/// Which stored events a replay queues.
#[derive(Debug, Clone, Default)]
pub struct ReplayFilter {
    /// Only this source.
    pub source: Option<String>,
    /// Only this event type.
    pub event_type: Option<String>,
    /// Received at or after this time (RFC 3339, compared as stored).
    pub from: Option<String>,
    /// Received at or before this time.
    pub to: Option<String>,
    /// The destination's own filters.
    pub sources: Option<Vec<String>>,
    /// The destination's own filters.
    pub event_types: Option<Vec<String>>,
}

/// The outbox and its attempts log.
#[async_trait]
pub trait OutboxStore: Send + Sync + 'static {
    /// Makes sure each configured destination has its row (active when new).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the store cannot be written.
    async fn register_destinations(&self, ids: &[String]) -> Result<(), StoreError>;

    /// Up to `limit` due pending deliveries of `destination` (none while it is paused), oldest
    /// due first, leaving out `in_flight` (SQLite) or rows under another live lease
    /// (PostgreSQL, which leases them for `lease_ms`).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the store cannot be read.
    async fn claim(
        &self,
        destination: &str,
        limit: usize,
        now: i64,
        lease_ms: i64,
        in_flight: &[i64],
    ) -> Result<Vec<Claimed>, StoreError>;

    /// When `destination`'s next pending delivery that [`OutboxStore::claim`] could answer is
    /// due, if it has one (and is not paused): leaving out `in_flight` (SQLite) or rows under a
    /// live lease at `now` (PostgreSQL), as a claim does. What is in flight is already due: were
    /// it counted, a worker with attempts in flight and nothing else to do would claim again at
    /// once, in a loop, until they end.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the store cannot be read.
    async fn next_due(
        &self,
        destination: &str,
        now: i64,
        in_flight: &[i64],
    ) -> Result<Option<i64>, StoreError>;

    /// Records attempts, the deliveries' new states and the destinations' health, in one
    /// transaction. Answers the destinations this paused.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the store cannot be written.
    async fn finish(&self, done: Vec<Finish>, now: i64) -> Result<Vec<String>, StoreError>;

    /// Gives claimed deliveries back before their attempt was made (shutdown).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the store cannot be written.
    async fn release(&self, claims: Vec<(i64, i64)>) -> Result<(), StoreError>;

    /// Every destination the store knows, with its counts.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the store cannot be read.
    async fn destinations(&self) -> Result<Vec<DestinationStatus>, StoreError>;

    /// Pauses (with `reason`) or resumes a destination; resuming makes its pending deliveries
    /// due now and forgets its failures. False when the store has no such destination.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the store cannot be written.
    async fn set_paused(
        &self,
        destination: &str,
        paused: bool,
        reason: Option<String>,
        now: i64,
    ) -> Result<bool, StoreError>;

    /// A page of deliveries, newest first.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the store cannot be read.
    async fn list_deliveries(&self, query: DeliveryQuery) -> Result<Vec<DeliveryRow>, StoreError>;

    /// One delivery with its attempts.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the store cannot be read.
    async fn get_delivery(
        &self,
        id: i64,
    ) -> Result<Option<(DeliveryRow, Vec<AttemptRecord>)>, StoreError>;

    /// A new delivery of the same event to the same destination, due now. None when there is
    /// no such delivery.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the store cannot be written.
    async fn retry_delivery(&self, id: i64, now: i64) -> Result<Option<i64>, StoreError>;

    /// Queues a new delivery to `destination`, due now, of every stored event that matches
    /// `filter`. Answers how many.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the store cannot be written.
    async fn replay(
        &self,
        destination: &str,
        filter: ReplayFilter,
        now: i64,
    ) -> Result<u64, StoreError>;

    /// Changes after deliveries were queued or made due (new events, retries, replays,
    /// resumes), in this process or, for a shared backend, any: the workers wait on it.
    fn deliveries_queued(&self) -> watch::Receiver<u64>;
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    let now = time::OffsetDateTime::now_utc();
    i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// What a batch of finished attempts says of one destination's health, applied in one
/// statement (instead of one per attempt).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// The destination.
    pub destination: String,
    /// A success in the batch: the failures before it no longer count.
    pub succeeded: bool,
    /// The latest success.
    pub last_success_at: Option<i64>,
    /// Failures after the batch's last success (all of them when there was none).
    pub trailing_failures: i64,
    /// When the first of those started.
    pub first_failure_at: Option<i64>,
    /// The latest failure.
    pub last_failure_at: Option<i64>,
    /// A 410 among those failures: pause now.
    pub gone: bool,
    /// The destination's `pause_after`, in milliseconds.
    pub pause_after_ms: i64,
}

impl Health {
    /// The health of each destination in `done`, in order of first appearance.
    pub fn of(done: &[Finish]) -> Vec<Health> {
        let mut out: Vec<Health> = Vec::new();
        for f in done {
            let i = match out.iter().position(|h| h.destination == f.destination) {
                Some(i) => i,
                None => {
                    out.push(Health {
                        destination: f.destination.clone(),
                        succeeded: false,
                        last_success_at: None,
                        trailing_failures: 0,
                        first_failure_at: None,
                        last_failure_at: None,
                        gone: false,
                        pause_after_ms: f.pause_after_ms,
                    });
                    out.len() - 1
                }
            };
            let Some(h) = out.get_mut(i) else { continue };
            let at = f.attempt.at;
            if f.next == Next::Delivered {
                h.succeeded = true;
                h.last_success_at = Some(h.last_success_at.map_or(at, |t| t.max(at)));
                h.trailing_failures = 0;
                h.first_failure_at = None;
                h.gone = false;
            } else {
                h.trailing_failures += 1;
                h.first_failure_at = Some(h.first_failure_at.map_or(at, |t| t.min(at)));
                h.last_failure_at = Some(h.last_failure_at.map_or(at, |t| t.max(at)));
                h.gone |= f.gone;
            }
        }
        out
    }

    /// Why the destination is paused, if this pauses it.
    pub fn pause_reason(&self) -> String {
        if self.gone {
            "the destination answered 410 Gone".to_string()
        } else {
            format!(
                "every attempt failed for pause_after ({})",
                humantime::format_duration(std::time::Duration::from_millis(
                    u64::try_from(self.pause_after_ms).unwrap_or(0)
                ))
            )
        }
    }
}
