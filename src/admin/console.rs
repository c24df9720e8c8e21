//! The console: a few static files, built into the binary, that make a web page over the admin
//! API (`/console` on the admin listener).
//!
//! The files are served without the admin token: they hold nothing secret, and the page asks
//! for the token (kept in the browser session only) and sends it with every API call. Webhook
//! payloads are attacker-controlled and the page shows them, so every answer here carries a
//! strict Content-Security-Policy (scripts and styles from this origin only, no inline code, no
//! framing), and the script builds the page from text nodes, never from markup.
//!
//! Caching: the page is revalidated every time (`no-cache` with an `ETag`), and it names its
//! script and style sheet with a digest of their contents (`app.js?v=…`), which may then be
//! kept for a year: a new hookgate's page asks for new URLs.
//!
//! # Layout
//! - this file: the routes, the headers, the digests.
//! - `console/index.html`, `console/app.js`, `console/app.css`: the page, its script, its
//!   styles (plain HTML, CSS and JavaScript; no build step).

use std::sync::LazyLock;

use axum::Router;
use axum::extract::RawQuery;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use http::{HeaderMap, HeaderValue, StatusCode};
use sha2::{Digest as _, Sha256};

/// What the page may load and do: only this origin's script, styles and API, images from this
/// origin or inline `data:`; no plugins, no framing, no `<base>`, forms only to this origin.
pub const CONTENT_SECURITY_POLICY_VALUE: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; connect-src 'self'; img-src 'self' data:; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'";

/// The page, with `{{app.js}}` and `{{app.css}}` where the versioned URLs go.
const INDEX_TEMPLATE: &str = include_str!("console/index.html");
const APP_JS: &str = include_str!("console/app.js");
const APP_CSS: &str = include_str!("console/app.css");

/// One file as served.
struct Asset {
    body: String,
    content_type: &'static str,
    /// `"<16 hex digits>"`: the first 8 bytes of the SHA-256 of the body, quoted.
    etag: String,
}

impl Asset {
    fn new(body: String, content_type: &'static str) -> Self {
        let digest = Sha256::digest(body.as_bytes());
        let etag = format!("\"{}\"", hex::encode(digest.get(..8).unwrap_or_default()));
        Self {
            body,
            content_type,
            etag,
        }
    }

    /// The digest without quotes, for `?v=`.
    fn version(&self) -> &str {
        self.etag.trim_matches('"')
    }
}

/// The three files, read once.
struct Assets {
    index: Asset,
    js: Asset,
    css: Asset,
}

static ASSETS: LazyLock<Assets> = LazyLock::new(|| {
    let js = Asset::new(APP_JS.to_string(), "text/javascript; charset=utf-8");
    let css = Asset::new(APP_CSS.to_string(), "text/css; charset=utf-8");
    let index = INDEX_TEMPLATE
        .replace("{{app.js}}", &format!("/console/app.js?v={}", js.version()))
        .replace(
            "{{app.css}}",
            &format!("/console/app.css?v={}", css.version()),
        );
    Assets {
        index: Asset::new(index, "text/html; charset=utf-8"),
        js,
        css,
    }
});

/// The console's routes (no token: see the module doc).
pub(super) fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/console", get(index))
        .route("/console/", get(index))
        .route("/console/app.js", get(js))
        .route("/console/app.css", get(css))
}

async fn index(headers: HeaderMap) -> Response {
    serve(&ASSETS.index, &headers, false)
}

async fn js(headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    let current = is_current(query.as_deref(), &ASSETS.js);
    serve(&ASSETS.js, &headers, current)
}

async fn css(headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    let current = is_current(query.as_deref(), &ASSETS.css);
    serve(&ASSETS.css, &headers, current)
}

/// Whether the query names this very version (`v=<digest>`): only then may a cache keep the
/// answer for good.
fn is_current(query: Option<&str>, asset: &Asset) -> bool {
    query.is_some_and(|q| {
        q.split('&')
            .any(|kv| kv.strip_prefix("v=") == Some(asset.version()))
    })
}

/// `asset` with the console's headers; 304 when the client has this version already.
fn serve(asset: &Asset, request: &HeaderMap, immutable: bool) -> Response {
    let fresh = request
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| {
            let tag = tag.trim();
            tag == "*" || tag.trim_start_matches("W/") == asset.etag
        });
    let mut res = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(CONTENT_TYPE, HeaderValue::from_static(asset.content_type))],
            asset.body.clone(),
        )
            .into_response()
    };
    let h = res.headers_mut();
    if let Ok(tag) = HeaderValue::from_str(&asset.etag) {
        h.insert(ETAG, tag);
    }
    h.insert(
        CACHE_CONTROL,
        HeaderValue::from_static(if immutable {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        }),
    );
    h.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY_VALUE),
    );
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_names_its_files_by_their_current_digest() {
        let page = &ASSETS.index.body;
        assert!(page.contains(&format!("/console/app.js?v={}", ASSETS.js.version())));
        assert!(page.contains(&format!("/console/app.css?v={}", ASSETS.css.version())));
        assert!(!page.contains("{{"), "a placeholder is left in the page");
        assert_eq!(ASSETS.js.version().len(), 16);
    }

    #[test]
    fn only_the_current_version_may_be_cached_for_good() {
        let v = format!("v={}", ASSETS.js.version());
        assert!(is_current(Some(&v), &ASSETS.js));
        assert!(!is_current(Some("v=0000000000000000"), &ASSETS.js));
        assert!(!is_current(None, &ASSETS.js));
    }

    #[test]
    fn the_page_has_no_inline_script_or_style() {
        // The policy would block them: the page would break, not the policy.
        let page = INDEX_TEMPLATE.to_ascii_lowercase();
        assert!(!page.contains("<style"));
        assert!(!page.contains(" style="));
        let handler = page.match_indices(" on").any(|(at, _)| {
            let rest = &page[at + 3..];
            let name = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
            name > 0 && rest.as_bytes().get(name) == Some(&b'=')
        });
        assert!(!handler, "an inline event handler");
        for script in page.split("<script").skip(1) {
            assert!(script.trim_start().starts_with("src="), "an inline script");
        }
    }

    #[test]
    fn the_script_never_parses_markup() {
        // Payloads are attacker-controlled: the page is built from text nodes only.
        for sink in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
            "new Function",
        ] {
            assert!(!APP_JS.contains(sink), "app.js uses {sink}");
        }
    }
}
