//! Durable storage of events and the projections kept from them.
//!
//! # Layout
//! - [`Store`]: the one trait every backend implements (SQLite now; PostgreSQL next).
//! - [`sqlite`]: the embedded default, WAL with `synchronous=FULL`, one writer thread that
//!   group-commits whatever requests are waiting as one transaction.
//!
//! The promise kept here: [`Store::append`] returns only after the event (and its projection
//! update) is committed, so the 2xx that follows means stored.

pub mod sqlite;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use uuid::Uuid;

use crate::config::StoreSettings;

/// An event that passed verification and validation, ready to be stored.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// Source id (from the configuration).
    pub source: Arc<str>,
    /// Source kind (`kratos`, `identus`, `abp`).
    pub kind: &'static str,
    /// The sender's event type, when the payload names one.
    pub event_type: Option<String>,
    /// The key that recognises a retry of the same event; unique per source.
    pub dedupe_key: String,
    /// The sender's own id of the event, when it has one.
    pub sender_id: Option<String>,
    /// When hookgate received it (RFC 3339, UTC).
    pub received_at: String,
    /// Selected request headers as a JSON object, never credentials.
    pub headers: String,
    /// The exact body received.
    pub body: Bytes,
    /// The projection row this event updates, if any.
    pub projection: Option<Projection>,
}

/// What an event says about the current state of something.
#[derive(Debug, Clone)]
pub enum Projection {
    /// The latest identity Kratos sent for an identity id.
    KratosIdentity {
        /// `identity.id`.
        identity_id: String,
        /// `identity.state`.
        state: Option<String>,
        /// `identity.schema_id`.
        schema_id: Option<String>,
        /// Where the identity JSON lies in the body (stored once, with the event).
        identity: std::ops::Range<usize>,
    },
    /// The latest state of an Identus record, per wallet, kind and id. An older `ts` never
    /// overwrites a newer one, because the agent does not deliver in order.
    IdentusRecord {
        /// Envelope `walletId`.
        wallet_id: String,
        /// Which kind of record.
        kind: IdentusKind,
        /// The record's id (`connectionId`, `recordId`, `presentationId` or `did`).
        record_id: String,
        /// Its state (`state`, `protocolState` or `status`).
        state: Option<String>,
        /// Envelope `ts`, as sent.
        ts: String,
        /// Envelope `ts` in nanoseconds since the epoch, for ordering.
        ts_ns: i64,
        /// Where the `data` JSON lies in the body (stored once, with the event).
        data: std::ops::Range<usize>,
    },
}

/// The kinds of Identus record kept in `identus_records`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentusKind {
    /// `ConnectionUpdated`, keyed by `connectionId`.
    Connections,
    /// `IssueCredentialRecordUpdated`, keyed by `recordId`.
    Credentials,
    /// `PresentationUpdated`, keyed by `presentationId`.
    Presentations,
    /// `DIDStatusUpdated`, keyed by `did`.
    Dids,
}

impl IdentusKind {
    /// The name used in storage and in admin URLs.
    pub fn as_str(self) -> &'static str {
        match self {
            IdentusKind::Connections => "connections",
            IdentusKind::Credentials => "credentials",
            IdentusKind::Presentations => "presentations",
            IdentusKind::Dids => "dids",
        }
    }

    /// Parses an admin URL segment.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "connections" => IdentusKind::Connections,
            "credentials" => IdentusKind::Credentials,
            "presentations" => IdentusKind::Presentations,
            "dids" => IdentusKind::Dids,
            _ => return None,
        })
    }
}

/// The outcome of an append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// hookgate's id of the stored event (the first copy's, for a retry).
    pub event_id: Uuid,
    /// True when this was a retry of an event already stored.
    pub duplicate: bool,
}

/// Why the store could not do something.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Too many writes are waiting; the sender should retry shortly.
    #[error("the store's write queue is full")]
    Busy,
    /// The store cannot take writes or reads right now (disk, lock, writer gone).
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
}

/// A stored event.
#[derive(Clone)]
pub struct StoredEvent {
    /// hookgate's id.
    pub id: Uuid,
    /// Position in the store; the admin list's cursor.
    pub seq: i64,
    /// Source id.
    pub source: String,
    /// Source kind.
    pub kind: String,
    /// Sender's event type.
    pub event_type: Option<String>,
    /// Dedupe key.
    pub dedupe_key: String,
    /// Sender's id of the event.
    pub sender_id: Option<String>,
    /// When received (RFC 3339).
    pub received_at: String,
    /// Selected headers as a JSON object.
    pub headers: String,
    /// The exact body.
    pub body: Bytes,
}

impl fmt::Debug for StoredEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The body may hold personal data: never in debug output.
        f.debug_struct("StoredEvent")
            .field("id", &self.id)
            .field("source", &self.source)
            .field("event_type", &self.event_type)
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}

/// A page request for the event list.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    /// Only this source.
    pub source: Option<String>,
    /// Only this event type.
    pub event_type: Option<String>,
    /// At most this many (1..=1000).
    pub limit: u32,
    /// Only events after this cursor.
    pub after: Option<i64>,
}

/// One page of events, oldest first.
#[derive(Debug, Clone)]
pub struct EventPage {
    /// The events.
    pub events: Vec<StoredEvent>,
    /// The cursor for the next page, if there is more.
    pub next: Option<i64>,
}

