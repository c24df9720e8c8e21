//! [`Hooks`]: the registered hooks served under `/hooks/{id}`, found in the store and kept in a
//! short-lived cache of built [`Source`]s.
//!
//! A hook is written once and only ever deleted (`crate::store::hooks`), so a cached source
//! never goes stale in what it does, only in whether it still exists. Every replica sharing a
//! PostgreSQL store sees a new or deleted hook within a second without any message between
//! them: a hit is looked up again after [`HIT_TTL`] (the built source is kept when the hook is
//! still there), a miss after [`MISS_TTL`]. On the replica that deleted a hook it is gone at
//! once ([`Hooks::forget`]). Expiry (`expires_at`) is checked at every request.
//!
//! Every hook's source has the id `hooks`: its metrics and logs share that one label (no series
//! per hook), and `sources: [hooks]` in a destination takes every hook's events.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use secrecy::ExposeSecret as _;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::source::Source;
use http::HeaderName;

use crate::config::{Destination, SchemeSettings, VerifySettings};
use crate::http::stack::LOGGED_HOOK_ID;
use crate::sources::{Options, build_kind};
use crate::store::hooks::{HOOKS_SOURCE, HookRow, is_hook_id, read_stored_verify};
use crate::store::{Store, StoreError};
use crate::verify::api_key::{self, ApiKey};
use crate::verify::basic::Basic;
use crate::verify::bearer::Bearer;
use crate::verify::{SecretDigests, Verifier};

/// The path prefix of registered hooks.
pub const HOOKS_PREFIX: &str = "/hooks/";

/// How long a found hook is served from the cache before the store is asked whether it still
/// exists (a deletion on another replica takes at most this long).
pub const HIT_TTL: Duration = Duration::from_millis(500);

/// How long "no such hook" is remembered (a hook made on another replica is served at most this
/// long after it was made, if its id was asked for just before).
pub const MISS_TTL: Duration = Duration::from_millis(250);

/// Entries past which the cache drops everything it holds before adding one (requests to random
/// ids must not grow it without bound).
const MAX_ENTRIES: usize = 100_000;

/// A cached answer: the hook's source and when it expires, or none.
struct Entry {
    found: Option<(Arc<Source>, Option<OffsetDateTime>)>,
    fetched: Instant,
}

/// The registered hooks, as the public listener serves them. Cheap to clone.
#[derive(Clone)]
pub struct Hooks {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    destinations: Vec<Destination>,
    body_limit: u64,
    cache: Mutex<HashMap<Box<str>, Entry>>,
}

impl Hooks {
    /// Hooks served from `store`, delivered to the `destinations` that take source `hooks`,
    /// with `body_limit` bytes at most per request (`server.body_limit`).
    pub fn new(store: Arc<dyn Store>, destinations: &[Destination], body_limit: u64) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                destinations: destinations
                    .iter()
                    .filter(|d| d.takes_source(HOOKS_SOURCE))
                    .cloned()
                    .collect(),
                body_limit,
                cache: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The source of the hook at `path` (`/hooks/{id}`), if a hook that is neither deleted nor
    /// expired has that id. The id's shape is checked before anything is looked up.
    ///
    /// # Errors
    /// When the store cannot be read.
    pub async fn find(&self, path: &str) -> Result<Option<Arc<Source>>, StoreError> {
        let Some(id) = path.strip_prefix(HOOKS_PREFIX).filter(|id| is_hook_id(id)) else {
            return Ok(None);
        };
        let now = Instant::now();
        let cached = {
            let cache = self.cache();
            cache.get(id).and_then(|e| {
                let ttl = if e.found.is_some() { HIT_TTL } else { MISS_TTL };
                (now.duration_since(e.fetched) < ttl).then(|| e.found.clone())
            })
        };
        let found = match cached {
            Some(found) => found,
            None => {
                let row = self.inner.store.hook(id).await?;
                let found = match row.filter(|r| r.deleted_at.is_none()) {
                    Some(row) => self.reuse(id).or_else(|| self.build(&row)),
                    None => None,
                };
                let mut cache = self.cache();
                if cache.len() >= MAX_ENTRIES {
                    cache.clear();
                }
                cache.insert(
                    Box::from(id),
                    Entry {
                        found: found.clone(),
                        fetched: now,
                    },
                );
                found
            }
        };
        Ok(found.and_then(|(src, expires)| {
            expires
                .is_none_or(|at| OffsetDateTime::now_utc() < at)
                .then_some(src)
        }))
    }

