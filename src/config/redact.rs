//! Hiding credentials in URLs shown in logs, errors and `Debug` output.

/// Hides the password part of `scheme://user:password@host/...`, and a `password=` parameter
/// of its query.
pub fn redact_url(url: &str) -> String {
    let shown = redact_userinfo(url);
    let Some((base, query)) = shown.split_once('?') else {
        return shown;
    };
    if !query.split('&').any(|p| p.starts_with("password=")) {
        return shown;
    }
    let query: Vec<&str> = query
        .split('&')
        .map(|p| {
            if p.starts_with("password=") {
                "password=[redacted]"
            } else {
                p
            }
        })
        .collect();
    format!("{base}?{}", query.join("&"))
}

/// Hides the password part of `scheme://user:password@host/...`.
fn redact_userinfo(url: &str) -> String {
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
