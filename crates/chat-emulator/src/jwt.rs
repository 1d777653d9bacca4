//! Chat tokens: `jwt.` + an HS256 JWS whose parts are valid in standard base64 *and* base64url.
//!
//! The official SDK decodes the payload with the browser's `atob` (standard alphabet), while
//! JWT libraries expect base64url. Both accept the same text when it contains neither `+`/`/`
//! nor `-`/`_` and needs no `=` padding. For ASCII input a base64 character can only be 62 or
//! 63 when the *third* byte of a 3-byte group is `>`, `?`, `~` or DEL (the high bit of every
//! ASCII byte is 0, which caps the other three 6-bit groups below 62). So the JSON is written
//! ASCII-only with those characters escaped as `\u00XX`, and padded with insignificant spaces
//! to a multiple of 3 bytes: the encoding then has no `+`, `/` or `=`.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use ring::hmac;
use serde::{Deserialize, Serialize};

/// The claims of a chat token.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Claims {
    pub(crate) iss: String,
    pub(crate) sub: String,
    pub(crate) exp: u64,
    pub(crate) iat: u64,
    pub(crate) jti: String,
    pub(crate) integration_id: String,
    pub(crate) account_id: String,
    pub(crate) customer_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) customer_name: Option<String>,
    pub(crate) verified_customer: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) customer_identifiers: Option<BTreeMap<String, Vec<String>>>,
    /// Revocation generation: tokens below the emulator's current minimum are refused.
    #[serde(rename = "gen", default)]
    pub(crate) generation: u64,
}

impl std::fmt::Debug for Claims {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Claims")
            .field("exp", &self.exp)
            .field("integration_id", &self.integration_id)
            .field("customer_id", &self.customer_id)
            .field("verified_customer", &self.verified_customer)
            .finish_non_exhaustive()
    }
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenError {
    /// Not `jwt.` + three parts, or undecodable.
    Malformed,
    /// The signature does not match.
    BadSignature,
    /// `exp` is not in the future.
    Expired,
}

impl TokenError {
    pub(crate) fn detail(self) -> &'static str {
        match self {
            Self::Malformed => "Invalid token",
            Self::BadSignature => "Invalid token signature",
            Self::Expired => "Token expired",
        }
    }
}

/// Signs and verifies chat tokens with a per-emulator random key.
pub(crate) struct Signer {
    key: hmac::Key,
}

const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

impl Signer {
    pub(crate) fn new() -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, &crate::util::random_bytes(32)),
        }
    }

    /// `jwt.` + header.payload.signature.
    pub(crate) fn mint(&self, claims: &Claims) -> String {
        let json = serde_json::to_string(claims).unwrap_or_else(|_| "{}".to_owned());
        let signing_input = format!("{}.{}", encode_part(HEADER), encode_part(&json));
        let tag = hmac::sign(&self.key, signing_input.as_bytes());
        format!(
            "jwt.{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(tag.as_ref())
        )
    }

    /// Checks prefix, form, signature and `exp` (against `now`, Unix seconds).
    pub(crate) fn verify(&self, token: &str, now: u64) -> Result<Claims, TokenError> {
        let rest = token.strip_prefix("jwt.").ok_or(TokenError::Malformed)?;
        let mut parts = rest.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| TokenError::Malformed)?;
        let signing_input = &rest[..header.len() + 1 + payload.len()];
        hmac::verify(&self.key, signing_input.as_bytes(), &signature)
            .map_err(|_| TokenError::BadSignature)?;
        let bytes = decode_part(payload).ok_or(TokenError::Malformed)?;
        let claims: Claims = serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)?;
        if claims.exp <= now {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

fn decode_part(part: &str) -> Option<Vec<u8>> {
    STANDARD_NO_PAD
        .decode(part)
        .or_else(|_| URL_SAFE_NO_PAD.decode(part))
        .or_else(|_| STANDARD.decode(part))
        .ok()
}

/// Encodes JSON so that the text is the same in standard base64 and base64url (see module doc).
pub(crate) fn encode_part(json: &str) -> String {
    let mut ascii = String::with_capacity(json.len() + 8);
    for c in json.chars() {
        match c {
            '>' | '?' | '~' | '\u{7f}' => ascii.push_str(&format!("\\u{:04x}", c as u32)),
            c if c.is_ascii() => ascii.push(c),
            c => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    ascii.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    // Insignificant whitespace before the closing brace makes the length a multiple of 3.
    if ascii.ends_with('}') {
        ascii.pop();
        while (ascii.len() + 1) % 3 != 0 {
            ascii.push(' ');
        }
        ascii.push('}');
    }
    STANDARD.encode(ascii.as_bytes())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn claims(name: &str) -> Claims {
        Claims {
            iss: "chat-emulator".into(),
            sub: "userchatIntegration".into(),
            exp: 2_000_000_000,
            iat: 1_700_000_000,
            jti: "j".into(),
            integration_id: "i".into(),
            account_id: "A".into(),
            customer_id: "c>?~".into(),
            customer_name: Some(name.into()),
            verified_customer: true,
            customer_identifiers: None,
            generation: 0,
        }
    }

    #[test]
    fn mint_then_verify() {
        let signer = Signer::new();
        let token = signer.mint(&claims("Zoë ~?>"));
        assert!(token.starts_with("jwt."));
        let back = signer.verify(&token, 1_800_000_000).unwrap();
        assert_eq!(back, claims("Zoë ~?>"));
        assert_eq!(
            signer.verify(&token, 2_000_000_000),
            Err(TokenError::Expired)
        );
        let other = Signer::new();
        assert_eq!(other.verify(&token, 0), Err(TokenError::BadSignature));
        assert_eq!(signer.verify("abc", 0), Err(TokenError::Malformed));
    }

    proptest! {
        #[test]
        fn payload_is_strict_standard_base64(name in ".{0,80}", id in ".{1,40}") {
            let mut c = claims(&name);
            c.customer_id = id;
            let token = Signer::new().mint(&c);
            let payload = token.split('.').nth(2).unwrap();
            prop_assert!(!payload.contains(['+', '/', '-', '_', '=']));
            let bytes = STANDARD.decode(payload).unwrap();
            let back: Claims = serde_json::from_slice(&bytes).unwrap();
            prop_assert_eq!(back, c);
        }
    }
}
