//! `destinations`: where stored events are delivered (DESIGN.md "Delivery").
//!
//! [`DestinationSettings`] is the block as written; [`DestinationSettings::resolve`] checks it
//! and gives the typed [`Destination`] delivery runs on, with every problem naming its field
//! (`destinations.app.sign.secret: …`).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use http::HeaderName;
use secrecy::{ExposeSecret, SecretSlice, SecretString};
use serde::Deserialize;

use super::de::{self, HumanDuration};
use super::redact::redact_url;

/// Fewest bytes of key in a `whsec_` secret (Standard Webhooks asks for 24 to 64).
pub const MIN_WHSEC_KEY_BYTES: usize = 24;

/// A secret used to sign (HMAC, ABP) needs at least this many bytes, as for receiving.
pub const MIN_SIGN_SECRET_BYTES: usize = 16;

/// The HTTP retry schedule when `retry` is not set: the waits between attempts (Standard
/// Webhooks' and svix's: about 28 hours over 8 attempts).
pub const DEFAULT_HTTP_RETRY: [Duration; 7] = [
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 60 * 60),
    Duration::from_secs(5 * 60 * 60),
    Duration::from_secs(10 * 60 * 60),
    Duration::from_secs(10 * 60 * 60),
];

/// `timeout` when it is not set.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// `max_in_flight` when it is not set.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 32;
/// `pause_after` when it is not set: five days.
pub const DEFAULT_PAUSE_AFTER: Duration = Duration::from_secs(5 * 24 * 60 * 60);

/// The broker retry schedule when `retry` is not set: exponential from 1 s, capped at 5 min,
/// for about 3 days in all (DESIGN.md "Delivery").
pub fn default_broker_retry() -> Vec<Duration> {
    let mut waits = Vec::new();
    let (mut wait, mut total) = (Duration::from_secs(1), Duration::ZERO);
    let (cap, span) = (Duration::from_secs(5 * 60), Duration::from_secs(3 * 86_400));
    while total < span {
        waits.push(wait);
        total += wait;
        wait = (wait * 2).min(cap);
    }
    waits
}

/// The kinds of destination this build delivers to.
pub const KINDS: &[&str] = &["http", "rabbitmq", "nats"];

/// `routing_key` of a `format: raw` RabbitMQ destination when it is not set.
pub const DEFAULT_ROUTING_KEY: &str = "{source}.{event_type}";

/// One `destinations.<id>` block, as written.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DestinationSettings {
    /// `http`, `rabbitmq` or `nats`.
    pub kind: String,
    /// Where to send: `http(s)://…` for `http`, `amqp(s)://…` for `rabbitmq`, `nats://…` (or
    /// `tls://…`) for `nats`.
    pub url: String,
    /// `nats`: the subject, with `{source}` and `{event_type}`.
    #[serde(default)]
    pub subject: Option<String>,
    /// `nats`: the JetStream stream that captures the subject, to create if missing.
    #[serde(default)]
    pub stream: Option<StreamSettings>,
    /// `rabbitmq`: `masstransit` (default: the MassTransit envelope) or `raw` (the stored bytes).
    #[serde(default)]
    pub format: Option<String>,
    /// `rabbitmq`: the exchange published to (for `masstransit`, default: the message type's
    /// `Namespace:TypeName`, as MassTransit names it).
    #[serde(default)]
    pub exchange: Option<String>,
    /// `rabbitmq`, `format: masstransit`: `urn:message:Namespace:TypeName`.
    #[serde(default)]
    pub message_type: Option<String>,
    /// `rabbitmq`, `format: masstransit`: `body` (default) or `kratos_identity_updated`.
    #[serde(default)]
    pub message: Option<String>,
    /// `rabbitmq`, `format: raw`: the routing key, with `{source}` and `{event_type}`.
    #[serde(default)]
    pub routing_key: Option<String>,
    /// Only events of these sources (default: every source).
    #[serde(default)]
    pub sources: Option<Vec<String>>,
    /// Only events of these types (default: every type).
    #[serde(default)]
    pub event_types: Option<Vec<String>>,
    /// How each request is signed (default: not signed).
    #[serde(default)]
    pub sign: Option<SignSettings>,
    /// Static headers sent with every request; the values are secrets (never logged).
    #[serde(default, deserialize_with = "de::secret_map")]
    pub headers: BTreeMap<String, SecretString>,
    /// How long an attempt may take, answer included (default 10s).
    #[serde(default)]
    pub timeout: Option<HumanDuration>,
    /// The waits between attempts; after the last one the delivery is `failed`.
    #[serde(default)]
    pub retry: Option<Vec<HumanDuration>>,
    /// Attempts to this destination at once, at most (default 32).
    #[serde(default, deserialize_with = "de::lenient_usize_opt")]
    pub max_in_flight: Option<usize>,
    /// A destination whose attempts have all failed for this long is paused (default 5d).
    #[serde(default)]
    pub pause_after: Option<HumanDuration>,
}

