//! Choosing and opening the backend `store.url` names.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use super::backend::Store;
use super::postgres::{PostgresStore, describe, tls};
use super::sqlite;
use crate::config::{Backend, HumanDuration, StoreSettings, redact_url};

/// How long `check-config --connect` waits for the database, unless the URL sets
/// `connect_timeout`.
const CHECK_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens the store `store.url` names, applying migrations.
///
/// # Errors
/// When the URL is not supported or the database cannot be opened or migrated.
pub async fn connect(settings: &StoreSettings) -> anyhow::Result<Arc<dyn Store>> {
    match settings.backend().map_err(anyhow::Error::msg)? {
        Backend::Sqlite(sqlite) => Ok(Arc::new(
            sqlite::SqliteStore::open(&sqlite, settings).await?,
        )),
        Backend::Postgres(pg) => Ok(Arc::new(
            PostgresStore::open(&pg.url, pg.pool_size, settings).await?,
        )),
    }
}

/// What `serve` would refuse about the store `store.url` names, found without opening it for
/// writing (for `hookgate check-config`): a folder that cannot be created, a file that is not a
/// hookgate database or is newer than this build. Nothing is checked over the network here
/// (see [`reach`]).
pub fn check(settings: &StoreSettings) -> Vec<String> {
    match settings.backend() {
        Ok(Backend::Sqlite(sqlite)) => sqlite::check::check(&sqlite.path),
        // `backend()` already checked the URL; what is left is `sslrootcert`'s file. Reaching
        // the server is `--connect`'s.
        Ok(Backend::Postgres(pg)) => match tls::prepare(&pg.url) {
            Ok(_) => Vec::new(),
            Err(e) => vec![e.to_string()],
        },
        // `backend()` already names the problem; validation reports it.
        Err(_) => Vec::new(),
    }
}

/// For `hookgate check-config --connect`: connects to the database `store.url` names and runs
/// nothing else (no migration, no query). SQLite has nothing more to check than [`check`].
pub async fn reach(settings: &StoreSettings) -> Vec<String> {
    let Ok(Backend::Postgres(pg)) = settings.backend() else {
        return Vec::new();
    };
    let (mut config, tls) = match tls::prepare(&pg.url) {
        Ok(prepared) => prepared,
        // The URL's own problems are [`check`]'s (and validation's).
        Err(_) => return Vec::new(),
    };
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CHECK_CONNECT_TIMEOUT);
    }
    match config.connect(tls).await {
        Ok((client, connection)) => {
            drop(client);
            // Ends the session politely: with the client gone, the connection says goodbye.
            let _ = connection.await;
            Vec::new()
        }
        Err(e) => vec![tls::unreachable(&pg.url, &describe(&e))],
    }
}

/// Opens the store a URL names, without a configuration file (the defaults of `store.*`).
/// `must_exist`: a SQLite file that is not there is an error rather than a new empty store.
///
/// # Errors
/// When the URL names no supported store, or it cannot be opened or migrated (the message
/// names the URL, its password hidden).
pub async fn open_url(url: &str, must_exist: bool) -> anyhow::Result<Arc<dyn Store>> {
    let shown = redact_url(url);
    let settings = StoreSettings {
        url: url.to_string(),
        // Long enough for a batch of BATCH large events on a slow disk or server.
        busy_timeout: Some(HumanDuration(Duration::from_secs(60))),
        ..StoreSettings::default()
    };
    match settings
        .backend()
        .map_err(|e| anyhow::anyhow!("{shown}: {e}"))?
    {
        Backend::Sqlite(sqlite) => {
            if must_exist && !sqlite.path.exists() {
                anyhow::bail!(
                    "{shown}: there is no file {}; name an existing store to copy from",
                    sqlite.path.display()
                );
            }
            Ok(Arc::new(
                sqlite::SqliteStore::open(&sqlite, &settings)
                    .await
                    .with_context(|| format!("{shown} cannot be opened"))?,
            ))
        }
        Backend::Postgres(pg) => Ok(Arc::new(
            PostgresStore::open(&pg.url, pg.pool_size, &settings).await?,
        )),
    }
}
