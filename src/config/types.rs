//! The types of the configuration tree, section by section.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use percent_encoding::percent_decode_str;
use secrecy::SecretString;
use serde::Deserialize;

use super::de::{self, ByteSize, HumanDuration};
pub use super::redact::redact_url;
use super::verify::VerifySettings;

/// Prefix of the environment variables that override configuration keys.
pub const ENV_PREFIX: &str = "HOOKGATE";
/// The environment variable that picks `config/{name}.yaml` and turns on production checks.
pub const ENV_NAME_VAR: &str = "HOOKGATE_ENV";

/// Every error found while loading or checking the configuration, each naming its field.
#[derive(Debug)]
pub struct ConfigErrors(pub Vec<String>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "invalid configuration ({} error(s)):", self.0.len())?;
        for e in &self.0 {
            writeln!(f, "  - {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl ConfigErrors {
    /// One error.
    pub fn one(msg: impl Into<String>) -> Self {
        Self(vec![msg.into()])
    }
}

/// The whole configuration of one hookgate process.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The public listener that senders reach (through a reverse proxy).
    #[serde(default)]
    pub server: ServerSettings,
    /// The internal listener for the admin API and `/metrics`.
    #[serde(default)]
    pub admin: AdminSettings,
    /// Where events are stored.
    #[serde(default)]
    pub store: StoreSettings,
    /// Log output.
    #[serde(default)]
    pub log: LogSettings,
    /// Traces (OpenTelemetry over OTLP/HTTP): off unless `telemetry.otlp.endpoint` is set.
    #[serde(default)]
    pub telemetry: super::telemetry::TelemetrySettings,
    /// Configured endpoints, keyed by source id (lower-case; used in URLs, metrics and storage).
    #[serde(default)]
    pub sources: BTreeMap<String, SourceSettings>,
    /// Where stored events are delivered, keyed by destination id (DESIGN.md "Delivery").
    #[serde(default)]
    pub destinations: BTreeMap<String, super::destinations::DestinationSettings>,
    /// Fields whose value is the `:-fallback` of an unset variable (not read from the files).
    #[serde(skip)]
    pub fallbacks: Vec<Fallback>,
}

/// A field that took the fallback of `${VARIABLE:-fallback}` because the variable is unset:
/// named in the start-up warning and in the refusal of development values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fallback {
    /// The field, e.g. `admin.token` or `sources.kratos.verify.secrets[0]`.
    pub field: String,
    /// The variable that would have set it.
    pub variable: String,
}

impl Settings {
    /// The effective body limit of a source, in bytes.
    pub fn body_limit_for(&self, source: &SourceSettings) -> u64 {
        source.body_limit.unwrap_or(self.server.body_limit).0
    }

    /// The configured destinations, checked (`validate` has reported any problem already).
    ///
    /// # Errors
    /// Every problem of every block, each naming its field.
    pub fn resolved_destinations(
        &self,
    ) -> Result<Vec<super::destinations::Destination>, Vec<String>> {
        // `hooks`: the source of every registered hook's events (`crate::store::hooks`).
        let source_ids: Vec<&str> = self
            .sources
            .keys()
            .map(String::as_str)
            .chain([REGISTERED_HOOKS])
            .collect();
        let mut out = Vec::new();
        let mut errors = Vec::new();
        for (id, d) in &self.destinations {
            match d.resolve(id, &source_ids) {
                Ok(d) => out.push(d),
                Err(mut e) => errors.append(&mut e),
            }
        }
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(errors)
        }
    }

    /// Whether `HOOKGATE_ENV=production` checks apply, given the environment's name.
    pub fn is_production(environment: Option<&str>) -> bool {
        environment == Some("production")
    }
}