impl fmt::Debug for DestinationSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DestinationSettings")
            .field("kind", &self.kind)
            .field("url", &redact_url(&self.url))
            .field("format", &self.format)
            .field("exchange", &self.exchange)
            .field("message_type", &self.message_type)
            .field("message", &self.message)
            .field("routing_key", &self.routing_key)
            .field("subject", &self.subject)
            .field("stream", &self.stream)
            .field("sources", &self.sources)
            .field("event_types", &self.event_types)
            .field("sign", &self.sign)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .field("max_in_flight", &self.max_in_flight)
            .field("pause_after", &self.pause_after)
            .finish()
    }
}

/// A NATS destination's `stream` block, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamSettings {
    /// The stream's name.
    pub name: String,
    /// Create it (capturing the subject's fixed prefix, `prefix.>`) when it is missing.
    #[serde(default)]
    pub create: bool,
}

/// A destination's `sign` block, as written.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignSettings {
    /// `standard_webhooks`, `abp_signature`, `hmac` or `none`.
    pub scheme: String,
    /// The secret (`whsec_…` for `standard_webhooks`).
    #[serde(default, deserialize_with = "de::secret_opt")]
    pub secret: Option<SecretString>,
    /// Several secrets (`standard_webhooks` signs with each, for a rotation); or use `secret`.
    #[serde(default, deserialize_with = "de::secret_list")]
    pub secrets: Vec<SecretString>,
    /// `hmac`: the header that carries the signature (e.g. `X-Hub-Signature-256`).
    #[serde(default)]
    pub header: Option<String>,
    /// `hmac`: `sha256` (default), `sha1` or `sha512`.
    #[serde(default)]
    pub algorithm: Option<String>,
    /// `hmac`: `hex` (default) or `base64`.
    #[serde(default)]
    pub encoding: Option<String>,
    /// `hmac`: text before the signature (e.g. `sha256=`).
    #[serde(default)]
    pub prefix: Option<String>,
}

impl fmt::Debug for SignSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignSettings")
            .field("scheme", &self.scheme)
            .field("secret", &self.secret.as_ref().map(|_| "[redacted]"))
            .field(
                "secrets",
                &format_args!("[{} redacted]", self.secrets.len()),
            )
            .field("header", &self.header)
            .field("algorithm", &self.algorithm)
            .field("encoding", &self.encoding)
            .field("prefix", &self.prefix)
            .finish()
    }
}

/// A checked destination: what delivery runs on.
#[derive(Debug, Clone)]
pub struct Destination {
    /// Its id (the key of its block): in metrics, the admin API and the store.
    pub id: String,
    /// Where and how to send.
    pub target: Target,
    /// Only events of these sources (`None`: every source).
    pub sources: Option<Vec<String>>,
    /// Only events of these types (`None`: every type).
    pub event_types: Option<Vec<String>>,
    /// The waits between attempts.
    pub retry: Vec<Duration>,
    /// Attempts at once, at most.
    pub max_in_flight: usize,
    /// Failing only, for this long: paused.
    pub pause_after: Duration,
}

impl Destination {
    /// Whether an event of `source` with `event_type` goes to this destination.
    pub fn matches(&self, source: &str, event_type: Option<&str>) -> bool {
        self.takes_source(source) && self.takes_type(event_type)
    }

    /// Whether events of `source` go here (the `sources` filter alone).
    pub fn takes_source(&self, source: &str) -> bool {
        self.sources
            .as_ref()
            .is_none_or(|s| s.iter().any(|x| x == source))
    }

    /// Whether events of `event_type` go here (the `event_types` filter alone).
    pub fn takes_type(&self, event_type: Option<&str>) -> bool {
        self.event_types
            .as_ref()
            .is_none_or(|types| event_type.is_some_and(|t| types.iter().any(|x| x == t)))
    }

    /// The destination kind, as written in the configuration.
    pub fn kind(&self) -> &'static str {
        match self.target {
            Target::Http(_) => "http",
            Target::Rabbitmq(_) => "rabbitmq",
            Target::Nats(_) => "nats",
        }
    }

    /// How long an attempt may take.
    pub fn timeout(&self) -> Duration {
        match &self.target {
            Target::Http(t) => t.timeout,
            Target::Rabbitmq(t) => t.timeout,
            Target::Nats(t) => t.timeout,
        }
    }
}

/// Where a destination sends, by kind.
#[derive(Debug, Clone)]
pub enum Target {
    /// `kind: http`.
    Http(HttpTarget),
    /// `kind: rabbitmq`.
    Rabbitmq(AmqpTarget),
    /// `kind: nats`.
    Nats(NatsTarget),
}

/// A NATS JetStream destination.
#[derive(Clone)]
pub struct NatsTarget {
    /// The server (`nats://user:password@host:4222`); may hold credentials.
    pub url: String,
    /// The subject template (`{source}`, `{event_type}`).
    pub subject: String,
    /// The stream to create if missing: its name and the subjects it captures.
    pub create_stream: Option<(String, String)>,
    /// How long the stream may take to acknowledge (connecting included).
    pub timeout: Duration,
}

impl fmt::Debug for NatsTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsTarget")
            .field("url", &redact_url(&self.url))
            .field("subject", &self.subject)
            .field("create_stream", &self.create_stream)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// A RabbitMQ destination.
