//! The checks types alone cannot make: addresses, limits, paths, secrets, and placeholder
//! values refused by a production start. Every problem names its field, and all are reported
//! in one run.

use std::collections::HashMap;
use std::net::SocketAddr;

use http::HeaderName;
use secrecy::ExposeSecret;

use super::types::{ConfigErrors, Settings};
use super::verify::{Scheme, SchemeSettings, VerifySettings, unused_reason};

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

    /// Every problem [`Settings::validate`] finds, each naming its field.
    pub fn problems(&self, production: bool) -> Vec<String> {
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
        if let Err(why) = self.store.backend() {
            e.push(why);
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
            if s.kind.trim().is_empty() {
                e.push(format!("{f}.kind: must name a sender kind"));
            }
            validate_verify(&format!("{f}.verify"), &s.verify, production, &mut e);
        }
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

fn validate_verify(f: &str, v: &VerifySettings, production: bool, e: &mut Vec<String>) {
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
        if production {
            if let Some(why) = placeholder_reason(s) {
                e.push(format!(
                    "{f}.secrets[{i}]: {why}; a production start needs a real secret"
                ));
            }
        }
    }
}