/// The public listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// Address to bind, `host:port`.
    pub listen: String,
    /// Largest body accepted on any source unless the source sets its own (413 past it).
    pub body_limit: ByteSize,
    /// Longest a request may take, body included (408 past it).
    pub request_timeout: HumanDuration,
    /// How long SIGTERM waits for in-flight requests before giving up on them.
    pub shutdown_timeout: HumanDuration,
    /// Requests handled at once; more are shed with 503 and `Retry-After`.
    #[serde(deserialize_with = "de::lenient_usize")]
    pub max_concurrent_requests: usize,
    /// Connections open at once; past it a new connection gets 503 and is closed. Idle
    /// connections are closed after `request_timeout`.
    #[serde(deserialize_with = "de::lenient_usize")]
    pub max_connections: usize,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            body_limit: ByteSize(1024 * 1024),
            request_timeout: HumanDuration(Duration::from_secs(10)),
            shutdown_timeout: HumanDuration(Duration::from_secs(30)),
            max_concurrent_requests: 1024,
            max_connections: 10_000,
        }
    }
}

/// The admin listener.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminSettings {
    /// Address to bind; keep it internal (`127.0.0.1` or a private network).
    pub listen: String,
    /// Bearer token for `/admin/...` (not for `/metrics`).
    #[serde(deserialize_with = "de::secret_opt")]
    pub token: Option<SecretString>,
}

impl Default for AdminSettings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:9090".into(),
            token: None,
        }
    }
}

impl fmt::Debug for AdminSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminSettings")
            .field("listen", &self.listen)
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

/// The event store: which backend (by the URL's scheme), and the settings every backend shares.
/// Settings only one backend reads are optional here and handed to that backend alone, typed,
/// by [`StoreSettings::backend`], so that a new backend adds its keys without the others
/// carrying them.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSettings {
    /// `sqlite://path/to/file.db` (the embedded default) or
    /// `postgres://user:password@host:port/database` (shared by any number of replicas).
    pub url: String,
    /// Writes waiting for the writer at most; past it requests get 503 with `Retry-After`.
    #[serde(deserialize_with = "de::lenient_usize")]
    pub queue_capacity: usize,
    /// Events committed in one transaction at most (group commit).
    #[serde(deserialize_with = "de::lenient_usize")]
    pub max_batch: usize,
    /// How long a write may wait before it fails with 503 (default 5s): on SQLite for a lock
    /// held by another process, on PostgreSQL any statement (`statement_timeout`).
    pub busy_timeout: Option<HumanDuration>,
    /// PostgreSQL only: connections to the database at most (default 16).
    #[serde(deserialize_with = "de::lenient_usize")]
    pub pool_size: usize,
    /// Events received longer ago than this are deleted, in small batches off the request
    /// path, except those with a delivery pending or failed; `0` keeps everything (default 30d).
    pub retention: HumanDuration,
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            url: "sqlite://data/hookgate.db".into(),
            queue_capacity: 8192,
            max_batch: 512,
            busy_timeout: None,
            pool_size: DEFAULT_POOL_SIZE,
            retention: HumanDuration(DEFAULT_RETENTION),
        }
    }
}

/// `store.retention` when it is not set: 30 days.
const DEFAULT_RETENTION: Duration = Duration::from_secs(30 * 24 * 60 * 60);

impl fmt::Debug for StoreSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreSettings")
            .field("url", &redact_url(&self.url))
            .field("queue_capacity", &self.queue_capacity)
            .field("max_batch", &self.max_batch)
            .field("busy_timeout", &self.busy_timeout)
            .field("pool_size", &self.pool_size)
            .field("retention", &self.retention)
            .finish()
    }
}

/// The backend `store.url` selects, with the settings only it reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// `sqlite://PATH`: the embedded store.
    Sqlite(SqliteSettings),
    /// `postgres://…`: a database shared by any number of replicas.
    Postgres(PostgresSettings),
}

/// What the PostgreSQL backend alone reads.
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresSettings {
    /// `store.url` as written (with its password: never print it, use [`redact_url`]). Its
    /// database holds the tables (libpq's `options=-csearch_path%3Dname` picks a schema).
    pub url: String,
    /// `store.pool_size`.
    pub pool_size: usize,
}

impl fmt::Debug for PostgresSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresSettings")
            .field("url", &redact_url(&self.url))
            .field("pool_size", &self.pool_size)
            .finish()
    }
}

/// `store.pool_size` when it is not set.
pub const DEFAULT_POOL_SIZE: usize = 16;