    /// Drops what this process knows of hook `id` (it was just deleted here).
    pub fn forget(&self, id: &str) {
        self.cache().remove(id);
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<Box<str>, Entry>> {
        self.inner
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The source already built for hook `id` (hooks never change, so it still fits).
    fn reuse(&self, id: &str) -> Option<(Arc<Source>, Option<OffsetDateTime>)> {
        self.cache().get(id).and_then(|e| e.found.clone())
    }

    /// Builds a hook's source from its row; `None` (logged) when this build cannot serve it
    /// (a kind or scheme it does not know: a row written by a later version).
    fn build(&self, row: &HookRow) -> Option<(Arc<Source>, Option<OffsetDateTime>)> {
        let kind = match build_kind(&row.kind, &Options::new()) {
            Ok(kind) => kind,
            Err(errors) => {
                tracing::error!(hook = %row.id.get(..LOGGED_HOOK_ID).unwrap_or_default(), kind = %row.kind, problems = ?errors, "a registered hook cannot be served: its kind does not build");
                return None;
            }
        };
        let verifier = match &row.verify {
            None => Verifier::None,
            Some(text) => match read_stored_verify(text.expose_secret()) {
                Ok((v, None)) => Verifier::from_settings(&v),
                Ok((v, Some(digests))) => with_digests(&v, digests),
                Err(field) => {
                    // Only where the problem is: the block holds secrets.
                    tracing::error!(hook = %row.id.get(..LOGGED_HOOK_ID).unwrap_or_default(), field = %field, "a registered hook cannot be served: its stored verify block does not read");
                    return None;
                }
            },
        };
        let expires = match row.expires_at.as_deref() {
            None => None,
            Some(t) => match OffsetDateTime::parse(t, &Rfc3339) {
                Ok(at) => Some(at),
                Err(_) => {
                    tracing::error!(hook = %row.id.get(..LOGGED_HOOK_ID).unwrap_or_default(), "a registered hook cannot be served: its expires_at does not read");
                    return None;
                }
            },
        };
        let path = format!("{HOOKS_PREFIX}{}", row.id);
        let source = Source::build(
            HOOKS_SOURCE,
            path,
            kind,
            verifier,
            self.inner.body_limit,
            self.inner.store.clone(),
        )
        .with_destinations(&self.inner.destinations)
        .for_hook(&row.id);
        Some((Arc::new(source), expires))
    }
}

/// The verifier of a block whose secrets are kept as digests (`crate::store::hooks`): the
/// schemes that compare a presented secret.
fn with_digests(v: &VerifySettings, digests: Vec<[u8; 32]>) -> Verifier {
    let secrets = SecretDigests::from_digests(digests);
    match &v.scheme {
        SchemeSettings::ApiKeyHeader(header) => Verifier::ApiKey(ApiKey::header(
            header
                .as_deref()
                .and_then(|h| HeaderName::from_bytes(h.as_bytes()).ok())
                .unwrap_or(HeaderName::from_static(api_key::DEFAULT_HEADER)),
            secrets,
        )),
        SchemeSettings::ApiKeyCookie(cookie) => {
            Verifier::ApiKey(ApiKey::cookie(cookie.clone().unwrap_or_default(), secrets))
        }
        SchemeSettings::Basic => Verifier::Basic(Basic::new(secrets)),
        SchemeSettings::Bearer => Verifier::Bearer(Bearer::new(secrets)),
        // Never stored with digests (`keeps_digests`): built from the block as it is.
        _ => Verifier::from_settings(v),
    }
}
