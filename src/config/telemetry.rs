//! The `telemetry` block: OpenTelemetry traces exported over OTLP/HTTP (off unless
//! `telemetry.otlp.endpoint` is set).

use std::collections::BTreeMap;
use std::fmt;

use http::{HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::de::{self, HumanDuration};
use super::redact::redact_url;

/// The path of the traces signal under an OTLP/HTTP base endpoint (OTel's
/// `OTEL_EXPORTER_OTLP_ENDPOINT` convention).
pub const TRACES_PATH: &str = "/v1/traces";

/// `telemetry`: what hookgate tells an observability backend besides its logs and `/metrics`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetrySettings {
    /// Traces sent to an OpenTelemetry collector over OTLP/HTTP (protobuf).
    pub otlp: OtlpSettings,
}

/// `telemetry.otlp`: where and how traces are exported.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OtlpSettings {
    /// The collector's OTLP/HTTP base URL (`http://collector:4318`); traces go to
    /// `{endpoint}/v1/traces` (see [`OtlpSettings::traces_url`]). Empty or absent: no traces.
    pub endpoint: Option<String>,
    /// Headers sent with every export (a collector's credentials): the values are secrets,
    /// never logged.
    #[serde(deserialize_with = "de::secret_map")]
    pub headers: BTreeMap<String, SecretString>,
    /// `service.name` of the exported spans (default `hookgate`).
    pub service_name: String,
    /// The share of traces started here that are kept, 0 to 1 (default 1). A request whose
    /// `traceparent` says whether its trace is sampled is followed instead.
    #[serde(deserialize_with = "de::lenient_f64")]
    pub sample_ratio: f64,
    /// How long one export may take (default 10s).
    pub timeout: HumanDuration,
}

impl Default for OtlpSettings {
    fn default() -> Self {
        Self {
            endpoint: None,
            headers: BTreeMap::new(),
            service_name: "hookgate".into(),
            sample_ratio: 1.0,
            timeout: HumanDuration(std::time::Duration::from_secs(10)),
        }
    }
}

impl fmt::Debug for OtlpSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtlpSettings")
            .field("endpoint", &self.endpoint.as_deref().map(redact_url))
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("service_name", &self.service_name)
            .field("sample_ratio", &self.sample_ratio)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl OtlpSettings {
    /// Whether traces are exported: an endpoint is set (and not empty).
    pub fn enabled(&self) -> bool {
        self.endpoint
            .as_deref()
            .is_some_and(|e| !e.trim().is_empty())
    }

    /// Where spans are POSTed: the endpoint with `/v1/traces` appended to its path (one `/`
    /// between them), as OpenTelemetry SDKs do with `OTEL_EXPORTER_OTLP_ENDPOINT`; an endpoint
    /// whose path already ends with `/v1/traces` is used as it is. A query string is kept after
    /// the path. `None` when traces are off.
    pub fn traces_url(&self) -> Option<String> {
        let endpoint = self.endpoint.as_deref()?.trim();
        if endpoint.is_empty() {
            return None;
        }
        let (base, query) = match endpoint.split_once('?') {
            Some((b, q)) => (b, Some(q)),
            None => (endpoint, None),
        };
        let mut url = if base.ends_with(TRACES_PATH) {
            base.to_string()
        } else {
            format!("{}{TRACES_PATH}", base.trim_end_matches('/'))
        };
        if let Some(q) = query {
            url.push('?');
            url.push_str(q);
        }
        Some(url)
    }

    /// The headers of every export, checked (see [`TelemetrySettings::problems`]).
    pub fn header_values(&self) -> Vec<(HeaderName, HeaderValue)> {
        self.headers
            .iter()
            .filter_map(|(name, value)| {
                let name = HeaderName::from_bytes(name.as_bytes()).ok()?;
                let mut value = HeaderValue::from_str(value.expose_secret()).ok()?;
                value.set_sensitive(true);
                Some((name, value))
            })
            .collect()
    }
}

