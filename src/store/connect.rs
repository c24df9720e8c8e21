//! Choosing and opening the backend `store.url` names.

use std::sync::Arc;

use super::backend::Store;
use super::sqlite;
use crate::config::{Backend, StoreSettings};

/// Opens the store `store.url` names, applying migrations.
///
/// # Errors
/// When the URL is not supported or the database cannot be opened or migrated.
pub async fn connect(settings: &StoreSettings) -> anyhow::Result<Arc<dyn Store>> {
    // `postgres://` is refused by `backend()` until `store::postgres` keeps every promise.
    match settings.backend().map_err(anyhow::Error::msg)? {
        Backend::Sqlite(sqlite) => Ok(Arc::new(
            sqlite::SqliteStore::open(&sqlite, settings).await?,
        )),
    }
}

/// What `serve` would refuse about the store `store.url` names, found without opening it for
/// writing (for `hookgate check-config`): a folder that cannot be created, a file that is not a
/// hookgate database or is newer than this build.
pub fn check(settings: &StoreSettings) -> Vec<String> {
    match settings.backend() {
        Ok(Backend::Sqlite(sqlite)) => sqlite::check::check(&sqlite.path),
        // `backend()` already names the problem; validation reports it.
        Err(_) => Vec::new(),
    }
}
