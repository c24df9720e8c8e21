//! Configuration: the typed `Settings` tree, how it is layered and how it is checked.
//!
//! Layers, later ones winning: the built-in defaults (serde `default`s below) →
//! `config/default.yaml` → `config/{HOOKGATE_ENV}.yaml` (or, instead of those two, the files given
//! with `--config`) → environment variables `HOOKGATE__SECTION__KEY`. After merging, `${VAR}` (and
//! `${VAR:-fallback}`) in any string is replaced by that environment variable; a missing one is an
//! error naming it. Unknown keys are rejected, and every error names the field it is about
//! (`sources.abp.verify.secrets: at least one secret is required`).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use http::HeaderName;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::{self, Deserializer};

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
    fn one(msg: impl Into<String>) -> Self {
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
    /// Configured endpoints, keyed by source id (lower-case; used in URLs, metrics and storage).
    #[serde(default)]
    pub sources: BTreeMap<String, SourceSettings>,
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
    #[serde(deserialize_with = "lenient_usize")]
    pub max_concurrent_requests: usize,
    /// Connections open at once; past it a new connection gets 503 and is closed. Idle
    /// connections are closed after `request_timeout`.
    #[serde(deserialize_with = "lenient_usize")]
    pub max_connections: usize,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            listen: "0.0.0.0:8080".into(),
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
    #[serde(deserialize_with = "secret_opt")]
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

/// The event store.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSettings {
    /// `sqlite://path/to/file.db` (the embedded default).
    pub url: String,
    /// Writes waiting for the writer at most; past it requests get 503 with `Retry-After`.
    #[serde(deserialize_with = "lenient_usize")]
    pub queue_capacity: usize,
    /// Events committed in one transaction at most (group commit).
    #[serde(deserialize_with = "lenient_usize")]
    pub max_batch: usize,
    /// How long the writer waits for a lock held by another process before failing a commit.
    pub busy_timeout: HumanDuration,
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            url: "sqlite://data/hookgate.db".into(),
            queue_capacity: 8192,
            max_batch: 512,
            busy_timeout: HumanDuration(Duration::from_secs(5)),
        }
    }
}

impl fmt::Debug for StoreSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreSettings")
            .field("url", &redact_url(&self.url))
            .field("queue_capacity", &self.queue_capacity)
            .field("max_batch", &self.max_batch)
            .field("busy_timeout", &self.busy_timeout)
            .finish()
    }
}

/// Hides the password part of `scheme://user:password@host/...`.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s + 3 => {
            let userinfo = &url[s + 3..at];
            match userinfo.find(':') {
                Some(c) => format!(
                    "{}{}:[redacted]{}",
                    &url[..s + 3],
                    &userinfo[..c],
                    &url[at..]
                ),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
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

/// What a source's payloads look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// Ory Kratos `web_hook` with a body of `{"identity": ctx.identity}`.
    Kratos,
    /// Hyperledger Identus Cloud Agent events.
    Identus,
    /// ASP.NET Boilerplate `WebhookPayload`.
    Abp,
}

impl SourceKind {
    /// The name used in storage and the admin API.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Kratos => "kratos",
            SourceKind::Identus => "identus",
            SourceKind::Abp => "abp",
        }
    }

    /// The verification scheme a sender of this kind uses unless configured otherwise.
    pub fn default_scheme(self) -> Scheme {
        match self {
            SourceKind::Kratos => Scheme::ApiKey,
            SourceKind::Identus => Scheme::Bearer,
            SourceKind::Abp => Scheme::AbpSignature,
        }
    }
}

/// One configured endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSettings {
    /// Fixes the payload type.
    pub kind: SourceKind,
    /// The path senders POST to, e.g. `/kratos/sync-identity`.
    pub path: String,
    /// How requests prove they come from the sender.
    pub verify: VerifySettings,
    /// Overrides `server.body_limit` for this source.
    #[serde(default)]
    pub body_limit: Option<ByteSize>,
    /// `abp` only: accept only these webhook names (others get 422).
    #[serde(default)]
    pub events: Option<Vec<String>>,
    /// `abp` only: `false` for publishers set to `SendExactSameData` (the body is the bare data).
    #[serde(default, deserialize_with = "lenient_bool_opt")]
    pub envelope: Option<bool>,
}

/// Verification schemes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scheme {
    /// A static key in a header or a cookie (Kratos `api_key`).
    ApiKey,
    /// `Authorization: Basic` (Kratos `basic_auth`); each secret is `user:password`.
    Basic,
    /// `Authorization: Bearer` (RFC 6750; Identus).
    Bearer,
    /// `abp-webhook-signature: sha256=` HMAC-SHA256 of the body (ASP.NET Boilerplate).
    AbpSignature,
    /// No verification at all (warned about at start).
    None,
}