impl TelemetrySettings {
    /// What is wrong with the block, each problem naming its field. Nothing is checked but
    /// the endpoint when traces are off.
    pub fn problems(&self) -> Vec<String> {
        let mut e = Vec::new();
        let o = &self.otlp;
        let f = "telemetry.otlp";
        if let Some(endpoint) = o.endpoint.as_deref().filter(|e| !e.trim().is_empty()) {
            let shown = redact_url(endpoint);
            let lower = endpoint.trim().to_ascii_lowercase();
            if !(lower.starts_with("http://") || lower.starts_with("https://")) {
                e.push(format!(
                    "{f}.endpoint: `{shown}` must start with http:// or https:// (the \
                     collector's OTLP/HTTP base URL, e.g. http://collector:4318)"
                ));
            } else {
                match o.traces_url().map(|u| u.parse::<http::Uri>()) {
                    Some(Ok(uri)) if uri.host().is_some_and(|h| !h.is_empty()) => {}
                    _ => e.push(format!(
                        "{f}.endpoint: `{shown}` is not a URL like http://collector:4318"
                    )),
                }
            }
        } else {
            return e;
        }
        if o.service_name.trim().is_empty() {
            e.push(format!(
                "{f}.service_name: must not be empty (default hookgate)"
            ));
        }
        if !(0.0..=1.0).contains(&o.sample_ratio) {
            e.push(format!(
                "{f}.sample_ratio: must be between 0 and 1 (1 keeps every trace), not {}",
                o.sample_ratio
            ));
        }
        if o.timeout.0.is_zero() {
            e.push(format!("{f}.timeout: must be more than 0 (default 10s)"));
        }
        for (name, value) in &o.headers {
            if HeaderName::from_bytes(name.as_bytes()).is_err() {
                e.push(format!("{f}.headers.{name}: is not a valid header name"));
            } else if HeaderValue::from_str(value.expose_secret()).is_err() {
                e.push(format!(
                    "{f}.headers.{name}: the value is not a valid header value (no line \
                     breaks or control characters)"
                ));
            }
        }
        e
    }

