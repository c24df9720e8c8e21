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
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

use super::bulk::Imported;
use super::error::StoreError;
use crate::config::{Scheme, VerifySettings};

/// `SELECT` of a [`HookRow`]'s columns, in its fields' order, followed by the rest of a query
/// (both backends read rows so): `hook_select!("FROM hooks WHERE id = ?1")`, a `&'static str`.
macro_rules! hook_select {
    ($rest:literal) => {
        concat!(
            "SELECT id, label, kind, payload, verify, expires_at, created_at, deleted_at ",
            $rest
        )
    };
}
pub(crate) use hook_select;

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

/// The key of a stored `verify` block that holds the SHA-256 digests (hex) of its secrets, in
/// place of `secrets`, for the schemes that only compare a presented secret.
pub const SECRET_DIGESTS_KEY: &str = "secret_sha256";

/// Whether a scheme's secrets are kept as digests: those compared with what a request presents
/// (`api_key`, `basic`, `bearer`). Schemes that sign need the secret itself (an HMAC key).
pub fn keeps_digests(scheme: Scheme) -> bool {
    matches!(scheme, Scheme::ApiKey | Scheme::Basic | Scheme::Bearer)
}

/// The stored form of a hook's `verify` block (`block` read and checked as a source's, with
/// `secrets` a list): the block itself, or, for a scheme that [`keeps_digests`], the block with
/// `secrets` replaced by their digests, so that the store holds no usable credential.
pub fn stored_verify_block(mut block: Map<String, Value>, scheme: Scheme) -> SecretString {
    if keeps_digests(scheme) {
        let digests: Vec<Value> = match block.remove("secrets") {
            Some(Value::Array(secrets)) => secrets
                .iter()
                .filter_map(Value::as_str)
                .map(|s| Value::String(hex::encode(Sha256::digest(s.as_bytes()))))
                .collect(),
            _ => Vec::new(),
        };
        block.insert(SECRET_DIGESTS_KEY.into(), Value::Array(digests));
    }
    SecretString::from(Value::Object(block).to_string())
}

/// SHA-256 digests of a block's secrets.
pub type Digests = Vec<[u8; 32]>;

/// A stored `verify` block read back: the block, and the digests of its secrets when it keeps
/// those instead ([`stored_verify_block`]).
///
/// # Errors
/// The path of the field that does not read (never a value: the block holds secrets).
pub fn read_stored_verify(text: &str) -> Result<(VerifySettings, Option<Digests>), String> {
    let mut block: Map<String, Value> =
        serde_json::from_str(text).map_err(|_| "verify".to_string())?;
    let digests = match block.remove(SECRET_DIGESTS_KEY) {
        None => None,
        Some(Value::Array(list)) => Some(
            list.iter()
                .map(|d| {
                    let mut out = [0u8; 32];
                    hex::decode_to_slice(d.as_str().unwrap_or_default(), &mut out)
                        .map(|()| out)
                        .map_err(|_| format!("verify.{SECRET_DIGESTS_KEY}"))
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Some(_) => return Err(format!("verify.{SECRET_DIGESTS_KEY}")),
    };
    let settings = serde_path_to_error::deserialize::<_, VerifySettings>(Value::Object(block))
        .map_err(|e| format!("verify.{}", e.path()))?;
    Ok((settings, digests))
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
    fn compared_secrets_are_stored_as_digests_and_signing_keys_as_they_are() {
        use secrecy::ExposeSecret as _;
        let block = |scheme: &str| {
            serde_json::json!({"scheme": scheme, "secrets": ["a-secret-of-enough-bytes"]})
                .as_object()
                .unwrap()
                .clone()
        };
        let stored = stored_verify_block(block("bearer"), Scheme::Bearer);
        let text = stored.expose_secret();
        assert!(!text.contains("a-secret-of-enough-bytes"), "{text}");
        let (settings, digests) = read_stored_verify(text).unwrap();
        assert!(settings.secrets.is_empty());
        assert_eq!(
            digests,
            Some(vec![<[u8; 32]>::from(Sha256::digest(
                b"a-secret-of-enough-bytes"
            ))])
        );
        let stored = stored_verify_block(block("abp_signature"), Scheme::AbpSignature);
        let (settings, digests) = read_stored_verify(stored.expose_secret()).unwrap();
        assert_eq!(digests, None);
        assert_eq!(
            settings.secrets[0].expose_secret(),
            "a-secret-of-enough-bytes"
        );
        assert_eq!(
            read_stored_verify(r#"{"scheme":"bearer","secret_sha256":["zz"]}"#).unwrap_err(),
            "verify.secret_sha256"
        );
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
