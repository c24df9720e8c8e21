//! Random values of registered hooks, from the OS CSPRNG (`getrandom`): hook ids (128 bits) and
//! the secrets generated for `"secrets": "generate"`, in the format each scheme expects.

use base64::Engine as _;
use secrecy::SecretString;

use crate::config::Scheme;

/// Bytes of randomness in a generated secret (256 bits).
const SECRET_BYTES: usize = 32;

/// `n` random bytes from the OS.
///
/// # Errors
/// When the OS gives none (then nothing is registered).
fn random<const N: usize>() -> Result<[u8; N], getrandom::Error> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf)?;
    Ok(buf)
}

/// A new hook id: 128 random bits as 32 lower-case hex digits.
///
/// # Errors
/// When the OS random source fails.
pub(super) fn hook_id() -> Result<String, getrandom::Error> {
    Ok(hex::encode(random::<16>()?))
}

/// A strong secret for `scheme`, in the form its senders use; `None` for a scheme that takes no
/// secret (`none`).
///
/// **A new scheme is one arm here** (the match is exhaustive, so adding a [`Scheme`] variant
/// does not compile until it has one).
///
/// # Errors
/// When the OS random source fails.
pub(super) fn generate(scheme: Scheme) -> Result<Option<SecretString>, getrandom::Error> {
    let bytes = random::<SECRET_BYTES>()?;
    let secret = match scheme {
        // A token that travels in a header: hex, no character a proxy could mangle.
        Scheme::ApiKey | Scheme::Bearer => hex::encode(bytes),
        // `user:password`; the user is fixed, the password random.
        Scheme::Basic => format!("hookgate:{}", hex::encode(bytes)),
        // ABP's subscription secrets are `whs_` + a random string; the HMAC key is the whole
        // string's UTF-8 bytes.
        Scheme::AbpSignature => format!(
            "whs_{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
        ),
        // Standard Webhooks' own form: `whsec_` + the standard base64 of the key bytes.
        Scheme::StandardWebhooks => format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        ),
        // GitHub, Shopify and Slack show their signing secrets as plain strings; the HMAC key
        // is the string's UTF-8 bytes, so hex keeps it easy to paste anywhere.
        Scheme::Hmac => hex::encode(bytes),
        Scheme::None => return Ok(None),
    };
    Ok(Some(SecretString::from(secret)))
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret as _;

    use super::*;

    #[test]
    fn ids_are_32_hex_digits_and_differ() {
        let a = hook_id().unwrap();
        let b = hook_id().unwrap();
        assert!(crate::store::hooks::is_hook_id(&a), "{a}");
        assert_ne!(a, b);
    }

    #[test]
    fn each_scheme_gets_a_secret_in_its_own_form() {
        let get = |s| generate(s).unwrap().unwrap().expose_secret().to_string();
        let bearer = get(Scheme::Bearer);
        assert_eq!(bearer.len(), 64);
        assert!(bearer.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(bearer, get(Scheme::Bearer));
        assert_eq!(get(Scheme::ApiKey).len(), 64);
        assert!(get(Scheme::Basic).starts_with("hookgate:"));
        let abp = get(Scheme::AbpSignature);
        assert!(abp.starts_with("whs_") && abp.len() == 4 + 43, "{abp}");
        let sw = get(Scheme::StandardWebhooks);
        let key = sw.strip_prefix("whsec_").expect("whsec_ prefix");
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(key)
            .unwrap();
        assert_eq!(decoded.len(), SECRET_BYTES, "{sw}");
        assert_eq!(get(Scheme::Hmac).len(), 64);
        assert!(generate(Scheme::None).unwrap().is_none());
    }
}
