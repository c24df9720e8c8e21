//! [`HookStore`]: registered hooks (`POST /admin/hooks`), kept in the store so that they
//! survive restarts and every replica sharing the store serves them.
//!
//! A hook is written once and never changed, except to be deleted. A deleted hook keeps its row
//! (its `label` and `payload` still describe the events it stored) but loses its verification
//! block, secrets included, and is never served again; the admin API treats it as unknown.
//! Retention never deletes hooks: it prunes events only.
//!
//! Events received through a hook have source [`HOOKS_SOURCE`]; the hook's id is kept with the
//! event twice, each where it is cheap to use: as the prefix of the dedupe key
//! ([`hook_dedupe_key`]: retries are recognised per hook, two hooks never share a key, and
//! `?hook=` filters on the `(source, dedupe_key)` index), and as [`HOOK_ID_HEADER`] in the
//! stored headers (what delivery and the admin API read).

use std::fmt;

use async_trait::async_trait;
use secrecy::SecretString;

use super::bulk::Imported;
use super::error::StoreError;

/// The source id of every event received through a registered hook.
pub const HOOKS_SOURCE: &str = "hooks";

/// The entry of a hook's events' stored headers that holds the hook's id (also the header
/// deliveries carry).
pub const HOOK_ID_HEADER: &str = "hookgate-hook-id";

/// Length of a hook id: 32 lower-case hex digits (128 bits).
pub const HOOK_ID_LEN: usize = 32;

/// Whether `id` has the shape of a hook id (checked before any lookup).
pub fn is_hook_id(id: &str) -> bool {
    id.len() == HOOK_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The dedupe key of an event of hook `hook_id` whose kind found `key`: unique per hook.
pub fn hook_dedupe_key(hook_id: &str, key: &str) -> String {
    let mut out = String::with_capacity(hook_id.len() + 1 + key.len());
    out.push_str(hook_id);
    out.push(':');
    out.push_str(key);
    out
}

/// The hook an event came through, from its source and dedupe key (`None` for other events).
pub fn hook_of_event<'a>(source: &str, dedupe_key: &'a str) -> Option<&'a str> {
    if source != HOOKS_SOURCE {
        return None;
    }
    let id = dedupe_key.get(..HOOK_ID_LEN)?;
    (is_hook_id(id) && dedupe_key.as_bytes().get(HOOK_ID_LEN) == Some(&b':')).then_some(id)
}

/// The hook an event came through, from its source and stored headers (what delivery reads:
/// a claimed delivery has its event's headers).
pub fn hook_of_headers(source: &str, headers: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Kept {
        #[serde(rename = "hookgate-hook-id")]
        hook: Option<String>,
    }
    if source != HOOKS_SOURCE {
        return None;
    }
    serde_json::from_str::<Kept>(headers)
        .ok()
        .and_then(|k| k.hook)
        .filter(|id| is_hook_id(id))
}

/// A registered hook as stored.
#[derive(Clone)]
pub struct HookRow {
    /// 32 hex digits, 128 random bits.
    pub id: String,
    /// A name for people.
    pub label: Option<String>,
    /// The sender kind its requests are parsed as.
    pub kind: String,
    /// The registrant's JSON, given back with every event (as JSON text).
    pub payload: Option<String>,
    /// How its requests are verified, as JSON text in the stored form the hook registry reads
    /// (secrets, or their digests); `None` for no verification, and for a deleted hook.
    pub verify: Option<SecretString>,
    /// When it stops being served (RFC 3339, UTC), if ever.
    pub expires_at: Option<String>,
    /// When it was registered (RFC 3339, UTC).
    pub created_at: String,
    /// When it was deleted (RFC 3339, UTC); a deleted hook is never served.
    pub deleted_at: Option<String>,
}

impl fmt::Debug for HookRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `verify` holds secrets; `payload` is the registrant's own data.
        f.debug_struct("HookRow")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("verify", &self.verify.as_ref().map(|_| "[redacted]"))
            .field("expires_at", &self.expires_at)
            .field("deleted_at", &self.deleted_at)
            .finish_non_exhaustive()
    }
}

/// Registered hooks, on every backend.
#[async_trait]
pub trait HookStore: Send + Sync + 'static {
    /// Stores a new hook (committed when this returns).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when it could not be written.
    async fn create_hook(&self, hook: HookRow) -> Result<(), StoreError>;

    /// The hook with this id, deleted or not.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the store cannot be read.
    async fn hook(&self, id: &str) -> Result<Option<HookRow>, StoreError>;

    /// A page of hooks by id, after `after`: those not deleted, or (`deleted`) every one
    /// (`copy-store`).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the store cannot be read.
    async fn list_hooks(
        &self,
        after: Option<String>,
        limit: u32,
        deleted: bool,
    ) -> Result<Vec<HookRow>, StoreError>;

    /// Deletes a hook at time `at` (RFC 3339): it is never served again and its verification
    /// block is erased. False when no hook that is not deleted has the id.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when it could not be written.
    async fn delete_hook(&self, id: &str, at: String) -> Result<bool, StoreError>;

    /// Writes hooks copied from another store, in one transaction: each unless its id is there
    /// (a copied deletion still deletes the target's hook).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the transaction failed (nothing of it was written).
    async fn import_hooks(&self, rows: Vec<HookRow>) -> Result<Imported, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_32_lower_case_hex_digits_are_a_hook_id() {
        assert!(is_hook_id("0123456789abcdef0123456789abcdef"));
        for bad in [
            "",
            "0123456789abcdef0123456789abcde",
            "0123456789abcdef0123456789abcdef0",
            "0123456789ABCDEF0123456789abcdef",
            "0123456789abcdef0123456789abcdeg",
            "../../../../../../../../../../..",
            "0123456789abcdef0123456789abcdé",
        ] {
            assert!(!is_hook_id(bad), "{bad}");
        }
    }

    #[test]
    fn the_hook_of_an_event_is_read_back_from_its_dedupe_key() {
        let id = "0123456789abcdef0123456789abcdef";
        let key = hook_dedupe_key(id, "evt-1");
        assert_eq!(hook_of_event(HOOKS_SOURCE, &key), Some(id));
        assert_eq!(hook_of_event("identus", &key), None);
        assert_eq!(hook_of_event(HOOKS_SOURCE, "evt-1"), None);
        assert_eq!(hook_of_event(HOOKS_SOURCE, id), None);
    }

    #[test]
    fn the_hook_of_a_claimed_event_is_read_from_its_stored_headers() {
        let id = "0123456789abcdef0123456789abcdef";
        let headers = format!(r#"{{"content-type":"application/json","{HOOK_ID_HEADER}":"{id}"}}"#);
        assert_eq!(hook_of_headers(HOOKS_SOURCE, &headers).as_deref(), Some(id));
        assert_eq!(hook_of_headers("identus", &headers), None);
        assert_eq!(hook_of_headers(HOOKS_SOURCE, "{}"), None);
        assert_eq!(
            hook_of_headers(HOOKS_SOURCE, r#"{"hookgate-hook-id":"x"}"#),
            None
        );
    }
}