impl Scheme {
    /// The name used in config, logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::ApiKey => "api_key",
            Scheme::Basic => "basic",
            Scheme::Bearer => "bearer",
            Scheme::AbpSignature => "abp_signature",
            Scheme::None => "none",
        }
    }
}

/// Where an `api_key` is carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum KeyLocation {
    /// In a header (`header`, default `X-Api-Key`).
    #[default]
    Header,
    /// In a cookie (`cookie` names it).
    Cookie,
}

/// A source's `verify` block.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifySettings {
    /// The scheme.
    pub scheme: Scheme,
    /// Accepted secrets; any one matching is enough, so a secret can be rotated without downtime.
    /// From an environment variable, a comma-separated list.
    #[serde(default, deserialize_with = "secret_list")]
    pub secrets: Vec<SecretString>,
    /// `api_key` with `in: header`: the header name (default `X-Api-Key`).
    #[serde(default)]
    pub header: Option<String>,
    /// `api_key`: `header` (default) or `cookie`.
    #[serde(default, rename = "in")]
    pub location: Option<KeyLocation>,
    /// `api_key` with `in: cookie`: the cookie name.
    #[serde(default)]
    pub cookie: Option<String>,
}

impl fmt::Debug for VerifySettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifySettings")
            .field("scheme", &self.scheme)
            .field(
                "secrets",
                &format_args!("[{} redacted]", self.secrets.len()),
            )
            .field("header", &self.header)
            .field("in", &self.location)
            .field("cookie", &self.cookie)
            .finish()
    }
}

/// A duration written like `10s`, `1m 30s` or `250ms` (a bare number is seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match StringOrNumber::deserialize(d)? {
            StringOrNumber::Number(n) => Ok(Self(Duration::from_secs(n))),
            StringOrNumber::String(s) => {
                humantime::parse_duration(s.trim()).map(Self).map_err(|e| {
                    de::Error::custom(format!(
                        "`{s}` is not a duration like `10s` or `500ms` ({e})"
                    ))
                })
            }
        }
    }
}

/// A size written like `1MiB`, `64KiB` or `512` (bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match StringOrNumber::deserialize(d)? {
            StringOrNumber::Number(n) => Ok(Self(n)),
            StringOrNumber::String(s) => s
                .trim()
                .parse::<bytesize::ByteSize>()
                .map(|b| Self(b.as_u64()))
                .map_err(|e| {
                    de::Error::custom(format!("`{s}` is not a size like `1MiB` or `64KiB` ({e})"))
                }),
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum StringOrNumber {
    Number(u64),
    String(String),
}

fn lenient_usize<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    match StringOrNumber::deserialize(d)? {
        StringOrNumber::Number(n) => usize::try_from(n).map_err(de::Error::custom),
        StringOrNumber::String(s) => s
            .trim()
            .parse()
            .map_err(|_| de::Error::custom(format!("`{s}` is not a whole number"))),
    }
}

fn lenient_bool_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum B {
        Bool(bool),
        String(String),
    }
    match Option::<B>::deserialize(d)? {
        None => Ok(None),
        Some(B::Bool(b)) => Ok(Some(b)),
        Some(B::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "true" => Ok(Some(true)),
            "false" => Ok(Some(false)),
            _ => Err(de::Error::custom(format!("`{s}` is not `true` or `false`"))),
        },
    }
}

/// A scalar that stands for a secret: YAML may type `12345` as a number, yet it is a string here.
#[derive(Deserialize)]
#[serde(untagged)]
enum Scalar {
    String(String),
    Int(i64),
}

impl Scalar {
    fn into_string(self) -> String {
        match self {
            Scalar::String(s) => s,
            Scalar::Int(n) => n.to_string(),
        }
    }
}

fn secret_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SecretString>, D::Error> {
    Ok(Option::<Scalar>::deserialize(d)?.map(|s| SecretString::from(s.into_string())))
}

fn secret_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<SecretString>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        Many(Vec<Scalar>),
        One(Scalar),
    }
    Ok(match Option::<OneOrMany>::deserialize(d)? {
        None => Vec::new(),
        Some(OneOrMany::Many(v)) => v
            .into_iter()
            .map(|s| SecretString::from(s.into_string()))
            .collect(),
        // A single string (typically from an environment variable) is a comma-separated list.
        Some(OneOrMany::One(s)) => s
            .into_string()
            .split(',')
            .map(|p| SecretString::from(p.trim().to_string()))
            .collect(),
    })
}

