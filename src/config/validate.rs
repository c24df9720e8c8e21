//! The checks types alone cannot make: addresses, limits, paths, secrets, and placeholder
//! values refused by a production start. Every problem names its field, and all are reported
//! in one run.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;

use http::HeaderName;
use secrecy::ExposeSecret;

use super::types::{ConfigErrors, ENV_NAME_VAR, Settings, SourceSettings};
use super::verify::{Scheme, SchemeSettings, standard_webhooks_key, unused_reason};

/// Words that mark a value as a development or example secret, refused whenever hookgate can be
/// reached from elsewhere (a listener not on loopback) or `HOOKGATE_ENV=production`.
const PLACEHOLDER_MARKERS: &[&str] = &[
    "change-me",
    "changeme",
    "change_me",
    "replace-me",
    "replaceme",
    "replace_me",
    "placeholder",
    "dev-only",
    "example",
    "insecure",
    "your-secret",
    "your_secret",
];

/// Retention below this is warned about: a pruned event's dedupe key is gone with it.
const MIN_SAFE_RETENTION: std::time::Duration = std::time::Duration::from_secs(24 * 60 * 60);

/// Fewest bytes in an `api_key`, `bearer` or HMAC secret (unless `allow_short_secret`).
pub const MIN_SECRET_BYTES: usize = 16;

fn placeholder_reason(secret: &str) -> Option<&'static str> {
    let lower = secret.to_ascii_lowercase();
    if secret.trim().is_empty() {
        Some("is empty")
    } else if PLACEHOLDER_MARKERS.iter().any(|m| lower.contains(m)) || lower.contains("${") {
        Some("is a development or placeholder value")
    } else {
        None
    }
}

/// A secret or token in the configuration that is marked as a development or placeholder value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevelopmentValue {
    /// The field, e.g. `admin.token`.
    pub field: String,
    /// The variable that would replace it, when the value is a `${VAR:-fallback}`.
    pub variable: Option<String>,
}

impl fmt::Display for DevelopmentValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.variable {
            Some(v) => write!(f, "{} (set {v})", self.field),
            None => f.write_str(&self.field),
        }
    }
}

impl Settings {
    /// Checks everything that types alone cannot (but for the kinds' own options: see
    /// [`crate::sources::check`]).
    ///
    /// # Errors
    /// All problems found, each naming its field.
    pub fn validate(&self, production: bool) -> Result<(), ConfigErrors> {
        let e = self.problems(production);
        if e.is_empty() {
            Ok(())
        } else {
            Err(ConfigErrors(e))
        }
    }

    /// The secrets and tokens marked as development or placeholder values (fine on loopback,
    /// refused anywhere else; named in a warning at start).
    pub fn development_values(&self) -> Vec<DevelopmentValue> {
        let variable = |field: &str| {
            self.fallbacks
                .iter()
                .find(|f| f.field == field)
                .map(|f| f.variable.clone())
        };
        let mut found = Vec::new();
        let mut check = |field: String, value: &str| {
            if !value.trim().is_empty() && placeholder_reason(value).is_some() {
                found.push(DevelopmentValue {
                    variable: variable(&field),
                    field,
                });
            }
        };
        if let Some(t) = &self.admin.token {
            check("admin.token".into(), t.expose_secret());
        }
        for (id, s) in &self.sources {
            for (i, secret) in s.verify.secrets.iter().enumerate() {
                check(
                    format!("sources.{id}.verify.secrets[{i}]"),
                    secret.expose_secret(),
                );
            }
        }
        for (id, d) in &self.destinations {
            if let Some(sign) = &d.sign {
                if let Some(secret) = &sign.secret {
                    check(
                        format!("destinations.{id}.sign.secret"),
                        secret.expose_secret(),
                    );
                }
                for (i, secret) in sign.secrets.iter().enumerate() {
                    check(
                        format!("destinations.{id}.sign.secrets[{i}]"),
                        secret.expose_secret(),
                    );
                }
            }
            for (name, value) in &d.headers {
                check(
                    format!("destinations.{id}.headers.{name}"),
                    value.expose_secret(),
                );
            }
        }
        found
    }

