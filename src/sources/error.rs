//! [`SourceError`]: why a request was refused before it was stored, and the problem+json answer
//! a kind gives unless it answers in its sender's own language. (Its constructors from JSON
//! parse errors are in [`super::parse`].)

use axum::response::Response;
use http::StatusCode;

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
        /// What the sender's operator most likely got wrong, in our words (never a value from
        /// the body): shown with the answer and logged.
        hint: Option<&'static str>,
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
            SourceError::Invalid { errors, hint, .. } => {
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
                if let Some(hint) = hint {
                    out.push_str(" (");
                    out.push_str(hint);
                    out.push(')');
                }
                out
            }
        }
    }

    /// A 422 for one field.
    pub fn invalid(pointer: impl Into<String>, detail: impl Into<String>) -> Self {
        SourceError::Invalid {
            code: None,
            errors: vec![FieldError {
                pointer: pointer.into(),
                detail: detail.into(),
            }],
            hint: None,
        }
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