/// Where to read configuration from.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Files given with `--config`; when non-empty they replace the two `config/` files.
    pub files: Vec<PathBuf>,
    /// The folder holding `default.yaml` and `{env}.yaml` (default `config`).
    pub config_dir: Option<PathBuf>,
    /// The environment to read variables from; `None` reads the process environment.
    /// Tests pass their own map so they do not depend on, or change, the process environment.
    pub env: Option<HashMap<String, String>>,
}

impl LoadOptions {
    fn var(&self, name: &str) -> Option<String> {
        match &self.env {
            Some(map) => map.get(name).cloned(),
            None => std::env::var(name).ok(),
        }
    }

    /// The value of `HOOKGATE_ENV`, if set and not empty.
    pub fn environment(&self) -> Option<String> {
        self.var(ENV_NAME_VAR).filter(|s| !s.trim().is_empty())
    }
}

/// Loads, merges, expands and checks the configuration.
///
/// # Errors
/// Every problem found, each naming the field (or file) it is about.
pub fn load(opts: &LoadOptions) -> Result<Settings, ConfigErrors> {
    let environment = opts.environment();
    let mut files = Vec::new();
    if opts.files.is_empty() {
        let dir = opts
            .config_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("config"));
        read_file(&mut files, &dir.join("default.yaml"), false)?;
        if let Some(env) = &environment {
            read_file(&mut files, &dir.join(format!("{env}.yaml")), false)?;
        }
    } else {
        for f in &opts.files {
            read_file(&mut files, f, true)?;
        }
    }
    load_texts(&files, opts)
}

/// Like [`load`] with `yaml` as the only configuration file and `env` as the whole environment:
/// reads no file and not the process environment (for tests and the config fuzz target).
///
/// # Errors
/// Every problem found, each naming the field it is about.
pub fn load_from_str(yaml: &str, env: &HashMap<String, String>) -> Result<Settings, ConfigErrors> {
    let opts = LoadOptions {
        env: Some(env.clone()),
        ..LoadOptions::default()
    };
    load_texts(
        &[("the configuration".to_string(), yaml.to_string())],
        &opts,
    )
}

/// Merges the files' texts (named for errors) with the environment, expands, checks.
fn load_texts(files: &[(String, String)], opts: &LoadOptions) -> Result<Settings, ConfigErrors> {
    let environment = opts.environment();
    let env: Vec<(String, String)> = match &opts.env {
        Some(m) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        // Variables that are not valid UTF-8 cannot be hookgate's (nor expand into a value).
        None => std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect(),
    };
    refuse_subscripts(files, &env)?;
    let mut builder = config::Config::builder();
    for (name, text) in files {
        // Parse each file alone first, so that a YAML error names the file.
        if let Err(e) = config::Config::builder()
            .add_source(config::File::from_str(text, config::FileFormat::Yaml))
            .build()
        {
            return Err(ConfigErrors::one(format!("{name}: not valid YAML: {e}")));
        }
        builder = builder.add_source(config::File::from_str(text, config::FileFormat::Yaml));
    }
    let env_source = config::Environment::with_prefix(ENV_PREFIX)
        .prefix_separator("__")
        .separator("__")
        .source(Some(env.into_iter().collect()));
    builder = builder.add_source(env_source);
    let merged = builder
        .build()
        .map_err(|e| ConfigErrors::one(format!("configuration could not be merged: {e}")))?;
    let mut tree: serde_json::Value = merged
        .try_deserialize()
        .map_err(|e| ConfigErrors::one(format!("configuration could not be read: {e}")))?;

    let mut errors = Vec::new();
    expand_vars(&mut tree, &mut String::new(), opts, &mut errors);
    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }

    let settings: Settings = serde_path_to_error::deserialize(tree).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        ConfigErrors::one(field_error(&path, &inner))
    })?;
    settings.validate(environment.as_deref() == Some("production"))?;
    Ok(settings)
}