#[derive(Clone)]
pub struct AmqpTarget {
    /// The broker (`amqp://user:password@host:5672/vhost`); may hold credentials.
    pub url: String,
    /// What is published.
    pub format: AmqpFormat,
    /// The exchange published to.
    pub exchange: String,
    /// How long the broker may take to confirm a publish (connecting included).
    pub timeout: Duration,
}

impl fmt::Debug for AmqpTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AmqpTarget")
            .field("url", &redact_url(&self.url))
            .field("format", &self.format)
            .field("exchange", &self.exchange)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// What a RabbitMQ destination publishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AmqpFormat {
    /// The MassTransit envelope, to a durable fanout exchange, routing key empty.
    MassTransit {
        /// `urn:message:Namespace:TypeName`.
        message_type: String,
        /// What the envelope's `message` is.
        message: MassTransitMessage,
    },
    /// The stored bytes, to a durable topic exchange.
    Raw {
        /// The routing key template (`{source}`, `{event_type}`).
        routing_key: String,
    },
}

/// `message` of a `format: masstransit` destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MassTransitMessage {
    /// The stored JSON as it is.
    Body,
    /// LeanCode's `KratosIdentityUpdated` `{id, dateOccurred, identity}`.
    KratosIdentityUpdated,
}

/// An HTTP destination.
#[derive(Clone)]
pub struct HttpTarget {
    /// The URL events are POSTed to (`http` or `https`); may hold credentials.
    pub url: String,
    /// Static headers, in order; the values are secrets.
    pub headers: Vec<(HeaderName, SecretString)>,
    /// How requests are signed.
    pub sign: Signing,
    /// How long an attempt may take.
    pub timeout: Duration,
}

impl fmt::Debug for HttpTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpTarget")
            .field("url", &redact_url(&self.url))
            .field(
                "headers",
                &self.headers.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .field("sign", &self.sign)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// How an outgoing request is signed.
#[derive(Clone)]
pub enum Signing {
    /// Not signed.
    None,
    /// Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature` with a `v1,`
    /// signature per key.
    StandardWebhooks {
        /// The keys (the base64 after `whsec_`, decoded), at least one.
        keys: Vec<SecretSlice<u8>>,
    },
    /// ABP's `abp-webhook-signature: sha256=…` over the body.
    AbpSignature {
        /// The subscription's secret.
        secret: SecretString,
    },
    /// An HMAC of the body in one header.
    Hmac {
        /// The header.
        header: HeaderName,
        /// The hash.
        algorithm: HmacAlgorithm,
        /// How the MAC is written.
        encoding: Encoding,
        /// Text before it.
        prefix: String,
        /// The key.
        secret: SecretString,
    },
}

impl fmt::Debug for Signing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::StandardWebhooks { keys } => {
                write!(f, "StandardWebhooks {{ keys: [{} redacted] }}", keys.len())
            }
            Self::AbpSignature { .. } => f.write_str("AbpSignature { secret: [redacted] }"),
            Self::Hmac {
                header,
                algorithm,
                encoding,
                prefix,
                ..
            } => f
                .debug_struct("Hmac")
                .field("header", header)
                .field("algorithm", algorithm)
                .field("encoding", encoding)
                .field("prefix", prefix)
                .field("secret", &"[redacted]")
                .finish(),
        }
    }
}

/// The hash of an `hmac` signature (also a receiving `verify` block's `algorithm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HmacAlgorithm {
    /// HMAC-SHA256.
    Sha256,
    /// HMAC-SHA1 (older senders).
    Sha1,
    /// HMAC-SHA512.
    Sha512,
}

/// How an `hmac` signature is written (also a receiving `verify` block's `encoding`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// Lower-case hex.
    Hex,
    /// Standard base64 with padding.
    Base64,
}

/// A `whsec_<base64>` secret's key bytes, or why it is not one.
pub fn whsec_key(secret: &str) -> Result<Vec<u8>, String> {
    let b64 = secret.strip_prefix("whsec_").ok_or_else(|| {
        "must start with `whsec_` followed by the key in base64 (make one with \
         `echo whsec_$(openssl rand -base64 32)`)"
            .to_string()
    })?;
    let key = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|_| {
            "the text after `whsec_` is not base64 (make one with \
             `echo whsec_$(openssl rand -base64 32)`)"
                .to_string()
        })?;
    if key.len() < MIN_WHSEC_KEY_BYTES {
        return Err(format!(
            "holds {} bytes of key; it needs at least {MIN_WHSEC_KEY_BYTES} (make one with \
             `echo whsec_$(openssl rand -base64 32)`)",
            key.len()
        ));
    }
    Ok(key)
}

