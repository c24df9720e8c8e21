//! JSON helpers every kind's parser uses: depth limit, object check, parsing that names the
//! failing field, dedupe digests, and ranges of the body that a projection points at.

use serde::de::IgnoredAny;
use sha2::{Digest, Sha256};

use super::error::SourceError;

/// The deepest nesting of arrays and objects a body may have: serde_json's own recursion limit,
/// which every parse of a body (and of a stored body, later) goes through.
pub const MAX_JSON_DEPTH: usize = 128;

/// Refuses valid JSON that is not an object where an object is expected, with 422 at `pointer`.
///
/// serde's derived structs also read a JSON array, field by field in order; no sender writes
/// its events that way, and accepting `["id","type",…]` as an event would store what is not the
/// sender's format. Input that is not JSON at all is left to the parser (400).
pub fn require_object(input: &[u8], pointer: &str) -> Result<(), SourceError> {
    let first = input
        .iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
    if first == Some(&b'{') || !valid_json(input) {
        return Ok(());
    }
    Err(SourceError::invalid(pointer, "must be a JSON object"))
}

/// Deserializes `input` as `T`. The fast path is plain serde_json; only when that fails is the
/// input parsed again, tracking the path, to name the field in the 400/422 answer.
pub fn from_json<'a, T: serde::Deserialize<'a>>(
    input: &'a [u8],
    base: &str,
) -> Result<T, SourceError> {
    require_object(input, base)?;
    match serde_json::from_slice::<T>(input) {
        Ok(v) => Ok(v),
        Err(first) => {
            let mut de = serde_json::Deserializer::from_slice(input);
            match serde_path_to_error::deserialize::<_, T>(&mut de) {
                Err(e) => Err(SourceError::from_json(input, base, e)),
                // Only trailing bytes after the value make the first parse fail and this one pass.
                Ok(_) => Err(SourceError::malformed(&first)),
            }
        }
    }
}

/// Refuses a body whose arrays and objects nest deeper than [`MAX_JSON_DEPTH`], with 422.
///
/// serde_json limits the depth of what it deserializes, but not of what it skips (unknown fields,
/// raw values), and every format here has places where any JSON is allowed: without this check a
/// body could be stored that no consumer's JSON parser would read back. One pass over the bytes,
/// no allocation; strings are skipped so brackets inside them do not count.
pub fn check_depth(body: &[u8]) -> Result<(), SourceError> {
    let mut depth = 0usize;
    let mut bytes = body.iter();
    while let Some(&b) = bytes.next() {
        match b {
            b'"' => loop {
                match bytes.next() {
                    Some(b'\\') => {
                        bytes.next();
                    }
                    Some(b'"') | None => break,
                    Some(_) => {}
                }
            },
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_JSON_DEPTH {
                    // Broken JSON stays a 400 however deep it is (skipping values has no depth
                    // limit in serde_json, so this parse is safe).
                    return Err(match serde_json::from_slice::<IgnoredAny>(body) {
                        Err(e) => SourceError::malformed(&e),
                        Ok(_) => SourceError::too_deep(),
                    });
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Whether `input` is one JSON value (of any depth: serde_json skips values without recursing).
/// For error paths, where a parse into a type failed and the answer is 400 or 422.
pub fn valid_json(input: &[u8]) -> bool {
    serde_json::from_slice::<IgnoredAny>(input).is_ok()
}

/// The reference tokens of an RFC 6901 pointer, unescaped (`~1` → `/`, `~0` → `~`), for the
/// pointers a configuration names (`kind: json`, Kratos `respond`). `example` is a pointer of
/// the caller's kind, for the error of one without its leading `/`.
///
/// # Errors
/// Why `pointer` is not one, in words naming it.
pub fn pointer_tokens(pointer: &str, example: &str) -> Result<Vec<String>, String> {
    let Some(rest) = pointer.strip_prefix('/') else {
        return Err(format!(
            "`{pointer}` is not a JSON pointer: it must start with `/`, like {example}"
        ));
    };
    rest.split('/')
        .map(|token| {
            let mut out = String::with_capacity(token.len());
            let mut chars = token.chars();
            while let Some(c) = chars.next() {
                if c != '~' {
                    out.push(c);
                    continue;
                }
                match chars.next() {
                    Some('0') => out.push('~'),
                    Some('1') => out.push('/'),
                    _ => {
                        return Err(format!(
                            "`{pointer}` is not a JSON pointer: `~` must be followed by 0 (`~`) or 1 (`/`)"
                        ));
                    }
                }
            }
            Ok(out)
        })
        .collect()
}

/// SHA-256 of the body, as a dedupe key for senders that give no id.
pub fn body_digest(body: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(body)))
}

/// Where in `body` a `&str` parsed out of it lies, so a projection can point into the stored
/// body instead of keeping a second copy. `None` if `part` is not inside `body`.
pub fn sub_range(body: &[u8], part: &str) -> Option<std::ops::Range<usize>> {
    let start = (part.as_ptr() as usize).checked_sub(body.as_ptr() as usize)?;
    let end = start.checked_add(part.len())?;
    (end <= body.len()).then_some(start..end)
}

/// The JSON side of [`SourceError`]: turning parse errors into 400 or 422.
impl SourceError {
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