/// Refuses `[` in variable names and mapping keys. The `config` crate reads `key[N]` as "element
/// N of list `key`" and grows the list to N first, so one key like `sources[200000000]` would
/// take gigabytes before any check could run (found by the `config_yaml` fuzz target).
fn refuse_subscripts(
    files: &[(String, String)],
    env: &[(String, String)],
) -> Result<(), ConfigErrors> {
    let mut errors = Vec::new();
    for (name, _) in env {
        if name.starts_with(ENV_PREFIX) && name.contains('[') {
            errors.push(format!(
                "{name}: `[` is not allowed in a variable name (set a list as comma-separated values)"
            ));
        }
    }
    for (file, text) in files {
        for (n, line) in text.lines().enumerate() {
            let line = line.trim_start().trim_start_matches("- ");
            if line.starts_with('#') {
                continue;
            }
            // The key: what comes before the first `: ` (or a final `:`), outside flow values.
            let key = line
                .split_once(": ")
                .map(|(k, _)| k)
                .or_else(|| line.strip_suffix(':'));
            if let Some(key) = key.filter(|k| !k.starts_with(['{', '[', '"', '\''])) {
                if key.contains('[') {
                    errors.push(format!(
                        "{file}, line {}: `[` is not allowed in a key (`{}`)",
                        n + 1,
                        key.chars().take(40).collect::<String>()
                    ));
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ConfigErrors(errors))
    }
}

/// Names the field in a deserialization error, pointing into a missing field when that is the error.
fn field_error(path: &str, inner: &str) -> String {
    let path = if path == "." { "" } else { path };
    if let Some(missing) = inner
        .strip_prefix("missing field `")
        .and_then(|r| r.strip_suffix('`'))
    {
        let full = if path.is_empty() {
            missing.to_string()
        } else {
            format!("{path}.{missing}")
        };
        return format!("{full}: is required");
    }
    if path.is_empty() {
        inner.to_string()
    } else {
        format!("{path}: {inner}")
    }
}

fn read_file(
    files: &mut Vec<(String, String)>,
    path: &Path,
    required: bool,
) -> Result<(), ConfigErrors> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            files.push((path.display().to_string(), text));
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => Ok(()),
        Err(e) => Err(ConfigErrors::one(format!(
            "{}: cannot be read: {e}",
            path.display()
        ))),
    }
}

/// Replaces `${VAR}` and `${VAR:-fallback}` in every string of the tree.
fn expand_vars(
    v: &mut serde_json::Value,
    path: &mut String,
    opts: &LoadOptions,
    errors: &mut Vec<String>,
) {
    match v {
        serde_json::Value::String(s) if s.contains("${") => match expand_str(s, opts) {
            Ok(new) => *s = new,
            Err(e) => errors.push(format!("{path}: {e}")),
        },
        serde_json::Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                expand_vars(item, path, opts, errors);
                path.truncate(len);
            }
        }
        serde_json::Value::Object(map) => {
            for (k, item) in map.iter_mut() {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
                expand_vars(item, path, opts, errors);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

fn expand_str(s: &str, opts: &LoadOptions) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| "`${` without a closing `}`".to_string())?;
        let expr = &after[..end];
        let (name, fallback) = match expr.split_once(":-") {
            Some((n, f)) => (n, Some(f)),
            None => (expr, None),
        };
        let valid = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(format!("`${{{expr}}}` is not a valid variable reference"));
        }
        match (opts.var(name), fallback) {
            (Some(v), _) if !v.is_empty() || fallback.is_none() => out.push_str(&v),
            (_, Some(f)) => out.push_str(f),
            (None, None) => {
                return Err(format!(
                    "environment variable {name} is not set (set it, or write `${{{name}:-fallback}}`)"
                ));
            }
            (Some(v), None) => out.push_str(&v),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Words that mark a value as a development or example secret, refused by a production start.
const PLACEHOLDER_MARKERS: &[&str] = &[
    "change-me",
    "changeme",
    "change_me",
    "placeholder",
    "dev-only",
    "example",
    "insecure",
];

fn placeholder_reason(secret: &str) -> Option<&'static str> {
    let lower = secret.to_ascii_lowercase();
    if secret.trim().is_empty() {
        Some("is empty")
    } else if PLACEHOLDER_MARKERS.iter().any(|m| lower.contains(m)) || lower.contains("${") {
        Some("is a placeholder or development value")
    } else {
        None
    }
}

impl Settings {
    /// The effective body limit of a source, in bytes.
    pub fn body_limit_for(&self, source: &SourceSettings) -> u64 {
        source.body_limit.unwrap_or(self.server.body_limit).0
    }