impl DestinationSettings {
    /// Checks the block and gives the destination; every problem names its field under `f`
    /// (`destinations.<id>`). `source_ids` are the configured sources (a filter naming another
    /// is a mistake).
    pub fn resolve(&self, id: &str, source_ids: &[&str]) -> Result<Destination, Vec<String>> {
        let f = format!("destinations.{id}");
        let mut e = Vec::new();
        if id.is_empty()
            || !id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        {
            e.push(format!(
                "{f}: the id must be lower-case letters, digits, `_` or `-` (it is used in metrics \
                 and URLs)"
            ));
        }
        let http = self.kind == "http";
        let broker = !http && KINDS.contains(&self.kind.as_str());
        if !KINDS.contains(&self.kind.as_str()) {
            e.push(format!(
                "{f}.kind: `{}` is not a destination kind of this version; kinds: {}",
                self.kind,
                KINDS.join(", ")
            ));
        }
        let schemes: &[&str] = match self.kind.as_str() {
            "rabbitmq" => &["amqp", "amqps"],
            "nats" => &["nats", "tls"],
            _ => &["http", "https"],
        };
        let url_ok = match self.url.split_once("://") {
            Some((scheme, rest)) => {
                schemes.iter().any(|s| scheme.eq_ignore_ascii_case(s))
                    && !rest.is_empty()
                    && self.url.parse::<http::Uri>().is_ok()
            }
            None => false,
        };
        if !url_ok {
            e.push(format!(
                "{f}.url: `{}` is not an {}:// or {}:// URL",
                redact_url(&self.url),
                schemes[0],
                schemes[1]
            ));
        }
        let broker_keys = [
            ("format", self.format.is_some()),
            ("exchange", self.exchange.is_some()),
            ("message_type", self.message_type.is_some()),
            ("message", self.message.is_some()),
            ("routing_key", self.routing_key.is_some()),
        ];
        let nats_keys = [
            ("subject", self.subject.is_some()),
            ("stream", self.stream.is_some()),
        ];
        let http_keys = [
            ("sign", self.sign.is_some()),
            ("headers", !self.headers.is_empty()),
        ];
        for (keys, owner) in [
            (&http_keys[..], "http"),
            (&broker_keys[..], "rabbitmq"),
            (&nats_keys[..], "nats"),
        ] {
            if owner == self.kind || !KINDS.contains(&self.kind.as_str()) {
                continue;
            }
            for (key, set) in keys {
                if *set {
                    e.push(format!(
                        "{f}.{key}: only for kind: {owner}; leave it out here"
                    ));
                }
            }
        }
        for (key, list) in [
            ("sources", &self.sources),
            ("event_types", &self.event_types),
        ] {
            if let Some(list) = list {
                if list.is_empty() {
                    e.push(format!(
                        "{f}.{key}: is empty, so nothing would be delivered; leave it out to take \
                         every {}",
                        if key == "sources" {
                            "source"
                        } else {
                            "event type"
                        }
                    ));
                }
            }
        }
        if let Some(sources) = &self.sources {
            for (i, s) in sources.iter().enumerate() {
                if !source_ids.contains(&s.as_str()) {
                    e.push(format!(
                        "{f}.sources[{i}]: `{s}` is not a configured source (sources: {})",
                        source_ids.join(", ")
                    ));
                }
            }
        }
        let mut headers = Vec::new();
        for (name, value) in &self.headers {
            match HeaderName::from_bytes(name.as_bytes()) {
                Ok(h) if h.as_str().starts_with("hookgate-") || is_reserved(&h) => e.push(format!(
                    "{f}.headers.{name}: is set by hookgate itself and cannot be configured"
                )),
                Ok(h) => {
                    if http::HeaderValue::from_str(value.expose_secret()).is_err() {
                        e.push(format!(
                            "{f}.headers.{name}: the value is not a valid header value \
                             (printable ASCII, no line breaks)"
                        ));
                    }
                    headers.push((h, value.clone()));
                }
                Err(_) => e.push(format!("{f}.headers.{name}: is not a valid header name")),
            }
        }
        let timeout = self.timeout.map_or(DEFAULT_TIMEOUT, |t| t.0);
        if timeout.is_zero() {
            e.push(format!("{f}.timeout: must be more than 0"));
        }
        let retry: Vec<Duration> = match &self.retry {
            Some(r) => r.iter().map(|d| d.0).collect(),
            None if !broker => DEFAULT_HTTP_RETRY.to_vec(),
            None => default_broker_retry(),
        };
        let max_in_flight = self.max_in_flight.unwrap_or(DEFAULT_MAX_IN_FLIGHT);
        if max_in_flight == 0 {
            e.push(format!("{f}.max_in_flight: must be at least 1"));
        }
        let pause_after = self.pause_after.map_or(DEFAULT_PAUSE_AFTER, |d| d.0);
        if pause_after.is_zero() {
            e.push(format!(
                "{f}.pause_after: must be more than 0 (a destination would pause at its first \
                 failure)"
            ));
        }
        let sign = match &self.sign {
            None => Signing::None,
            Some(s) => match s.resolve(&format!("{f}.sign")) {
                Ok(s) => s,
                Err(mut p) => {
                    e.append(&mut p);
                    Signing::None
                }
            },
        };
        let amqp = (self.kind == "rabbitmq").then(|| self.amqp(&f, timeout, &mut e));
        let nats = (self.kind == "nats").then(|| self.nats(&f, timeout, &mut e));
        if !e.is_empty() {
            return Err(e);
        }
        let target = match (amqp.flatten(), nats.flatten()) {
            (Some(t), _) => Target::Rabbitmq(t),
            (None, Some(t)) => Target::Nats(t),
            (None, None) => Target::Http(HttpTarget {
                url: self.url.clone(),
                headers,
                sign,
                timeout,
            }),
        };
        Ok(Destination {
            id: id.to_string(),
            target,
            sources: self.sources.clone(),
            event_types: self.event_types.clone(),
            retry,
            max_in_flight,
            pause_after,
        })
    }
}

