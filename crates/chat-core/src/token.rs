//! The chat JWT: `jwt.` + a JWS compact token, of which the client reads only `exp`.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use crate::ChatError;

const INDIFFERENT: GeneralPurposeConfig = GeneralPurposeConfig::new()
    .with_decode_padding_mode(DecodePaddingMode::Indifferent)
    .with_decode_allow_trailing_bits(true);
const STANDARD: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, INDIFFERENT);
const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, INDIFFERENT);

/// The latest `exp` kept: 9999-12-31T23:59:59Z. Later claims are read as this, so that the
/// expiry is always a representable wall-clock time (`UNIX_EPOCH + u64::MAX` seconds is not,
/// and adding it panicked; found by the `token` fuzz target).
pub const MAX_EXP_UNIX: u64 = 253_402_300_799;

/// A chat JWT as issued by the Generate JWT Token API, with its expiry read out.
///
/// Cloning is cheap (the text is shared). `Debug` and `Display` never show the token text:
/// it is a bearer credential.
///
/// ```
/// use chat_core::Token;
/// // header {"alg":"none"}, payload {"exp":2000000000}
/// let token = Token::parse("jwt.eyJhbGciOiJub25lIn0.eyJleHAiOjIwMDAwMDAwMDB9.sig").unwrap();
/// assert_eq!(token.expires_at_unix(), 2_000_000_000);
/// assert!(!format!("{token:?}").contains("eyJ"));
/// ```
#[derive(Clone)]
pub struct Token {
    text: Arc<str>,
    exp_unix: u64,
}

impl Token {
    /// Parses a token as the official SDK does, and a little more leniently.
    ///
    /// The text must split on `.` into at least three parts, the first of them literally `jwt`
    /// (else ACS-322 "JWT Token should have valid format"). Part 2 (the JWS payload) is decoded
    /// as base64 or base64url, padded or not, and its `exp` claim (seconds since the epoch) is
    /// read; failing that, ACS-305. Whether the token is still live is checked by the session,
    /// which knows the time.
    pub fn parse(text: &str) -> Result<Self, ChatError> {
        let mut parts = text.split('.');
        if parts.next() != Some("jwt") {
            return Err(ChatError::constraint("JWT Token should have valid format"));
        }
        let _header = parts.next();
        let Some(payload) = parts.next() else {
            return Err(ChatError::constraint("JWT Token should have valid format"));
        };
        let exp_unix = read_exp(payload).ok_or_else(|| ChatError::InvalidToken {
            detail: Some("its exp claim cannot be read".into()),
        })?;
        Ok(Self {
            text: Arc::from(text),
            exp_unix,
        })
    }

    /// The token text, for the `Authorization: Bearer` header. Handle with care.
    pub fn expose(&self) -> &str {
        &self.text
    }

    /// The `exp` claim, in whole seconds since the Unix epoch (fractions are dropped, and a
    /// claim past [`MAX_EXP_UNIX`] reads as that).
    pub fn expires_at_unix(&self) -> u64 {
        self.exp_unix
    }

    /// The `exp` claim as a wall-clock time.
    pub fn expires_at(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(self.exp_unix)
    }

    /// How long the token has left at the wall-clock time `wall` (zero once expired).
    pub fn remaining(&self, wall: SystemTime) -> Duration {
        self.expires_at()
            .duration_since(wall)
            .unwrap_or(Duration::ZERO)
    }
}

fn read_exp(payload: &str) -> Option<u64> {
    let engine = if payload.contains(['-', '_']) {
        &URL_SAFE
    } else {
        &STANDARD
    };
    let json = engine.decode(payload.trim_end_matches('=')).ok()?;
    #[derive(serde::Deserialize)]
    struct Claims {
        exp: serde_json::Number,
    }
    let claims: Claims = serde_json::from_slice(&json).ok()?;
    if let Some(secs) = claims.exp.as_u64() {
        return Some(secs.min(MAX_EXP_UNIX));
    }
    // A fractional or out-of-range number: keep the whole seconds of a sane value only.
    let secs = claims.exp.as_f64()?;
    (secs.is_finite() && secs >= 0.0 && secs < u64::MAX as f64)
        .then_some((secs as u64).min(MAX_EXP_UNIX))
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("exp", &self.exp_unix)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<chat token, exp {}>", self.exp_unix)
    }
}