    /// Why development values must be refused, if they must: a production environment, or a
    /// listener that other machines can reach.
    pub fn exposure(&self, production: bool) -> Option<String> {
        if production {
            return Some(format!("{ENV_NAME_VAR} is production"));
        }
        let reachable = |field: &str, listen: &str| {
            let addr: SocketAddr = listen.parse().ok()?;
            (!addr.ip().is_loopback())
                .then(|| format!("{field} is {listen}, which other machines can reach"))
        };
        reachable("server.listen", &self.server.listen)
            .or_else(|| reachable("admin.listen", &self.admin.listen))
    }

    /// What a start should warn about: development values in use (on loopback), and secrets
    /// shorter than the minimum that a source allows.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        let retention = self.store.retention.0;
        if !retention.is_zero() && retention < MIN_SAFE_RETENTION {
            w.push(format!(
                "store.retention is {}: a sender's retry that arrives after its event was pruned \
                 is stored again (ABP retries for about half an hour, a replayed Kratos or Identus \
                 event may come later); keep at least 1d",
                humantime::format_duration(retention)
            ));
        }
        let dev = self.development_values();
        if !dev.is_empty() {
            let names: Vec<String> = dev.iter().map(ToString::to_string).collect();
            w.push(format!(
                "development secrets in use, accepted only while both listeners are on loopback: {}",
                names.join(", ")
            ));
        }
        w.extend(self.telemetry.warnings());
        for (id, s) in &self.sources {
            if s.allow_short_secret && short_secrets_checked(s.verify.scheme.scheme()) {
                for (i, secret) in s.verify.secrets.iter().enumerate() {
                    let len = secret_bytes(s.verify.scheme.scheme(), secret.expose_secret());
                    if len < MIN_SECRET_BYTES {
                        w.push(format!(
                            "sources.{id}.verify.secrets[{i}] is {len} bytes, shorter than \
                             {MIN_SECRET_BYTES} (allowed by sources.{id}.allow_short_secret)"
                        ));
                    }
                }
            }
        }
        w
    }

    /// Every problem [`Settings::validate`] finds, each naming its field.
    pub fn problems(&self, production: bool) -> Vec<String> {
        let mut e = Vec::new();
        if let Some(why) = self.exposure(production) {
            for d in self.development_values() {
                let fix = match &d.variable {
                    Some(v) => format!("set {v} to a real secret"),
                    None => "replace it with a real secret".to_string(),
                };
                e.push(format!(
                    "{}: is a development or placeholder value, refused because {why}; {fix} \
                     (development values work only while server.listen and admin.listen are on \
                     127.0.0.1)",
                    d.field
                ));
            }
        }
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
                let len = t.expose_secret().len();
                if t.expose_secret().trim().is_empty() {
                    e.push("admin.token: must not be empty".into());
                } else if len < MIN_SECRET_BYTES {
                    e.push(format!(
                        "admin.token: is {len} bytes; it needs at least {MIN_SECRET_BYTES} \
                         (make one with `openssl rand -hex 32`)"
                    ));
                }
            }
        }
        if let Err(why) = self.store.backend() {
            e.push(why);
        }
        if self.store.queue_capacity == 0 {
            e.push("store.queue_capacity: must be at least 1".into());
        }
        if self.store.max_batch == 0 {
            e.push("store.max_batch: must be at least 1".into());
        }
        if self.store.pool_size == 0 {
            e.push("store.pool_size: must be at least 1 (default 16)".into());
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
            if id == super::types::REGISTERED_HOOKS {
                e.push(format!(
                    "{f}: `hooks` is the source of registered hooks (POST /admin/hooks); give this source another id"
                ));
            }
            validate_path(&f, &s.path, &mut e);
            if s.path == "/hooks" || s.path.starts_with("/hooks/") {
                e.push(format!(
                    "{f}.path: paths under /hooks/ are the registered hooks' (POST /admin/hooks); choose another path"
                ));
            }
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
            if s.kind.trim().is_empty() {
                e.push(format!("{f}.kind: must name a sender kind"));
            }
            validate_verify(&f, s, &mut e);
        }
        if let Err(mut problems) = self.resolved_destinations() {
            e.append(&mut problems);
        }
        e.extend(self.telemetry.problems());
        e
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

