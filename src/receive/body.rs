//! The body: read once under the source's limit, and the content type it must have.

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http_body_util::BodyExt;

use crate::sources::SourceError;

/// Reads the whole body, refusing more than `limit` bytes without buffering them.
pub async fn read_body(
    mut body: Body,
    headers: &HeaderMap,
    limit: usize,
) -> Result<Bytes, SourceError> {
    let mut announced = None;
    if let Some(len) = headers.get(CONTENT_LENGTH) {
        match len.to_str().ok().and_then(|s| s.parse::<u64>().ok()) {
            Some(n) if n > limit as u64 => return Err(SourceError::TooLarge { limit }),
            Some(n) => announced = usize::try_from(n).ok(),
            None => {
                return Err(SourceError::BadRequest(
                    "the Content-Length header is not a number".into(),
                ));
            }
        }
    }
    // A body that arrives in one chunk is kept as it is (no copy). One that arrives in several
    // is copied once into a buffer sized from Content-Length, each chunk freed as it is copied,
    // so a request never holds its body twice.
    let mut first: Option<Bytes> = None;
    let mut buf = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            tracing::debug!(error = %e, "request body could not be read");
            SourceError::BadRequest("the request body could not be read in full".into())
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let so_far = first.as_ref().map_or(0, Bytes::len) + buf.len();
        if so_far + data.len() > limit {
            return Err(SourceError::TooLarge { limit });
        }
        match first.take() {
            None if buf.is_empty() => first = Some(data),
            None => buf.extend_from_slice(&data),
            Some(f) => {
                buf.reserve(announced.unwrap_or(0).max(f.len() + data.len()));
                buf.extend_from_slice(&f);
                buf.extend_from_slice(&data);
            }
        }
    }
    Ok(first.unwrap_or_else(|| buf.freeze()))
}

/// True for `application/json` and `application/*+json`, with any parameters.
pub fn require_json(headers: &HeaderMap) -> Result<(), SourceError> {
    let Some(value) = headers.get(CONTENT_TYPE) else {
        return Err(SourceError::UnsupportedMediaType(
            "a Content-Type of application/json is required".into(),
        ));
    };
    let essence = value
        .to_str()
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim();
    let ok = essence.eq_ignore_ascii_case("application/json")
        || (essence.len() > "application/+json".len()
            && essence
                .get(..12)
                .is_some_and(|p| p.eq_ignore_ascii_case("application/"))
            && essence
                .get(essence.len() - 5..)
                .is_some_and(|s| s.eq_ignore_ascii_case("+json")));
    if ok {
        Ok(())
    } else {
        Err(SourceError::UnsupportedMediaType(format!(
            "the Content-Type must be application/json, not {}",
            if essence.is_empty() { "empty" } else { essence }
        )))
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn ct(v: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(CONTENT_TYPE, HeaderValue::from_static(v));
        h
    }

    #[test]
    fn json_content_types_are_recognised_with_parameters() {
        for ok in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON",
            "application/cloudevents+json",
        ] {
            assert_eq!(require_json(&ct(ok)), Ok(()), "{ok}");
        }
        for bad in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "application/jsonx",
            "application/+json",
            "",
        ] {
            assert!(require_json(&ct(bad)).is_err(), "{bad}");
        }
        assert!(require_json(&HeaderMap::new()).is_err());
    }
}
