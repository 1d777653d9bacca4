//! [`ChatJwt`]: the chat token returned by the Generate JWT Token API, with its expiry.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use crate::secret::Secret;

const INDIFFERENT: GeneralPurposeConfig = GeneralPurposeConfig::new()
    .with_decode_padding_mode(DecodePaddingMode::Indifferent)
    .with_decode_allow_trailing_bits(true);
const STANDARD: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, INDIFFERENT);
const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, INDIFFERENT);

/// A chat JWT (`jwt.<header>.<payload>.<signature>`) and the time it expires.
///
/// Hand [`ChatJwt::token`] to the chat client (browser widget or Rust SDK) as is, `jwt.` prefix
/// included. `Debug` never shows the token.
#[derive(Debug, Clone)]
pub struct ChatJwt {
    /// The token text, exactly as the service returned it.
    pub token: Secret,
    /// When it expires: the `exp` claim of its payload.
    pub expires_at: SystemTime,
}

impl ChatJwt {
    /// Parses a token the way the chat clients do: at least three dot-separated parts, the first
    /// literally `jwt`, and dot-part index 2 a base64 or base64url JSON payload (padding optional)
    /// with a numeric `exp` in seconds since the epoch. The signature is not checked.
    ///
    /// Returns `None` for anything else; the reason is never tied to the token text.
    pub fn parse(token: &str) -> Option<Self> {
        let mut parts = token.split('.');
        if parts.next()? != "jwt" {
            return None;
        }
        let payload = parts.nth(1)?;
        let bytes = STANDARD
            .decode(payload)
            .or_else(|_| URL_SAFE.decode(payload))
            .ok()?;
        let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        let exp = claims.get("exp")?;
        let secs = exp
            .as_u64()
            .or_else(|| exp.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))?;
        Some(Self {
            token: Secret::new(token),
            expires_at: UNIX_EPOCH.checked_add(Duration::from_secs(secs))?,
        })
    }

    /// Time left until expiry, measured from `now` (zero once expired).
    pub fn remaining(&self, now: SystemTime) -> Duration {
        self.expires_at.duration_since(now).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_exp_from_part_two_in_either_alphabet() {
        // {"exp":2000000000}
        let padded = "jwt.eyJhbGciOiJub25lIn0.eyJleHAiOjIwMDAwMDAwMDB9.sig";
        let jwt = ChatJwt::parse(padded).expect("parses");
        assert_eq!(
            jwt.expires_at,
            UNIX_EPOCH + Duration::from_secs(2_000_000_000)
        );
        assert!(!format!("{jwt:?}").contains("eyJ"));
        // {"exp":1,"n":"??>"} in base64url without padding has '-' or '_'
        let payload = URL_SAFE.encode(br#"{"exp":1,"n":"??>~~"}"#);
        assert!(payload.contains('_') || payload.contains('-'));
        let jwt = ChatJwt::parse(&format!("jwt.h.{}.s", payload.trim_end_matches('=')));
        assert_eq!(
            jwt.map(|j| j.expires_at),
            Some(UNIX_EPOCH + Duration::from_secs(1))
        );
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "jwt",
            "jwt.a",
            "xyz.a.eyJleHAiOjF9.s",
            "jwt.a.!!!.s",
            "jwt.a.e30.s",
        ] {
            assert!(ChatJwt::parse(bad).is_none(), "{bad}");
        }
    }
}