impl DestinationSettings {
    /// The NATS keys, checked; problems go to `e`.
    fn nats(&self, f: &str, timeout: Duration, e: &mut Vec<String>) -> Option<NatsTarget> {
        let Some(subject) = self.subject.clone() else {
            e.push(format!(
                "{f}.subject: required for kind: nats (e.g. `hookgate.{{source}}.{{event_type}}`)"
            ));
            return None;
        };
        let bare = subject
            .replace("{source}", "x")
            .replace("{event_type}", "x");
        if bare.contains(['{', '}'])
            || bare.split('.').any(|t| t.is_empty())
            || bare.contains([' ', '\t', '*', '>'])
            || bare.starts_with('$')
        {
            e.push(format!(
                "{f}.subject: `{subject}` is not a NATS subject of dot-separated tokens \
                 (placeholders {{source}} and {{event_type}}; no spaces, `*` or `>`)"
            ));
        }
        let create_stream = match &self.stream {
            Some(s) if s.create => {
                // The fixed tokens before the first placeholder: the stream captures `prefix.>`.
                let fixed: Vec<&str> = subject
                    .split('.')
                    .take_while(|t| !t.contains('{'))
                    .collect();
                let captures = if fixed.len() == subject.split('.').count() {
                    subject.clone()
                } else if fixed.is_empty() {
                    e.push(format!(
                        "{f}.stream.create: the subject starts with a placeholder, so the stream \
                         would capture every subject; start it with a fixed token \
                         (`hookgate.{{source}}…`) or create the stream yourself"
                    ));
                    String::new()
                } else {
                    format!("{}.>", fixed.join("."))
                };
                Some((s.name.clone(), captures))
            }
            _ => None,
        };
        if let Some(s) = &self.stream {
            if s.name.is_empty() || s.name.contains(['.', ' ', '\t', '*', '>', '/', '\\']) {
                e.push(format!(
                    "{f}.stream.name: `{}` is not a stream name (no spaces, `.`, `*`, `>`, \
                     slashes)",
                    s.name
                ));
            }
        }
        Some(NatsTarget {
            url: self.url.clone(),
            subject,
            create_stream,
            timeout,
        })
    }

    /// The RabbitMQ keys, checked; problems go to `e`.
    fn amqp(&self, f: &str, timeout: Duration, e: &mut Vec<String>) -> Option<AmqpTarget> {
        let exchange = self.exchange.clone().filter(|x| !x.is_empty());
        let format = match self.format.as_deref().unwrap_or("masstransit") {
            "masstransit" => {
                if self.routing_key.is_some() {
                    e.push(format!(
                        "{f}.routing_key: only for `format: raw` (MassTransit's exchanges are \
                         fanout: the routing key is empty)"
                    ));
                }
                let message = match self.message.as_deref().unwrap_or("body") {
                    "body" => MassTransitMessage::Body,
                    "kratos_identity_updated" => MassTransitMessage::KratosIdentityUpdated,
                    other => {
                        e.push(format!(
                            "{f}.message: `{other}` is not one of body, kratos_identity_updated"
                        ));
                        MassTransitMessage::Body
                    }
                };
                let Some(urn) = self.message_type.clone() else {
                    e.push(format!(
                        "{f}.message_type: required for `format: masstransit`: the consumer's \
                         message type as MassTransit names it, \
                         `urn:message:Namespace:TypeName`"
                    ));
                    return None;
                };
                let name = urn.strip_prefix("urn:message:").unwrap_or_default();
                if !name
                    .split_once(':')
                    .is_some_and(|(ns, ty)| !ns.is_empty() && !ty.is_empty() && !ty.contains(':'))
                    || name.chars().any(char::is_whitespace)
                {
                    e.push(format!(
                        "{f}.message_type: `{urn}` is not `urn:message:Namespace:TypeName` (the \
                         C# namespace and type name of the consumer's message)"
                    ));
                }
                AmqpFormat::MassTransit {
                    message_type: urn,
                    message,
                }
            }
            "raw" => {
                for (key, set) in [
                    ("message_type", self.message_type.is_some()),
                    ("message", self.message.is_some()),
                ] {
                    if set {
                        e.push(format!("{f}.{key}: only for `format: masstransit`"));
                    }
                }
                if exchange.is_none() {
                    e.push(format!(
                        "{f}.exchange: required for `format: raw` (a topic exchange, declared \
                         durable if missing)"
                    ));
                }
                let routing_key = self
                    .routing_key
                    .clone()
                    .unwrap_or_else(|| DEFAULT_ROUTING_KEY.to_string());
                let bare = routing_key
                    .replace("{source}", "")
                    .replace("{event_type}", "");
                if bare.contains('{') || bare.contains('}') {
                    e.push(format!(
                        "{f}.routing_key: `{routing_key}` has a placeholder other than \
                         {{source}} and {{event_type}}"
                    ));
                }
                AmqpFormat::Raw { routing_key }
            }
            other => {
                e.push(format!(
                    "{f}.format: `{other}` is not one of masstransit, raw"
                ));
                return None;
            }
        };
        let exchange = match (&format, exchange) {
            (_, Some(x)) => x,
            // MassTransit's exchange name: the URN's `Namespace:TypeName`, nested types joined by
            // `-` where the URN has `+`.
            (AmqpFormat::MassTransit { message_type, .. }, None) => message_type
                .strip_prefix("urn:message:")
                .unwrap_or(message_type)
                .replace('+', "-"),
            (AmqpFormat::Raw { .. }, None) => String::new(),
        };
        Some(AmqpTarget {
            url: self.url.clone(),
            format,
            exchange,
            timeout,
        })
    }
}