/// The current identity of a Kratos identity id.
#[derive(Debug, Clone)]
pub struct KratosIdentityRow {
    /// `identity.id`.
    pub identity_id: String,
    /// Event that set it.
    pub event_id: Uuid,
    /// Identity state.
    pub state: Option<String>,
    /// Identity schema.
    pub schema_id: Option<String>,
    /// When that event was received.
    pub updated_at: String,
    /// The identity JSON as received.
    pub identity: Bytes,
}

/// The current state of an Identus record.
#[derive(Debug, Clone)]
pub struct IdentusRecordRow {
    /// Wallet.
    pub wallet_id: String,
    /// Kind of record.
    pub kind: IdentusKind,
    /// Record id.
    pub record_id: String,
    /// State.
    pub state: Option<String>,
    /// Envelope `ts` of the event that set it.
    pub ts: String,
    /// Event that set it.
    pub event_id: Uuid,
    /// `data` as received.
    pub data: Bytes,
}

/// The event store. Every backend keeps the same promises: `append` returns after commit, a
/// retried event (same source and dedupe key) is stored once and answered with the first id.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Stores an event and its projection in one transaction, or finds the first copy.
    ///
    /// # Errors
    /// [`StoreError::Busy`] when the write queue is full, [`StoreError::Unavailable`] when the
    /// commit failed; in both cases nothing was stored.
    async fn append(&self, event: NewEvent) -> Result<Appended, StoreError>;

    /// Checks that the store can be read and its writer is running.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] with the reason.
    async fn ping(&self) -> Result<(), StoreError>;

    /// A page of events.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the store cannot be read.
    async fn list_events(&self, query: EventQuery) -> Result<EventPage, StoreError>;

    /// One event by id.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the store cannot be read.
    async fn get_event(&self, id: Uuid) -> Result<Option<StoredEvent>, StoreError>;

    /// The current identity of a Kratos identity id.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the store cannot be read.
    async fn kratos_identity(
        &self,
        identity_id: &str,
    ) -> Result<Option<KratosIdentityRow>, StoreError>;

    /// The current state of an Identus record; with no wallet given, the newest across wallets.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the store cannot be read.
    async fn identus_record(
        &self,
        kind: IdentusKind,
        record_id: &str,
        wallet_id: Option<&str>,
    ) -> Result<Option<IdentusRecordRow>, StoreError>;

    /// Commits every write already queued, then stops the writer. Appends after this fail.
    async fn close(&self);
}

/// Opens the store the URL names, applying migrations.
///
/// # Errors
/// When the URL is not supported or the database cannot be opened or migrated.
pub async fn connect(settings: &StoreSettings) -> anyhow::Result<Arc<dyn Store>> {
    match settings.url.strip_prefix("sqlite://") {
        Some(path) => Ok(Arc::new(
            sqlite::SqliteStore::open(path.as_ref(), settings).await?,
        )),
        None => anyhow::bail!("store.url: only sqlite:// is supported in this version"),
    }
}

/// Dedupe keys of recently committed events, so that a retry arriving soon after its first copy
/// (Kratos retries after 1 s and 2 s, Identus after 5 s) is answered without a trip through the
/// writer. Only committed events are remembered, so a hit always means stored. Two generations
/// bound the memory: when the current one is full it becomes the previous one, and the previous
/// one is dropped.
pub struct RecentKeys {
    capacity: usize,
    current: std::collections::HashMap<Arc<str>, std::collections::HashMap<String, Uuid>>,
    current_len: usize,
    previous: std::collections::HashMap<Arc<str>, std::collections::HashMap<String, Uuid>>,
}

impl RecentKeys {
    /// Remembers up to about `2 * capacity` keys.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            current: Default::default(),
            current_len: 0,
            previous: Default::default(),
        }
    }

    /// The first copy's event id, if this key was committed recently.
    pub fn get(&self, source: &str, dedupe_key: &str) -> Option<Uuid> {
        let find = |g: &std::collections::HashMap<
            Arc<str>,
            std::collections::HashMap<String, Uuid>,
        >| { g.get(source).and_then(|m| m.get(dedupe_key)).copied() };
        find(&self.current).or_else(|| find(&self.previous))
    }

    /// Remembers a committed key.
    pub fn insert(&mut self, source: &Arc<str>, dedupe_key: String, event_id: Uuid) {
        if self.current_len >= self.capacity {
            self.previous = std::mem::take(&mut self.current);
            self.current_len = 0;
        }
        let m = self.current.entry(source.clone()).or_default();
        if m.insert(dedupe_key, event_id).is_none() {
            self.current_len += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_keys_answer_per_source_and_stay_bounded() {
        let a: Arc<str> = Arc::from("a");
        let b: Arc<str> = Arc::from("b");
        let mut r = RecentKeys::new(2);
        let id1 = Uuid::new_v4();
        r.insert(&a, "k1".into(), id1);
        assert_eq!(r.get("a", "k1"), Some(id1));
        assert_eq!(r.get("b", "k1"), None, "keys are unique per source only");
        r.insert(&b, "k1".into(), Uuid::new_v4());
        r.insert(&a, "k2".into(), Uuid::new_v4());
        assert_eq!(
            r.get("a", "k1"),
            Some(id1),
            "still in the previous generation"
        );
        r.insert(&a, "k3".into(), Uuid::new_v4());
        r.insert(&a, "k4".into(), Uuid::new_v4());
        assert_eq!(
            r.get("a", "k1"),
            None,
            "two generations later it is forgotten"
        );
        assert!(r.get("a", "k4").is_some());
    }
}