/// What the SQLite backend alone reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteSettings {
    /// The database file (created with its folder when missing).
    pub path: PathBuf,
    /// `store.busy_timeout`.
    pub busy_timeout: Duration,
}

/// `store.busy_timeout` when it is not set.
const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

impl StoreSettings {
    /// The backend `url` names, with its own settings.
    ///
    /// # Errors
    /// What is wrong with `store.url`, naming the field (the URL's password redacted).
    pub fn backend(&self) -> Result<Backend, String> {
        if let Some(path) = self.url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(
                    "store.url: names no file; use sqlite://PATH (e.g. sqlite://data/hookgate.db)"
                        .into(),
                );
            }
            return Ok(Backend::Sqlite(SqliteSettings {
                path: PathBuf::from(path),
                busy_timeout: self.busy_timeout.map_or(DEFAULT_BUSY_TIMEOUT, |d| d.0),
            }));
        }
        if self.url.starts_with("postgres://") || self.url.starts_with("postgresql://") {
            // `sslrootcert` and libpq's `verify-*` taken out (tokio-postgres knows neither).
            let split = split_tls_params(&self.url)?;
            if let Err(e) = split.url.parse::<tokio_postgres::Config>() {
                return Err(format!(
                    "store.url: `{}` is not a PostgreSQL URL ({e}); use \
                     postgres://user:password@host:port/database (percent-encode special \
                     characters of the password)",
                    redact_url(&self.url)
                ));
            }
            return Ok(Backend::Postgres(PostgresSettings {
                url: self.url.clone(),
                pool_size: self.pool_size,
            }));
        }
        Err(format!(
            "store.url: `{}` is not supported; use sqlite://PATH or \
             postgres://user:password@host:port/database",
            redact_url(&self.url)
        ))
    }
}

/// The values of `sslmode` that work, for messages.
const MODES: &str = "disable, prefer, require, verify-ca or verify-full";

/// `store.url` with hookgate's own TLS parameters taken out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresTlsUrl {
    /// What tokio-postgres parses: without `sslrootcert`, `verify-*` written as `require`.
    pub url: String,
    /// The file `sslrootcert` names (`None` without it, or for libpq's `system`).
    pub root_cert: Option<PathBuf>,
    /// Whether the URL sets `sslmode` (without it: no TLS).
    pub mode_given: bool,
}

/// Takes `sslrootcert` out of a `postgres://` URL's query (tokio-postgres refuses parameters
/// it does not know) and checks `sslmode`; the TLS itself is `store::postgres::tls`'s.
///
/// # Errors
/// An `sslmode` other than those in `MODES`, an empty `sslrootcert`, or a value that is not
/// percent-encoded UTF-8; the message names `store.url` (never the password).
pub fn split_tls_params(url: &str) -> Result<PostgresTlsUrl, String> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok(PostgresTlsUrl {
            url: url.to_string(),
            root_cert: None,
            mode_given: false,
        });
    };
    let mut kept: Vec<String> = Vec::new();
    let mut root_cert = None;
    let mut mode_given = false;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, raw) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "sslrootcert" => {
                let value = decode(key, raw)?;
                root_cert = match value.as_str() {
                    "" => {
                        return Err("store.url: sslrootcert is empty; name a PEM file of the \
                                    CA certificates that signed the server's certificate \
                                    (sslrootcert=/path/to/ca.pem)"
                            .into());
                    }
                    // libpq's name for the system's roots: the built-in ones here.
                    "system" => None,
                    path => Some(PathBuf::from(path)),
                };
            }
            "sslmode" => {
                mode_given = true;
                let value = decode(key, raw)?;
                match value.as_str() {
                    "disable" | "prefer" | "require" => kept.push(pair.to_string()),
                    // rustls verifies the chain and the host name whenever TLS is used.
                    "verify-ca" | "verify-full" => kept.push("sslmode=require".into()),
                    other => {
                        return Err(format!(
                            "store.url: sslmode={other} is not supported; use {MODES} \
                             (every TLS connection verifies the server's certificate and host \
                             name; without sslmode, no TLS)"
                        ));
                    }
                }
            }
            _ => kept.push(pair.to_string()),
        }
    }
    let url = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok(PostgresTlsUrl {
        url,
        root_cert,
        mode_given,
    })
}