    /// Checks everything that types alone cannot.
    ///
    /// # Errors
    /// All problems found, each naming its field.
    pub fn validate(&self, production: bool) -> Result<(), ConfigErrors> {
        let mut e = Vec::new();
        let public: Option<SocketAddr> = self.server.listen.parse().ok();
        if public.is_none() {
            e.push(format!(
                "server.listen: `{}` is not an address like 0.0.0.0:8080",
                self.server.listen
            ));
        }
        let admin: Option<SocketAddr> = self.admin.listen.parse().ok();
        if admin.is_none() {
            e.push(format!(
                "admin.listen: `{}` is not an address like 127.0.0.1:9090",
                self.admin.listen
            ));
        }
        if let (Some(p), Some(a)) = (public, admin) {
            if p.port() != 0
                && p.port() == a.port()
                && (p.ip() == a.ip() || p.ip().is_unspecified() || a.ip().is_unspecified())
            {
                e.push("admin.listen: must differ from server.listen (the admin API needs its own port)".into());
            }
        }
        if self.server.body_limit.0 == 0 {
            e.push("server.body_limit: must be more than 0".into());
        }
        if self.server.request_timeout.0.is_zero() {
            e.push("server.request_timeout: must be more than 0".into());
        }
        if self.server.max_concurrent_requests == 0 {
            e.push("server.max_concurrent_requests: must be at least 1".into());
        }
        if self.server.max_connections == 0 {
            e.push("server.max_connections: must be at least 1".into());
        }
        match &self.admin.token {
            None => e.push("admin.token: is required (the bearer token for /admin/...)".into()),
            Some(t) => {
                if t.expose_secret().trim().is_empty() {
                    e.push("admin.token: must not be empty".into());
                } else if production {
                    if let Some(why) = placeholder_reason(t.expose_secret()) {
                        e.push(format!(
                            "admin.token: {why}; a production start needs a real token"
                        ));
                    }
                }
            }
        }
        if !self.store.url.starts_with("sqlite://") {
            if self.store.url.starts_with("postgres://")
                || self.store.url.starts_with("postgresql://")
            {
                e.push("store.url: the PostgreSQL backend is not available in this version; use sqlite://PATH".into());
            } else {
                e.push(format!(
                    "store.url: `{}` is not supported; use sqlite://PATH",
                    redact_url(&self.store.url)
                ));
            }
        } else if self.store.url.trim_start_matches("sqlite://").is_empty() {
            e.push(
                "store.url: names no file; use sqlite://PATH (e.g. sqlite://data/hookgate.db)"
                    .into(),
            );
        }
        if self.store.queue_capacity == 0 {
            e.push("store.queue_capacity: must be at least 1".into());
        }
        if self.store.max_batch == 0 {
            e.push("store.max_batch: must be at least 1".into());
        }
        if self.sources.is_empty() {
            e.push("sources: at least one source is required".into());
        }
        let mut paths: HashMap<&str, &str> = HashMap::new();
        for (id, s) in &self.sources {
            let f = format!("sources.{id}");
            if id.is_empty()
                || !id
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
            {
                e.push(format!(
                    "{f}: a source id may hold only a-z, 0-9, `_` and `-`"
                ));
            }
            validate_path(&f, &s.path, &mut e);
            if let Some(other) = paths.insert(s.path.as_str(), id.as_str()) {
                e.push(format!(
                    "{f}.path: `{}` is already the path of source {other}",
                    s.path
                ));
            }
            if let Some(limit) = s.body_limit {
                if limit.0 == 0 {
                    e.push(format!("{f}.body_limit: must be more than 0"));
                }
            }
            if s.kind != SourceKind::Abp {
                if s.events.is_some() {
                    e.push(format!(
                        "{f}.events: only `abp` sources have an events allow-list"
                    ));
                }
                if s.envelope.is_some() {
                    e.push(format!("{f}.envelope: only `abp` sources have this option"));
                }
            } else if s.envelope == Some(false) && s.events.is_some() {
                e.push(format!(
                    "{f}.events: a source with `envelope: false` receives bare data with no webhook name to filter on; remove `events`"
                ));
            }
            if let Some(events) = &s.events {
                if events.iter().any(|n| n.trim().is_empty()) {
                    e.push(format!("{f}.events: names must not be empty"));
                }
            }
            validate_verify(&format!("{f}.verify"), &s.verify, production, &mut e);
        }
        if e.is_empty() {
            Ok(())
        } else {
            Err(ConfigErrors(e))
        }
    }
}

fn validate_path(f: &str, path: &str, e: &mut Vec<String>) {
    if !path.starts_with('/') {
        e.push(format!("{f}.path: must start with `/`"));
    } else if path.contains(['{', '}', '*', '?', '#', ' ']) {
        e.push(format!(
            "{f}.path: must be a plain path (no `{{}}`, `*`, `?`, `#` or spaces)"
        ));
    } else if matches!(path, "/healthz" | "/readyz" | "/") {
        e.push(format!("{f}.path: `{path}` is reserved"));
    }
}

