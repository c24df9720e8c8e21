//! [`EventId`]: hookgate's id of an event, made where the event is received; [`Cursor`]: a
//! position in the feed, made by the backend. (Why they differ: [`super::events`].)

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use uuid::Uuid;

use super::error::StoreError;

/// hookgate's id of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventId(pub Uuid);

impl EventId {
    /// A fresh id: UUID v7 (RFC 9562), time-ordered; ids made by one process sort in the order
    /// they were made.
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }
}

impl Default for EventId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// A position in the feed, in commit order. Only the backend that made it can read it; clients
/// get it as opaque text and give it back as `after`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor(String);

impl Cursor {
    /// A cursor from its text: a backend's own, or what a client gave as `after` (the backend
    /// says whether it is one of its cursors: [`super::StoreError::InvalidCursor`] when not).
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// The text form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The cursor of a position in a projection list, `(key, scope)`: the pair as JSON, in
    /// URL-safe base64 (it goes into a query string as it is). The same on every backend.
    pub fn of_position(key: &str, scope: &str) -> Self {
        let json = serde_json::to_vec(&(key, scope)).unwrap_or_default();
        Self(URL_SAFE_NO_PAD.encode(json))
    }

    /// The `(key, scope)` of a cursor made by [`Cursor::of_position`].
    ///
    /// # Errors
    /// [`StoreError::InvalidCursor`] for any other text.
    pub fn position(&self) -> Result<(String, String), StoreError> {
        URL_SAFE_NO_PAD
            .decode(self.as_str())
            .ok()
            .and_then(|json| serde_json::from_slice(&json).ok())
            .ok_or(StoreError::InvalidCursor)
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_ids_are_v7_distinct_and_sort_by_time() {
        let ids: Vec<EventId> = (0..1000).map(|_| EventId::new()).collect();
        for id in &ids {
            assert_eq!(id.0.get_version_num(), 7);
            assert_eq!(id.0.get_variant(), uuid::Variant::RFC4122);
        }
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), ids.len(), "no id repeats");
        assert_eq!(sorted, ids, "ids made one after another sort in that order");
    }
}
