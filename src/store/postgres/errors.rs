//! Error messages of the driver, with their causes.

/// An error with its causes (`error connecting to server: Connection refused`): the driver's
/// own message leaves the reason to its source. None of them holds the URL or its password.
pub fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}