fn validate_verify(f: &str, v: &VerifySettings, production: bool, e: &mut Vec<String>) {
    let uses_header =
        v.scheme == Scheme::ApiKey && v.location.unwrap_or_default() == KeyLocation::Header;
    if v.header.is_some() && !uses_header {
        e.push(format!(
            "{f}.header: only `api_key` with `in: header` uses a header name"
        ));
    }
    if let Some(h) = &v.header {
        if HeaderName::from_bytes(h.as_bytes()).is_err() {
            e.push(format!("{f}.header: `{h}` is not a valid header name"));
        }
    }
    if v.location.is_some() && v.scheme != Scheme::ApiKey {
        e.push(format!("{f}.in: only `api_key` has `in`"));
    }
    let uses_cookie = v.scheme == Scheme::ApiKey && v.location == Some(KeyLocation::Cookie);
    match (&v.cookie, uses_cookie) {
        (Some(_), false) => e.push(format!(
            "{f}.cookie: only `api_key` with `in: cookie` uses a cookie name"
        )),
        (None, true) => e.push(format!("{f}.cookie: `in: cookie` needs the cookie name")),
        (Some(c), true)
            if c.is_empty()
                || !c
                    .chars()
                    .all(|ch| ch.is_ascii_graphic() && !"()<>@,;:\\\"/[]?={}".contains(ch)) =>
        {
            e.push(format!("{f}.cookie: `{c}` is not a valid cookie name"));
        }
        _ => {}
    }
    if v.scheme == Scheme::None {
        if !v.secrets.is_empty() {
            e.push(format!("{f}.secrets: scheme `none` takes no secrets"));
        }
        return;
    }
    if v.secrets.is_empty() {
        e.push(format!("{f}.secrets: at least one secret is required"));
    }
    for (i, s) in v.secrets.iter().enumerate() {
        let s = s.expose_secret();
        if s.is_empty() {
            e.push(format!("{f}.secrets[{i}]: must not be empty"));
            continue;
        }
        if v.scheme == Scheme::Basic && !s.contains(':') {
            e.push(format!(
                "{f}.secrets[{i}]: a `basic` secret is `user:password`"
            ));
        }
        if matches!(v.scheme, Scheme::ApiKey | Scheme::Bearer | Scheme::Basic)
            && s.chars().any(|c| c.is_control())
        {
            e.push(format!(
                "{f}.secrets[{i}]: must not hold control characters (it travels in a header)"
            ));
        }
        if production {
            if let Some(why) = placeholder_reason(s) {
                e.push(format!(
                    "{f}.secrets[{i}]: {why}; a production start needs a real secret"
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    const MINIMAL: &str = r#"
admin:
  token: admin-token-1234567890
store:
  url: sqlite://x.db
sources:
  kratos:
    kind: kratos
    path: /kratos
    verify: { scheme: api_key, header: X-Api-Key, secrets: ["k1"] }
"#;

    fn opts(files: Vec<PathBuf>, env: &[(&str, &str)]) -> LoadOptions {
        LoadOptions {
            files,
            config_dir: None,
            env: Some(
                env.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
        }
    }

    fn errors_of(r: Result<Settings, ConfigErrors>) -> Vec<String> {
        match r {
            Ok(_) => panic!("expected configuration errors"),
            Err(e) => e.0,
        }
    }

    #[test]
    fn a_minimal_file_loads_with_built_in_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let f = write(dir.path(), "a.yaml", MINIMAL);
        let s = load(&opts(vec![f], &[])).unwrap();
        assert_eq!(s.server.listen, "0.0.0.0:8080");
        assert_eq!(s.server.body_limit, ByteSize(1024 * 1024));
        assert_eq!(
            s.server.request_timeout,
            HumanDuration(Duration::from_secs(10))
        );
        assert_eq!(s.sources["kratos"].kind, SourceKind::Kratos);
    }

    #[test]
    fn durations_and_sizes_are_read_in_human_units() {
        let dir = tempfile::tempdir().unwrap();
        let f = write(
            dir.path(),
            "a.yaml",
            &format!("{MINIMAL}server:\n  body_limit: 64KiB\n  request_timeout: 250ms\n"),
        );
        let s = load(&opts(vec![f], &[])).unwrap();
        assert_eq!(s.server.body_limit, ByteSize(64 * 1024));
        assert_eq!(s.server.request_timeout.0, Duration::from_millis(250));
    }

    #[test]
    fn environment_variables_override_nested_keys_including_secret_lists() {
        let dir = tempfile::tempdir().unwrap();
        let f = write(dir.path(), "a.yaml", MINIMAL);
        let s = load(&opts(
            vec![f],
            &[
                ("HOOKGATE__SERVER__LISTEN", "127.0.0.1:1234"),
                (
                    "HOOKGATE__SOURCES__KRATOS__VERIFY__SECRETS",
                    "new-key,old-key",
                ),
                ("HOOKGATE__SERVER__MAX_CONCURRENT_REQUESTS", "7"),
            ],
        ))
        .unwrap();
        assert_eq!(s.server.listen, "127.0.0.1:1234");
        assert_eq!(s.server.max_concurrent_requests, 7);
        let secrets: Vec<&str> = s.sources["kratos"]
            .verify
            .secrets
            .iter()
            .map(|s| s.expose_secret())
            .collect();
        assert_eq!(secrets, ["new-key", "old-key"]);
    }

    #[test]
    fn variables_in_values_are_expanded_and_a_missing_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let text = MINIMAL.replace("[\"k1\"]", "[\"${KRATOS_KEY}\", \"${OTHER:-fallback}\"]");
        let f = write(dir.path(), "a.yaml", &text);
        let s = load(&opts(vec![f.clone()], &[("KRATOS_KEY", "from-env")])).unwrap();
        let secrets: Vec<&str> = s.sources["kratos"]
            .verify
            .secrets
            .iter()
            .map(|s| s.expose_secret())
            .collect();
        assert_eq!(secrets, ["from-env", "fallback"]);

        let errs = errors_of(load(&opts(vec![f], &[])));
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0].contains("sources.kratos.verify.secrets[0]"),
            "{}",
            errs[0]
        );
        assert!(errs[0].contains("KRATOS_KEY"), "{}", errs[0]);
    }

    #[test]
    fn unknown_keys_are_rejected_with_their_path() {
        let dir = tempfile::tempdir().unwrap();
        let f = write(
            dir.path(),
            "a.yaml",
            &MINIMAL.replace("path: /kratos", "path: /kratos\n    pth: /typo"),
        );
        let errs = errors_of(load(&opts(vec![f], &[])));
        assert!(
            errs[0].starts_with("sources.kratos.pth: unknown field `pth`"),
            "{}",
            errs[0]
        );
    }

    #[test]
    fn a_missing_secret_list_is_named_by_its_full_path() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "{MINIMAL}  abp:\n    kind: abp\n    path: /abp\n    verify: {{ scheme: abp_signature }}\n"
        );
        let f = write(dir.path(), "a.yaml", &text);
        let errs = errors_of(load(&opts(vec![f], &[])));
        assert_eq!(
            errs,
            ["sources.abp.verify.secrets: at least one secret is required"]
        );
    }

    #[test]
    fn bad_values_name_their_field() {
        let dir = tempfile::tempdir().unwrap();
        let f = write(
            dir.path(),
            "a.yaml",
            &format!("{MINIMAL}server:\n  request_timeout: soon\n"),
        );
        let errs = errors_of(load(&opts(vec![f], &[])));
        assert!(
            errs[0].starts_with("server.request_timeout: `soon` is not a duration"),
            "{}",
            errs[0]
        );

        let f = write(
            dir.path(),
            "b.yaml",
            &MINIMAL.replace("kind: kratos", "kind: github"),
        );
        let errs = errors_of(load(&opts(vec![f], &[])));
        assert!(
            errs[0].starts_with("sources.kratos.kind: unknown variant `github`"),
            "{}",
            errs[0]
        );
    }

    #[test]
    fn cross_field_mistakes_are_all_reported() {
        let dir = tempfile::tempdir().unwrap();
        let text = r#"
admin: { token: t }
sources:
  Bad:
    kind: identus
    path: identus
    verify: { scheme: bearer, header: X-Key, secrets: [""] }
    events: [A]
  b:
    kind: kratos
    path: /k
    verify: { scheme: api_key, in: cookie, secrets: [k] }
"#;
        let f = write(dir.path(), "a.yaml", text);
        let errs = errors_of(load(&opts(vec![f], &[])));
        for want in [
            "sources.Bad: a source id may hold only",
            "sources.Bad.path: must start with `/`",
            "sources.Bad.events: only `abp` sources",
            "sources.Bad.verify.header: only `api_key`",
            "sources.Bad.verify.secrets[0]: must not be empty",
            "sources.b.verify.cookie: `in: cookie` needs the cookie name",
        ] {
            assert!(
                errs.iter().any(|e| e.starts_with(want)),
                "missing {want:?} in {errs:#?}"
            );
        }
    }

    #[test]
    fn a_production_start_refuses_placeholder_secrets_and_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let f = write(
            dir.path(),
            "a.yaml",
            &MINIMAL
                .replace("[\"k1\"]", "[\"dev-only-kratos-key\"]")
                .replace("admin-token-1234567890", "change-me"),
        );
        assert!(
            load(&opts(vec![f.clone()], &[])).is_ok(),
            "outside production these are fine"
        );
        let errs = errors_of(load(&opts(vec![f], &[("HOOKGATE_ENV", "production")])));
        assert!(
            errs.iter()
                .any(|e| e.starts_with("admin.token: is a placeholder")),
            "{errs:?}"
        );
        assert!(
            errs.iter()
                .any(|e| e.starts_with("sources.kratos.verify.secrets[0]: is a placeholder")),
            "{errs:?}"
        );
        assert!(
            errs.iter().all(|e| !e.contains("dev-only-kratos-key")),
            "errors never echo a secret"
        );
    }

    #[test]
    fn the_environment_file_is_layered_over_the_default_file() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "default.yaml", MINIMAL);
        write(dir.path(), "staging.yaml", "log:\n  format: json\n");
        let mut o = opts(vec![], &[("HOOKGATE_ENV", "staging")]);
        o.config_dir = Some(dir.path().to_path_buf());
        let s = load(&o).unwrap();
        assert_eq!(s.log.format, LogFormat::Json);
        assert_eq!(s.sources.len(), 1);
    }

    #[test]
    fn debug_output_never_shows_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let f = write(
            dir.path(),
            "a.yaml",
            &MINIMAL.replace("sqlite://x.db", "sqlite://u:pw@x.db"),
        );
        let s = load(&opts(vec![f], &[])).unwrap();
        let dbg = format!("{s:?}");
        assert!(
            !dbg.contains("k1\"") && !dbg.contains("admin-token-1234567890"),
            "{dbg}"
        );
    }

    #[test]
    fn redact_url_hides_only_the_password() {
        assert_eq!(
            redact_url("postgres://u:p@h/db"),
            "postgres://u:[redacted]@h/db"
        );
        assert_eq!(redact_url("sqlite://data/x.db"), "sqlite://data/x.db");
    }

    #[test]
    fn load_from_str_layers_expands_and_checks_like_load() {
        let text = MINIMAL.replace("[\"k1\"]", "[\"${KRATOS_KEY:-fallback}\"]");
        let env: HashMap<String, String> = [
            ("KRATOS_KEY", "from-env"),
            ("HOOKGATE__SERVER__LISTEN", "127.0.0.1:1234"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let s = load_from_str(&text, &env).unwrap();
        assert_eq!(s.server.listen, "127.0.0.1:1234");
        assert_eq!(s.server.body_limit, ByteSize(1024 * 1024));
        assert_eq!(
            s.sources["kratos"].verify.secrets[0].expose_secret(),
            "from-env"
        );
        let s = load_from_str(&text, &HashMap::new()).unwrap();
        assert_eq!(
            s.sources["kratos"].verify.secrets[0].expose_secret(),
            "fallback"
        );

        let production: HashMap<String, String> =
            [(ENV_NAME_VAR.to_string(), "production".to_string())].into();
        let errs = errors_of(load_from_str(
            &MINIMAL.replace("admin-token-1234567890", "change-me"),
            &production,
        ));
        assert!(
            errs.iter()
                .any(|e| e.starts_with("admin.token: is a placeholder")),
            "{errs:?}"
        );
        let errs = errors_of(load_from_str("sources: [", &HashMap::new()));
        assert!(
            errs[0].starts_with("the configuration: not valid YAML"),
            "{errs:?}"
        );
        let errs = errors_of(load_from_str(
            &MINIMAL.replace("path: /kratos", "path: /kratos\n    pth: /typo"),
            &HashMap::new(),
        ));
        assert!(
            errs[0].starts_with("sources.kratos.pth: unknown field `pth`"),
            "{}",
            errs[0]
        );
    }

    #[test]
    fn list_subscripts_in_keys_and_variable_names_are_refused_before_merging() {
        // Each of these made the `config` crate grow a list to the index (gigabytes).
        let errs = errors_of(load_from_str("sources[200000000]: 1\n", &HashMap::new()));
        assert!(
            errs[0].contains("line 1: `[` is not allowed in a key"),
            "{errs:?}"
        );
        let env: HashMap<String, String> = [(
            "HOOKGATE__SOURCES__KR[-200000001]__VERIFY__SECRETS".to_string(),
            "x".to_string(),
        )]
        .into();
        let errs = errors_of(load_from_str(MINIMAL, &env));
        assert!(
            errs[0].starts_with(
                "HOOKGATE__SOURCES__KR[-200000001]__VERIFY__SECRETS: `[` is not allowed"
            ),
            "{errs:?}"
        );
        // Brackets in values (flow lists) are fine.
        assert!(load_from_str(MINIMAL, &HashMap::new()).is_ok());
        assert!(MINIMAL.contains("[\"k1\"]"));
    }
}