/// Headers a static `headers` entry may not set: hookgate's own, the signature schemes', and
/// those the HTTP client owns.
fn is_reserved(h: &HeaderName) -> bool {
    matches!(
        h.as_str(),
        "content-type"
            | "content-length"
            | "host"
            | "transfer-encoding"
            | "connection"
            | "webhook-id"
            | "webhook-timestamp"
            | "webhook-signature"
            | "abp-webhook-signature"
    )
}

impl SignSettings {
    fn resolve(&self, f: &str) -> Result<Signing, Vec<String>> {
        let mut e = Vec::new();
        let mut secrets: Vec<(String, &SecretString)> = Vec::new();
        if let Some(s) = &self.secret {
            secrets.push((format!("{f}.secret"), s));
        }
        for (i, s) in self.secrets.iter().enumerate() {
            secrets.push((format!("{f}.secrets[{i}]"), s));
        }
        let hmac_keys = [
            ("header", self.header.is_some()),
            ("algorithm", self.algorithm.is_some()),
            ("encoding", self.encoding.is_some()),
            ("prefix", self.prefix.is_some()),
        ];
        let refuse_hmac_keys = |e: &mut Vec<String>| {
            for (k, set) in hmac_keys {
                if set {
                    e.push(format!(
                        "{f}.{k}: only `scheme: hmac` takes it (the scheme is `{}`)",
                        self.scheme
                    ));
                }
            }
        };
        let one_secret = |e: &mut Vec<String>| -> Option<SecretString> {
            match secrets.as_slice() {
                [] => {
                    e.push(format!(
                        "{f}.secret: is required for `scheme: {}` (make one with `openssl rand \
                         -hex 32`)",
                        self.scheme
                    ));
                    None
                }
                [(field, s)] => {
                    let len = s.expose_secret().len();
                    if len < MIN_SIGN_SECRET_BYTES {
                        e.push(format!(
                            "{field}: is {len} bytes; it needs at least {MIN_SIGN_SECRET_BYTES} \
                             (make one with `openssl rand -hex 32`)"
                        ));
                    }
                    Some((*s).clone())
                }
                _ => {
                    e.push(format!(
                        "{f}.secrets: `scheme: {}` signs with one secret; give `secret` only",
                        self.scheme
                    ));
                    None
                }
            }
        };
        let signing = match self.scheme.as_str() {
            "none" => {
                refuse_hmac_keys(&mut e);
                if !secrets.is_empty() {
                    e.push(format!("{f}.secret: `scheme: none` takes no secret"));
                }
                Signing::None
            }
            "standard_webhooks" => {
                refuse_hmac_keys(&mut e);
                if secrets.is_empty() {
                    e.push(format!(
                        "{f}.secret: is required for `scheme: standard_webhooks` (make one with \
                         `echo whsec_$(openssl rand -base64 32)`)"
                    ));
                }
                let mut keys = Vec::new();
                for (field, s) in &secrets {
                    match whsec_key(s.expose_secret()) {
                        Ok(k) => keys.push(SecretSlice::from(k)),
                        Err(why) => e.push(format!("{field}: {why}")),
                    }
                }
                Signing::StandardWebhooks { keys }
            }
            "abp_signature" => {
                refuse_hmac_keys(&mut e);
                match one_secret(&mut e) {
                    Some(secret) => Signing::AbpSignature { secret },
                    None => Signing::None,
                }
            }
            "hmac" => {
                let header = match &self.header {
                    None => {
                        e.push(format!(
                            "{f}.header: is required for `scheme: hmac` (e.g. \
                             X-Hub-Signature-256)"
                        ));
                        None
                    }
                    Some(h) => match HeaderName::from_bytes(h.as_bytes()) {
                        Ok(h) => Some(h),
                        Err(_) => {
                            e.push(format!("{f}.header: `{h}` is not a valid header name"));
                            None
                        }
                    },
                };
                let algorithm = match self.algorithm.as_deref().unwrap_or("sha256") {
                    "sha256" => HmacAlgorithm::Sha256,
                    "sha1" => HmacAlgorithm::Sha1,
                    "sha512" => HmacAlgorithm::Sha512,
                    other => {
                        e.push(format!(
                            "{f}.algorithm: `{other}` is not one of sha256, sha1, sha512"
                        ));
                        HmacAlgorithm::Sha256
                    }
                };
                let encoding = match self.encoding.as_deref().unwrap_or("hex") {
                    "hex" => Encoding::Hex,
                    "base64" => Encoding::Base64,
                    other => {
                        e.push(format!("{f}.encoding: `{other}` is not one of hex, base64"));
                        Encoding::Hex
                    }
                };
                let secret = one_secret(&mut e);
                match (header, secret) {
                    (Some(header), Some(secret)) => Signing::Hmac {
                        header,
                        algorithm,
                        encoding,
                        prefix: self.prefix.clone().unwrap_or_default(),
                        secret,
                    },
                    _ => Signing::None,
                }
            }
            other => {
                e.push(format!(
                    "{f}.scheme: `{other}` is not one of standard_webhooks, abp_signature, hmac, \
                     none"
                ));
                Signing::None
            }
        };
        if e.is_empty() { Ok(signing) } else { Err(e) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(yaml: serde_json::Value) -> DestinationSettings {
        serde_json::from_value(yaml).expect("destination block")
    }

    #[test]
    fn defaults_are_the_designs() {
        let d = read(serde_json::json!({"kind": "http", "url": "http://app:8000/hooks"}))
            .resolve("app", &["kratos"])
            .expect("valid");
        assert_eq!(d.retry, DEFAULT_HTTP_RETRY.to_vec());
        assert_eq!(d.max_in_flight, 32);
        assert_eq!(d.pause_after, Duration::from_secs(5 * 86_400));
        let Target::Http(h) = &d.target else {
            panic!("http")
        };
        assert_eq!(h.timeout, Duration::from_secs(10));
        assert!(matches!(h.sign, Signing::None));
        assert!(d.matches("kratos", None) && d.matches("anything", Some("x")));
    }

    #[test]
    fn filters_take_only_what_they_name() {
        let d = read(serde_json::json!({
            "kind": "http", "url": "https://app/hooks",
            "sources": ["identus"], "event_types": ["ConnectionUpdated"]
        }))
        .resolve("app", &["identus", "kratos"])
        .expect("valid");
        assert!(d.matches("identus", Some("ConnectionUpdated")));
        assert!(!d.matches("identus", Some("DIDUpdated")));
        assert!(!d.matches("identus", None));
        assert!(!d.matches("kratos", Some("ConnectionUpdated")));
    }

    #[test]
    fn every_problem_names_its_field_and_no_secret() {
        let errs = read(serde_json::json!({
            "kind": "smtp", "url": "ftp://x",
            "sources": ["nope"],
            "headers": {"Hookgate-Event-Id": "x", "Authorization": "Bearer s3cret-value\n"},
            "timeout": "0s", "max_in_flight": 0,
            "sign": {"scheme": "standard_webhooks", "secret": "s3cret-not-whsec"}
        }))
        .resolve("App", &["kratos"])
        .expect_err("invalid");
        let all = errs.join("\n");
        for field in [
            "destinations.App: the id",
            "destinations.App.kind: `smtp`",
            "destinations.App.url:",
            "destinations.App.sources[0]: `nope`",
            "destinations.App.headers.Hookgate-Event-Id:",
            "destinations.App.headers.Authorization: the value",
            "destinations.App.timeout:",
            "destinations.App.max_in_flight:",
            "destinations.App.sign.secret: must start with `whsec_`",
        ] {
            assert!(all.contains(field), "{field} missing from:\n{all}");
        }
        assert!(!all.contains("s3cret"), "{all}");
    }

    #[test]
    fn whsec_secrets_need_24_bytes_of_key() {
        assert!(whsec_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_ok());
        let short = whsec_key("whsec_c2hvcnQ=").expect_err("short");
        assert!(short.contains("5 bytes"), "{short}");
        assert!(whsec_key("whsec_!!").is_err());
    }

    #[test]
    fn hmac_takes_its_keys_and_other_schemes_refuse_them() {
        let ok = read(serde_json::json!({
            "kind": "http", "url": "http://a/b",
            "sign": {"scheme": "hmac", "header": "X-Hub-Signature-256", "prefix": "sha256=",
                     "secret": "0123456789abcdef0123"}
        }))
        .resolve("a", &[])
        .expect("valid");
        let Target::Http(h) = &ok.target else {
            panic!("http")
        };
        assert!(matches!(
            &h.sign,
            Signing::Hmac { algorithm: HmacAlgorithm::Sha256, encoding: Encoding::Hex, prefix, .. }
                if prefix == "sha256="
        ));
        let errs = read(serde_json::json!({
            "kind": "http", "url": "http://a/b",
            "sign": {"scheme": "abp_signature", "header": "X", "secret": "short"}
        }))
        .resolve("a", &[])
        .expect_err("invalid")
        .join("\n");
        assert!(
            errs.contains("destinations.a.sign.header: only `scheme: hmac`"),
            "{errs}"
        );
        assert!(
            errs.contains("destinations.a.sign.secret: is 5 bytes"),
            "{errs}"
        );
    }

    #[test]
    fn rabbitmq_defaults_follow_masstransit_and_keys_of_the_other_kind_are_refused() {
        let d = read(serde_json::json!({
            "kind": "rabbitmq", "url": "amqp://guest:secret-pass@rabbitmq:5672/%2f",
            "message_type": "urn:message:ExampleApp.Identities:KratosIdentityUpdated",
            "message": "kratos_identity_updated"
        }))
        .resolve("bus", &[])
        .expect("valid");
        let Target::Rabbitmq(t) = &d.target else {
            panic!("rabbitmq")
        };
        assert_eq!(t.exchange, "ExampleApp.Identities:KratosIdentityUpdated");
        assert_eq!(
            t.format,
            AmqpFormat::MassTransit {
                message_type: "urn:message:ExampleApp.Identities:KratosIdentityUpdated".into(),
                message: MassTransitMessage::KratosIdentityUpdated
            }
        );
        let nested = read(serde_json::json!({
            "kind": "rabbitmq", "url": "amqp://mq",
            "message_type": "urn:message:App.Contracts:Outer+Inner"
        }))
        .resolve("nested", &[])
        .expect("valid");
        let Target::Rabbitmq(n) = &nested.target else {
            panic!("rabbitmq")
        };
        assert_eq!(
            n.exchange, "App.Contracts:Outer-Inner",
            "MassTransit's name for it"
        );
        assert_eq!(d.retry, default_broker_retry());
        assert_eq!(d.retry[..4], [1, 2, 4, 8].map(Duration::from_secs));
        let total: Duration = d.retry.iter().sum();
        assert!(
            total >= Duration::from_secs(3 * 86_400) && d.retry.iter().all(|w| w.as_secs() <= 300)
        );
        assert!(!format!("{d:?}").contains("secret-pass"));
        let raw = read(serde_json::json!({
            "kind": "rabbitmq", "url": "amqps://mq/vh", "format": "raw", "exchange": "events"
        }))
        .resolve("raw", &[])
        .expect("valid");
        let Target::Rabbitmq(t) = &raw.target else {
            panic!("rabbitmq")
        };
        assert_eq!(
            t.format,
            AmqpFormat::Raw {
                routing_key: DEFAULT_ROUTING_KEY.into()
            }
        );
        let errs = read(serde_json::json!({
            "kind": "rabbitmq", "url": "http://mq", "message_type": "KratosIdentityUpdated",
            "message": "identity", "routing_key": "x", "sign": {"scheme": "none"}
        }))
        .resolve("bus", &[])
        .expect_err("invalid")
        .join("\n");
        for field in [
            "destinations.bus.url: `http://mq` is not an amqp://",
            "destinations.bus.message_type: `KratosIdentityUpdated`",
            "destinations.bus.message: `identity`",
            "destinations.bus.routing_key: only for `format: raw`",
            "destinations.bus.sign: only for kind: http",
        ] {
            assert!(errs.contains(field), "{field} missing from:\n{errs}");
        }
        let errs = read(serde_json::json!({
            "kind": "rabbitmq", "url": "amqp://mq", "format": "raw", "routing_key": "{tenant}"
        }))
        .resolve("raw", &[])
        .expect_err("invalid")
        .join("\n");
        assert!(
            errs.contains("destinations.raw.exchange: required"),
            "{errs}"
        );
        assert!(
            errs.contains("destinations.raw.routing_key: `{tenant}`"),
            "{errs}"
        );
        let errs = read(serde_json::json!({"kind": "http", "url": "http://a/b", "exchange": "x"}))
            .resolve("a", &[])
            .expect_err("invalid")
            .join("\n");
        assert!(
            errs.contains("destinations.a.exchange: only for kind: rabbitmq"),
            "{errs}"
        );
    }

    #[test]
    fn nats_streams_capture_the_subjects_fixed_prefix() {
        let d = read(serde_json::json!({
            "kind": "nats", "url": "nats://nats:4222", "subject": "hookgate.{source}.{event_type}",
            "stream": {"name": "HOOKGATE", "create": true}
        }))
        .resolve("stream", &[])
        .expect("valid");
        let Target::Nats(t) = &d.target else {
            panic!("nats")
        };
        assert_eq!(
            t.create_stream,
            Some(("HOOKGATE".to_string(), "hookgate.>".to_string()))
        );
        assert_eq!(d.retry, default_broker_retry());
        let errs = read(serde_json::json!({
            "kind": "nats", "url": "amqp://x", "subject": "{source}.a b",
            "stream": {"name": "a.b", "create": true}, "exchange": "x"
        }))
        .resolve("stream", &[])
        .expect_err("invalid")
        .join("\n");
        for field in [
            "destinations.stream.url: `amqp://x` is not an nats://",
            "destinations.stream.subject: `{source}.a b`",
            "destinations.stream.stream.create: the subject starts with a placeholder",
            "destinations.stream.stream.name: `a.b`",
            "destinations.stream.exchange: only for kind: rabbitmq",
        ] {
            assert!(errs.contains(field), "{field} missing from:\n{errs}");
        }
    }
}
