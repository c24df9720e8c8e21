//! [`SourceError`]: why a request was refused before it was stored, and the problem+json answer
//! a kind gives unless it answers in its sender's own language.

use axum::response::Response;
use http::StatusCode;

use super::json::{MAX_JSON_DEPTH, valid_json};
use crate::http::problem::{FieldError, problem, problem_with};

/// Why a request was refused before it was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceError {
    /// 413: the body is larger than the source's limit.
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// 400: the body could not be read (or its length header is bad).
    BadRequest(String),
    /// 415: the content type is not JSON.
    UnsupportedMediaType(String),
    /// 400: the body is not JSON.
    Malformed(String),
    /// 422: JSON that does not fit the sender's format.
    Invalid {
        /// The kind's own number for this refusal, for kinds whose senders show numbered
        /// messages (Kratos); `None` for "a field does not fit".
        code: Option<u32>,
        /// The fields that are wrong.
        errors: Vec<FieldError>,
    },
}

impl SourceError {
    /// A short description for logs above debug: where the payload is wrong, never a value
    /// from the body. The pointers name keys as the sender wrote them; a key that is not a
    /// plain name (over 64 characters, or anything but letters, digits and `_-.$@`) shows as
    /// `*`, so a sender cannot write into the log line.
    pub fn summary(&self) -> String {
        match self {
            SourceError::TooLarge { limit } => format!("body over {limit} bytes"),
            SourceError::BadRequest(_) => "body unreadable".into(),
            SourceError::UnsupportedMediaType(_) => "content type is not JSON".into(),
            SourceError::Malformed(_) => "body is not valid JSON".into(),
            SourceError::Invalid { errors, .. } => {
                let mut out = String::from("payload does not fit at ");
                for (i, e) in errors.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    for segment in e.pointer.split('/').skip(1) {
                        out.push('/');
                        let plain = segment.len() <= 64
                            && segment
                                .chars()
                                .all(|c| c.is_ascii_alphanumeric() || "_-.$@~".contains(c));
                        out.push_str(if plain { segment } else { "*" });
                    }
                }
                out
            }
        }
    }

    /// 400 for a body that is not JSON; 422 for JSON nested deeper than [`MAX_JSON_DEPTH`]
    /// (it may be valid JSON, but no sender's format comes near that depth, and parsing it
    /// further would only spend stack).
    pub fn malformed(e: &serde_json::Error) -> Self {
        if e.to_string().starts_with("recursion limit exceeded") {
            SourceError::too_deep()
        } else {
            SourceError::Malformed(format!("the body is not valid JSON: {e}"))
        }
    }

    /// The 422 for JSON nested deeper than [`MAX_JSON_DEPTH`].
    pub(crate) fn too_deep() -> Self {
        SourceError::invalid(
            "",
            format!("the JSON is nested deeper than {MAX_JSON_DEPTH} levels"),
        )
    }

    /// A 422 for one field.
    pub fn invalid(pointer: impl Into<String>, detail: impl Into<String>) -> Self {
        SourceError::Invalid {
            code: None,
            errors: vec![FieldError {
                pointer: pointer.into(),
                detail: detail.into(),
            }],
        }
    }

    /// Turns a deserialization error into 400 (bad JSON) or 422 (JSON that does not fit),
    /// naming the field with a JSON pointer under `base`.
    pub fn from_json(
        body: &[u8],
        base: &str,
        e: serde_path_to_error::Error<serde_json::Error>,
    ) -> Self {
        let path = e.path().clone();
        let inner = e.into_inner();
        // A number past f64's range is valid JSON (RFC 8259 sets no limit) that does not fit
        // the field: 422 naming it, like any other value that does not fit.
        let out_of_range = inner.to_string().starts_with("number out of range");
        if (!out_of_range && (inner.is_syntax() || inner.is_eof())) || !valid_json(body) {
            return SourceError::malformed(&inner);
        }
        let mut pointer = base.to_string();
        for seg in path.iter() {
            use serde_path_to_error::Segment;
            match seg {
                Segment::Seq { index } => pointer.push_str(&format!("/{index}")),
                Segment::Map { key } => {
                    pointer.push('/');
                    pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
                }
                Segment::Enum { variant } => {
                    pointer.push('/');
                    pointer.push_str(variant);
                }
                Segment::Unknown => {}
            }
        }
        let msg = inner.to_string();
        let msg = msg
            .rsplit_once(" at line ")
            .map_or(msg.as_str(), |(m, _)| m);
        if let Some(field) = msg
            .strip_prefix("missing field `")
            .and_then(|r| r.strip_suffix('`'))
        {
            pointer.push('/');
            pointer.push_str(field);
            return SourceError::invalid(pointer, "is required");
        }
        SourceError::invalid(pointer, msg.to_string())
    }
}

impl SourceError {
    /// The problem+json answer ([`super::Kind::refused`] unless a kind answers otherwise).
    pub fn into_problem(self) -> Response {
        match self {
            SourceError::TooLarge { limit } => problem(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Content Too Large",
                &format!("the body is larger than this source's limit of {limit} bytes"),
            ),
            SourceError::BadRequest(d) | SourceError::Malformed(d) => {
                problem(StatusCode::BAD_REQUEST, "Bad Request", &d)
            }
            SourceError::UnsupportedMediaType(d) => problem(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Unsupported Media Type",
                &d,
            ),
            SourceError::Invalid { errors, .. } => problem_with(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Unprocessable Content",
                "the payload does not fit the sender's format",
                &errors,
            ),
        }
    }
}