    /// What a start should warn about: settings that do nothing without an endpoint.
    pub fn warnings(&self) -> Vec<String> {
        let o = &self.otlp;
        let defaults = OtlpSettings::default();
        let configured = !o.headers.is_empty()
            || o.service_name != defaults.service_name
            || o.sample_ratio != defaults.sample_ratio
            || o.timeout != defaults.timeout;
        if !o.enabled() && configured {
            vec![
                "telemetry.otlp has settings but no endpoint: no traces are exported (set \
                 telemetry.otlp.endpoint, e.g. http://collector:4318)"
                    .into(),
            ]
        } else {
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_endpoint(endpoint: &str) -> OtlpSettings {
        OtlpSettings {
            endpoint: Some(endpoint.into()),
            ..OtlpSettings::default()
        }
    }

    #[test]
    fn the_traces_path_is_appended_to_a_base_endpoint() {
        for (endpoint, url) in [
            ("http://collector:4318", "http://collector:4318/v1/traces"),
            ("http://collector:4318/", "http://collector:4318/v1/traces"),
            (
                "https://otel.example/otlp",
                "https://otel.example/otlp/v1/traces",
            ),
            (
                "https://otel.example/otlp/",
                "https://otel.example/otlp/v1/traces",
            ),
            ("http://c:4318/v1/traces", "http://c:4318/v1/traces"),
            ("http://c:4318?tenant=a", "http://c:4318/v1/traces?tenant=a"),
        ] {
            assert_eq!(with_endpoint(endpoint).traces_url().as_deref(), Some(url));
        }
        assert_eq!(OtlpSettings::default().traces_url(), None);
        assert_eq!(with_endpoint("  ").traces_url(), None);
        assert!(!with_endpoint("").enabled());
    }

    #[test]
    fn every_problem_names_its_field_and_no_secret() {
        let mut otlp = with_endpoint("collector:4318");
        otlp.sample_ratio = 1.5;
        otlp.service_name = " ".into();
        otlp.timeout = HumanDuration(std::time::Duration::ZERO);
        otlp.headers
            .insert("bad name".into(), SecretString::from("s3cret"));
        otlp.headers
            .insert("Authorization".into(), SecretString::from("s3cret\nx"));
        let problems = TelemetrySettings { otlp }.problems();
        for want in [
            "telemetry.otlp.endpoint: `collector:4318` must start with http://",
            "telemetry.otlp.service_name: must not be empty",
            "telemetry.otlp.sample_ratio: must be between 0 and 1",
            "telemetry.otlp.timeout: must be more than 0",
            "telemetry.otlp.headers.bad name: is not a valid header name",
            "telemetry.otlp.headers.Authorization: the value is not a valid header value",
        ] {
            assert!(
                problems.iter().any(|p| p.starts_with(want)),
                "missing {want:?} in {problems:#?}"
            );
        }
        assert!(
            problems.iter().all(|p| !p.contains("s3cret")),
            "{problems:#?}"
        );
        assert!(TelemetrySettings::default().problems().is_empty());
        let mut fine = with_endpoint("http://u:pw@collector:4318");
        fine.headers
            .insert("Authorization".into(), SecretString::from("Bearer s3cret"));
        let shown = format!("{fine:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("pw"),
            "{shown}"
        );
        assert!(TelemetrySettings { otlp: fine }.problems().is_empty());
    }

    #[test]
    fn settings_without_an_endpoint_are_warned_about() {
        let mut otlp = OtlpSettings::default();
        assert!(
            TelemetrySettings { otlp: otlp.clone() }
                .warnings()
                .is_empty()
        );
        otlp.sample_ratio = 0.5;
        let w = TelemetrySettings { otlp }.warnings();
        assert!(
            w[0].starts_with("telemetry.otlp has settings but no endpoint"),
            "{w:?}"
        );
    }

    #[test]
    fn the_block_is_read_from_yaml_and_environment_variables() {
        use super::super::load::{load_from_str, tests::MINIMAL};
        use std::collections::HashMap;
        let yaml = format!(
            "{MINIMAL}telemetry:\n  otlp:\n    endpoint: http://collector:4318\n    \
             headers: {{ Authorization: \"Bearer ${{OTLP_TOKEN}}\" }}\n"
        );
        let env = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let on = load_from_str(&yaml, &env(&[("OTLP_TOKEN", "s3cret-token")])).unwrap();
        let otlp = &on.telemetry.otlp;
        assert_eq!(
            otlp.traces_url().as_deref(),
            Some("http://collector:4318/v1/traces")
        );
        assert_eq!(
            otlp.headers["Authorization"].expose_secret(),
            "Bearer s3cret-token"
        );
        assert!(!format!("{on:?}").contains("s3cret-token"));
        // An empty variable turns traces off; a ratio may come as text.
        let off = load_from_str(
            &yaml,
            &env(&[
                ("OTLP_TOKEN", "t"),
                ("HOOKGATE__TELEMETRY__OTLP__ENDPOINT", ""),
                ("HOOKGATE__TELEMETRY__OTLP__SAMPLE_RATIO", "0.25"),
            ]),
        )
        .unwrap();
        assert!(!off.telemetry.otlp.enabled());
        assert_eq!(off.telemetry.otlp.sample_ratio, 0.25);
        let errors = load_from_str(
            &format!("{MINIMAL}telemetry:\n  otlp:\n    endpont: http://c:4318\n"),
            &HashMap::new(),
        )
        .unwrap_err()
        .0;
        assert!(
            errors[0].starts_with("telemetry.otlp.endpont: unknown field"),
            "{errors:?}"
        );
        assert!(
            load_from_str(MINIMAL, &HashMap::new())
                .unwrap()
                .telemetry
                .otlp
                .endpoint
                .is_none()
        );
    }
}