/// A query value, percent-decoded.
fn decode(key: &str, raw: &str) -> Result<String, String> {
    percent_decode_str(raw)
        .decode_utf8()
        .map(|v| v.into_owned())
        .map_err(|_| {
            format!("store.url: the value of {key} is not percent-encoded UTF-8; encode it again")
        })
}

/// Log output.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    /// `pretty` for people, `json` for log collectors.
    pub format: LogFormat,
    /// A `tracing` filter (`info`, `hookgate=debug,info`); `RUST_LOG` wins when set.
    pub level: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Pretty,
            level: "info".into(),
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// One configured endpoint.
///
/// `kind` names a sender kind of [`crate::sources`]; the keys of the block other than the four
/// below are that kind's own options (`abp`: `events`, `envelope`), kept as they were written and
/// read by the kind, which refuses keys it does not take.
#[derive(Debug, Clone, Deserialize)]
pub struct SourceSettings {
    /// The sender kind, which fixes the payload type (`kratos`, `identus`, `abp`).
    pub kind: String,
    /// The path senders POST to, e.g. `/kratos/sync-identity`.
    pub path: String,
    /// How requests prove they come from the sender.
    pub verify: VerifySettings,
    /// Overrides `server.body_limit` for this source.
    #[serde(default)]
    pub body_limit: Option<ByteSize>,
    /// Accepts secrets shorter than the minimum (for a sender that cannot send longer ones);
    /// warned about at start.
    #[serde(default)]
    pub allow_short_secret: bool,
    /// Every other key of the block: the kind's own options.
    #[serde(flatten)]
    pub options: serde_json::Map<String, serde_json::Value>,
}

/// The source id of registered hooks' events (`POST /admin/hooks`): a destination may filter on
/// it, and no configured source may take it.
pub const REGISTERED_HOOKS: &str = "hooks";

/// The keys every source block takes, whatever its kind.
pub const SOURCE_KEYS: &[&str] = &["kind", "path", "verify", "body_limit", "allow_short_secret"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_url_hides_only_the_password() {
        assert_eq!(
            redact_url("postgres://u:p@h/db"),
            "postgres://u:[redacted]@h/db"
        );
        assert_eq!(redact_url("sqlite://data/x.db"), "sqlite://data/x.db");
        assert_eq!(
            redact_url("postgres://u@h/db?sslmode=require&password=p&x=1"),
            "postgres://u@h/db?sslmode=require&password=[redacted]&x=1"
        );
    }

    #[test]
    fn a_postgres_url_selects_postgres_with_its_pool_size() {
        let settings = StoreSettings {
            url: "postgres://u:s3cret@db.example:5433/hooks".into(),
            pool_size: 7,
            ..StoreSettings::default()
        };
        let Ok(Backend::Postgres(pg)) = settings.backend() else {
            panic!("not postgres: {:?}", settings.backend());
        };
        assert_eq!(pg.pool_size, 7);
        assert_eq!(pg.url, settings.url);
        // Neither form of Debug shows the password.
        assert!(!format!("{pg:?}").contains("s3cret"));
        assert!(!format!("{settings:?}").contains("s3cret"));
        assert_eq!(StoreSettings::default().pool_size, 16);
        let postgresql = StoreSettings {
            url: "postgresql://u@h/db".into(),
            ..StoreSettings::default()
        };
        assert!(matches!(postgresql.backend(), Ok(Backend::Postgres(_))));
    }

    #[test]
    fn a_bad_postgres_url_is_named_without_its_password() {
        let settings = StoreSettings {
            url: "postgres://u:s3cret@h:notaport/db".into(),
            ..StoreSettings::default()
        };
        let err = settings.backend().unwrap_err();
        assert!(err.starts_with("store.url: "), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
        let other = StoreSettings {
            url: "mysql://u:s3cret@h/db".into(),
            ..StoreSettings::default()
        };
        let err = other.backend().unwrap_err();
        assert!(
            err.contains("postgres://") && !err.contains("s3cret"),
            "{err}"
        );
    }
}