/// Whether a scheme's secrets must have [`MIN_SECRET_BYTES`]: the ones a guess could match
/// (`basic` pairs are a user and a password, chosen by the sender's operator).
fn short_secrets_checked(scheme: Scheme) -> bool {
    matches!(
        scheme,
        Scheme::ApiKey
            | Scheme::Bearer
            | Scheme::AbpSignature
            | Scheme::StandardWebhooks
            | Scheme::Hmac
    )
}

/// The problems of a `verify` block given outside a configuration file (a registered hook's,
/// `POST /admin/hooks`): the checks of a source's block, each naming its field from `verify`
/// (`verify.secrets[0]: …`).
pub fn verify_block_problems(verify: &super::VerifySettings) -> Vec<String> {
    let block = SourceSettings {
        kind: String::new(),
        path: String::new(),
        verify: verify.clone(),
        body_limit: None,
        allow_short_secret: false,
        options: serde_json::Map::new(),
    };
    let mut e = Vec::new();
    validate_verify("", &block, &mut e);
    e.into_iter()
        .map(|p| p.strip_prefix('.').map(str::to_string).unwrap_or(p))
        .collect()
}

/// The bytes of key a secret gives: a `standard_webhooks` secret's decoded key (0 when it is not
/// base64, which is reported on its own), else the secret's UTF-8 bytes.
fn secret_bytes(scheme: Scheme, secret: &str) -> usize {
    match scheme {
        Scheme::StandardWebhooks => standard_webhooks_key(secret).map_or(0, |k| k.len()),
        _ => secret.len(),
    }
}

/// What only `standard_webhooks` and `hmac` check: their own keys.
fn validate_signing_keys(f: &str, scheme: &SchemeSettings, e: &mut Vec<String>) {
    let header_name = |e: &mut Vec<String>, field: &str, h: &str| {
        if HeaderName::from_bytes(h.as_bytes()).is_err() {
            e.push(format!("{f}.{field}: `{h}` is not a valid header name"));
        }
    };
    match scheme {
        SchemeSettings::StandardWebhooks { tolerance } if tolerance.is_zero() => {
            e.push(format!(
                "{f}.tolerance: must be more than 0 (default 5m, as the reference libraries)"
            ));
        }
        SchemeSettings::Hmac(h) => {
            match &h.header {
                None => e.push(format!(
                    "{f}.header: is required for `scheme: hmac`: the header that carries the \
                     signature (e.g. X-Hub-Signature-256)"
                )),
                Some(name) => header_name(e, "header", name),
            }
            if h.prefix.chars().any(char::is_control) {
                e.push(format!(
                    "{f}.prefix: must not hold control characters (it is part of a header value)"
                ));
            }
            match (&h.timestamp, h.signed.uses_timestamp()) {
                (None, true) => e.push(format!(
                    "{f}.timestamp: is required when `signed` holds `{{timestamp}}`: \
                     {{ header: <the header with the Unix seconds signed>, tolerance: 5m }}"
                )),
                (Some(_), false) => e.push(format!(
                    "{f}.timestamp: is used only when `signed` holds `{{timestamp}}` (e.g. \
                     `signed: \"v0:{{timestamp}}:{{body}}\"`); a timestamp that is not signed \
                     proves nothing"
                )),
                (Some(t), true) => {
                    header_name(e, "timestamp.header", &t.header);
                    if t.tolerance().is_zero() {
                        e.push(format!("{f}.timestamp.tolerance: must be more than 0"));
                    }
                }
                (None, false) => {}
            }
        }
        _ => {}
    }
}

