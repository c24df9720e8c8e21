//! Error answers: RFC 9457 `application/problem+json`, the format of every answer hookgate
//! writes itself (a kind may answer its own senders in their language: `sources::kratos`).

use axum::response::{IntoResponse, Response};
use http::header::{CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderValue, StatusCode};
use serde::Serialize;
use utoipa::ToSchema;

/// The content type of problem answers.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// One field that does not fit: a JSON pointer into the body and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// RFC 6901 pointer, e.g. `/data/connectionId` (empty for the whole body).
    pub pointer: String,
    /// What is wrong, in words.
    pub detail: String,
}

/// An RFC 9457 problem: what every error answer of hookgate's own carries, as
/// `application/problem+json` (also the schema of those answers in the admin API's OpenAPI
/// description).
#[derive(Serialize, ToSchema)]
pub struct Problem<'a> {
    /// Always `about:blank`: the status says what kind of problem it is.
    #[serde(rename = "type")]
    #[schema(examples("about:blank"))]
    kind: &'static str,
    /// The status's reason phrase, such as `Bad Request`.
    title: &'a str,
    /// The HTTP status code, as in the status line.
    #[schema(minimum = 400, maximum = 599)]
    status: u16,
    /// What is wrong and, where it helps, what to do about it.
    detail: &'a str,
    /// The fields of the body that do not fit (only when there are any).
    #[serde(skip_serializing_if = "<[FieldError]>::is_empty")]
    errors: &'a [FieldError],
}

/// A problem answer with no field errors.
pub fn problem(status: StatusCode, title: &str, detail: &str) -> Response {
    problem_with(status, title, detail, &[])
}

/// A problem answer listing the fields that are wrong.
pub fn problem_with(
    status: StatusCode,
    title: &str,
    detail: &str,
    errors: &[FieldError],
) -> Response {
    let body = Problem {
        kind: "about:blank",
        title,
        status: status.as_u16(),
        detail,
        errors,
    };
    json_response(status, PROBLEM_JSON, &body)
}

/// 503 with `Retry-After`, for when the store cannot take a write or the server is at its limit.
pub fn unavailable(detail: &str, retry_after_secs: u32) -> Response {
    let mut res = problem(
        StatusCode::SERVICE_UNAVAILABLE,
        "Service Unavailable",
        detail,
    );
    res.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(retry_after_secs));
    res
}

/// Serializes `body` with the given status and content type.
pub fn json_response<T: Serialize>(
    status: StatusCode,
    content_type: &'static str,
    body: &T,
) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => (
            status,
            [(CONTENT_TYPE, HeaderValue::from_static(content_type))],
            bytes,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "an answer could not be serialized");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn body_of(res: Response) -> serde_json::Value {
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn problems_carry_status_title_and_field_errors() {
        let res = problem_with(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Unprocessable Content",
            "bad",
            &[FieldError {
                pointer: "/data/connectionId".into(),
                detail: "missing".into(),
            }],
        );
        assert_eq!(res.headers()[CONTENT_TYPE], PROBLEM_JSON);
        let body = body_of(res).await;
        assert_eq!(body["status"], 422);
        assert_eq!(body["errors"][0]["pointer"], "/data/connectionId");
    }
}
