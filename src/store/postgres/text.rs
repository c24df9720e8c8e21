//! PostgreSQL text cannot hold a NUL character, which a sender's JSON may put in any string
//! (`"\u0000"`), and which SQLite stores as it is. So the text columns taken from a payload
//! (`event_type`, `dedupe_key`, `sender_id`, a projection's `key`, `scope` and `state`) hold an
//! escaped form: NUL as U+0001 `0`, U+0001 as U+0001 `1`, every other character as it is. The
//! mapping is one-to-one (equality, the dedupe key's uniqueness and lookups keep their meaning)
//! and leaves every string without those two characters unchanged. Every value written to or
//! compared with such a column goes through [`enc`], every value read through [`dec`].
//! (`attrs` and `headers` are JSON text, where NUL is already written `\u0000`.)

use std::borrow::Cow;

const ESCAPE: char = '\u{1}';

/// The stored form of `s`.
pub(super) fn enc(s: &str) -> Cow<'_, str> {
    if !s.contains(['\0', ESCAPE]) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 4);
    for c in s.chars() {
        match c {
            '\0' => out.extend([ESCAPE, '0']),
            ESCAPE => out.extend([ESCAPE, '1']),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// [`enc`] of an optional value.
pub(super) fn enc_opt(s: Option<&str>) -> Option<Cow<'_, str>> {
    s.map(enc)
}

/// The value a stored form holds (an escape not followed by `0` or `1`, which [`enc`] never
/// writes, is kept as it is).
pub(super) fn dec(s: String) -> String {
    if !s.contains(ESCAPE) {
        return s;
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ESCAPE {
            match chars.peek() {
                Some('0') => {
                    chars.next();
                    out.push('\0');
                }
                Some('1') => {
                    chars.next();
                    out.push(ESCAPE);
                }
                _ => out.push(c),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// [`dec`] of an optional value.
pub(super) fn dec_opt(s: Option<String>) -> Option<String> {
    s.map(dec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_escape_round_trips_and_is_one_to_one() {
        let values = [
            "",
            "plain",
            "\0",
            "\u{1}",
            "\u{1}0",
            "a\0b\u{1}c",
            "\0\0",
            "\u{1}\u{1}1",
            "é\0ü",
        ];
        for v in values {
            assert!(!enc(v).contains('\0'), "{v:?}");
            assert_eq!(dec(enc(v).into_owned()), v, "{v:?}");
        }
        let mut stored: Vec<String> = values.iter().map(|v| enc(v).into_owned()).collect();
        stored.sort();
        stored.dedup();
        assert_eq!(
            stored.len(),
            values.len(),
            "no two values share a stored form"
        );
        assert!(matches!(enc("plain"), Cow::Borrowed(_)));
    }
}