fn validate_verify(source: &str, settings: &SourceSettings, e: &mut Vec<String>) {
    let f = format!("{source}.verify");
    let v = &settings.verify;
    for key in &v.unused {
        e.push(format!("{f}.{key}: {}", unused_reason(key)));
    }
    match &v.scheme {
        SchemeSettings::ApiKeyHeader(Some(h)) if HeaderName::from_bytes(h.as_bytes()).is_err() => {
            e.push(format!("{f}.header: `{h}` is not a valid header name"));
        }
        SchemeSettings::ApiKeyCookie(None) => {
            e.push(format!("{f}.cookie: `in: cookie` needs the cookie name"));
        }
        SchemeSettings::ApiKeyCookie(Some(c))
            if c.is_empty()
                || !c
                    .chars()
                    .all(|ch| ch.is_ascii_graphic() && !"()<>@,;:\\\"/[]?={}".contains(ch)) =>
        {
            e.push(format!("{f}.cookie: `{c}` is not a valid cookie name"));
        }
        _ => {}
    }
    validate_signing_keys(&f, &v.scheme, e);
    let scheme = v.scheme.scheme();
    if scheme == Scheme::None {
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
        if scheme == Scheme::Basic && !s.contains(':') {
            e.push(format!(
                "{f}.secrets[{i}]: a `basic` secret is `user:password`"
            ));
        }
        if matches!(scheme, Scheme::ApiKey | Scheme::Bearer | Scheme::Basic)
            && s.chars().any(|c| c.is_control())
        {
            e.push(format!(
                "{f}.secrets[{i}]: must not hold control characters (it travels in a header)"
            ));
        }
        if scheme == Scheme::StandardWebhooks {
            if let Err(why) = standard_webhooks_key(s) {
                e.push(format!("{f}.secrets[{i}]: {why}"));
                continue;
            }
        }
        let len = secret_bytes(scheme, s);
        if short_secrets_checked(scheme) && len < MIN_SECRET_BYTES && !settings.allow_short_secret {
            let unit = if scheme == Scheme::StandardWebhooks {
                "bytes of key"
            } else {
                "bytes"
            };
            e.push(format!(
                "{f}.secrets[{i}]: is {len} {unit}; a secret of scheme `{}` needs at least {MIN_SECRET_BYTES} \
                 (make one with `openssl rand -hex 32`), or set {source}.allow_short_secret: true \
                 for a sender that cannot send a longer one",
                scheme.as_str()
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use crate::config::load_from_str;

    /// A file with one source whose `verify` block is `verify` (YAML flow style) and whose extra
    /// keys are `extra`.
    fn with_verify(verify: &str, extra: &str) -> String {
        format!(
            "admin:\n  token: admin-token-1234567890\nstore:\n  url: sqlite://x.db\nsources:\n  \
             s:\n    kind: standard\n    path: /s\n    verify: {verify}\n{extra}"
        )
    }

    fn problems(verify: &str, extra: &str) -> Vec<String> {
        match load_from_str(&with_verify(verify, extra), &HashMap::new()) {
            Ok(_) => Vec::new(),
            Err(e) => e.0,
        }
    }

    #[test]
    fn standard_webhooks_secrets_with_or_without_prefix_and_padding_are_accepted() {
        for secret in [
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
            "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",
        ] {
            let verify = format!("{{ scheme: standard_webhooks, secrets: [\"{secret}\"] }}");
            assert_eq!(problems(&verify, ""), Vec::<String>::new(), "{secret}");
        }
    }

    #[test]
    fn a_standard_webhooks_secret_that_is_not_base64_is_named_without_being_echoed() {
        let e = problems(
            "{ scheme: standard_webhooks, secrets: [\"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\", \"whsec_not*base64!sekrit\"] }",
            "",
        );
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with("sources.s.verify.secrets[1]: is not `whsec_` followed by base64"),
            "{e:?}"
        );
        assert!(!e[0].contains("sekrit"), "{e:?}");
        let e = problems(
            "{ scheme: standard_webhooks, secrets: [\"whpk_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"] }",
            "",
        );
        assert!(e[0].contains("ed25519"), "{e:?}");
        let e = problems(
            "{ scheme: standard_webhooks, secrets: [\"whsec_AAAA\"] }",
            "",
        );
        assert!(
            e[0].starts_with("sources.s.verify.secrets[0]: is 3 bytes of key"),
            "{e:?}"
        );
        assert!(problems("{ scheme: standard_webhooks }", "")[0].contains("at least one secret"));
        let e = problems(
            "{ scheme: standard_webhooks, tolerance: 0s, secrets: [\"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"] }",
            "",
        );
        assert!(
            e[0].starts_with("sources.s.verify.tolerance: must be more than 0"),
            "{e:?}"
        );
    }

    #[test]
    fn hmac_blocks_are_checked_naming_each_field() {
        let secret = "secrets: [\"It's a Secret to Everybody\"]";
        let ok = |v: &str| {
            let p = problems(&format!("{{ scheme: hmac, {v}, {secret} }}"), "");
            assert!(p.is_empty(), "{v}: {p:?}");
        };
        ok("header: X-Hub-Signature-256, prefix: \"sha256=\"");
        ok("header: X-Shopify-Hmac-Sha256, encoding: base64");
        ok(
            "header: X-Slack-Signature, prefix: \"v0=\", signed: \"v0:{timestamp}:{body}\", \
            timestamp: { header: X-Slack-Request-Timestamp, tolerance: 10m }",
        );
        let err = |v: &str, want: &str| {
            let p = problems(&format!("{{ scheme: hmac, {v}, {secret} }}"), "");
            assert!(p.iter().any(|e| e.starts_with(want)), "{v}: {p:?}");
        };
        err(
            "prefix: \"sha256=\"",
            "sources.s.verify.header: is required",
        );
        err(
            "header: \"X Sig\"",
            "sources.s.verify.header: `X Sig` is not a valid header name",
        );
        err(
            "header: X-Sig, signed: \"{timestamp}.{body}\"",
            "sources.s.verify.timestamp: is required when `signed` holds `{timestamp}`",
        );
        err(
            "header: X-Sig, timestamp: { header: X-Ts }",
            "sources.s.verify.timestamp: is used only when",
        );
        err(
            "header: X-Sig, signed: \"{timestamp}.{body}\", timestamp: { header: \"X Ts\" }",
            "sources.s.verify.timestamp.header: ",
        );
        err(
            "header: X-Sig, signed: \"{timestamp}.{body}\", timestamp: { header: X-Ts, tolerance: 0 }",
            "sources.s.verify.timestamp.tolerance: must be more than 0",
        );
        err(
            "header: X-Sig, algorithm: md5",
            "sources.s.verify.algorithm: unknown variant `md5`",
        );
        err(
            "header: X-Sig, encoding: base32",
            "sources.s.verify.encoding: unknown variant",
        );
        err(
            "header: X-Sig, signed: \"{id}.{body}\"",
            "sources.s.verify.signed: `{id}` is not a placeholder",
        );
        err(
            "header: X-Sig, signed: \"{timestamp}\"",
            "sources.s.verify.signed: must hold `{body}` exactly once",
        );
        err(
            "header: X-Sig, signed: \"{body}\", timestamp: { header: X-Ts, tolernce: 1m }",
            "sources.s.verify.timestamp.tolernce: unknown field",
        );
        let p = problems("{ scheme: hmac, header: X-Sig, secrets: [short] }", "");
        assert!(
            p[0].starts_with("sources.s.verify.secrets[0]: is 5 bytes"),
            "{p:?}"
        );
    }

    #[test]
    fn keys_of_another_scheme_are_named() {
        let p = problems(
            "{ scheme: bearer, algorithm: sha1, tolerance: 1m, secrets: [a-bearer-token-000001] }",
            "",
        );
        assert!(
            p.iter()
                .any(|e| e.starts_with("sources.s.verify.algorithm: only `hmac`")),
            "{p:?}"
        );
        assert!(
            p.iter()
                .any(|e| e.starts_with("sources.s.verify.tolerance: only `standard_webhooks`")),
            "{p:?}"
        );
        let p = problems(
            "{ scheme: standard_webhooks, header: X, secrets: [\"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"] }",
            "",
        );
        assert!(
            p[0].starts_with("sources.s.verify.header: only `api_key`"),
            "{p:?}"
        );
        let p = problems(
            "{ scheme: hmac, header: X-Sig, tolerance: 1m, secrets: [a-bearer-token-000001] }",
            "",
        );
        assert!(p[0].contains("`hmac` takes it under `timestamp`"), "{p:?}");
    }
}