impl PartialEq for Token {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for Token {}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(engine: &GeneralPurpose, s: &str) -> String {
        engine.encode(s)
    }

    #[test]
    fn reads_exp_from_part_two_in_every_base64_flavour() {
        // `?>` encodes to characters that differ between the two alphabets.
        let payload = r#"{"exp":1700000000,"name":"?>?>"}"#;
        let std_padded = b64(&STANDARD, payload);
        let url_padded = b64(&URL_SAFE, payload);
        assert!(std_padded.contains(['+', '/']) || url_padded.contains(['-', '_']));
        for p in [
            std_padded.clone(),
            std_padded.trim_end_matches('=').to_owned(),
            url_padded.clone(),
            url_padded.trim_end_matches('=').to_owned(),
        ] {
            let token = Token::parse(&format!("jwt.h.{p}.s")).unwrap();
            assert_eq!(token.expires_at_unix(), 1_700_000_000, "payload {p}");
        }
    }

    #[test]
    fn format_errors_are_acs_322_and_bad_payload_is_acs_305() {
        assert_eq!(Token::parse("abc.def.ghi").unwrap_err().code(), "ACS-322");
        assert_eq!(Token::parse("jwt.only").unwrap_err().code(), "ACS-322");
        assert_eq!(Token::parse("").unwrap_err().code(), "ACS-322");
        assert_eq!(Token::parse("jwt.h.!!!.s").unwrap_err().code(), "ACS-305");
        let no_exp = STANDARD.encode(r#"{"iat":1}"#);
        assert_eq!(
            Token::parse(&format!("jwt.h.{no_exp}.s"))
                .unwrap_err()
                .code(),
            "ACS-305"
        );
        let string_exp = STANDARD.encode(r#"{"exp":"soon"}"#);
        assert_eq!(
            Token::parse(&format!("jwt.h.{string_exp}.s"))
                .unwrap_err()
                .code(),
            "ACS-305"
        );
    }

    #[test]
    fn fractional_exp_keeps_whole_seconds() {
        let p = STANDARD.encode(r#"{"exp":1700000000.75}"#);
        assert_eq!(
            Token::parse(&format!("jwt.h.{p}.s"))
                .unwrap()
                .expires_at_unix(),
            1_700_000_000
        );
    }

    #[test]
    fn an_exp_past_year_9999_is_clamped_and_its_times_do_not_overflow() {
        // Regression (fuzz target `token`): `expires_at` added u64::MAX seconds and panicked.
        for claims in [r#"{"exp":18446744073709551615}"#, r#"{"exp":1.8e19}"#] {
            let p = STANDARD.encode(claims);
            let token = Token::parse(&format!("jwt.h.{p}.s")).unwrap();
            assert_eq!(token.expires_at_unix(), MAX_EXP_UNIX, "{claims}");
            assert!(token.remaining(UNIX_EPOCH) > Duration::from_secs(MAX_EXP_UNIX - 1));
        }
    }

    #[test]
    fn debug_and_display_hide_the_text() {
        let p = STANDARD.encode(r#"{"exp":1700000000}"#);
        let text = format!("jwt.h.{p}.secret-signature");
        let token = Token::parse(&text).unwrap();
        for shown in [
            format!("{token:?}"),
            format!("{token}"),
            format!("{token:#?}"),
        ] {
            assert!(!shown.contains("secret-signature"), "{shown}");
            assert!(!shown.contains(&p), "{shown}");
        }
        assert_eq!(token.expose(), text);
    }
}
