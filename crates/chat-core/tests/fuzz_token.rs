//! Fuzzing twin for the token parser: the driver [`run`] is shared with the cargo-fuzz target
//! `token` (fuzz/fuzz_targets/token.rs includes this file), and the proptest below feeds it
//! bounded random input in CI.
//!
//! The input is either raw text or, when it starts with `0x00`, a structured token built
//! by `arbitrary`: a claims object encoded in one of the four base64 flavours, so that the
//! fuzzer reaches the `exp` reading rather than stopping at the `jwt.` prefix.
#![allow(clippy::disallowed_methods, dead_code, unreachable_pub, missing_docs)]

use arbitrary::{Arbitrary, Unstructured};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use chat_core::MAX_EXP_UNIX;
use chat_core::Token;

/// The `exp` claim as the fuzzer writes it.
#[derive(Debug, Arbitrary)]
pub enum Exp {
    Whole(u64),
    Signed(i64),
    Float(f64),
    Text(String),
    Missing,
}

/// A token with a claims payload, built from fuzz input.
#[derive(Debug, Arbitrary)]
pub struct Shaped {
    pub header: String,
    pub exp: Exp,
    pub other_claim: Option<(String, String)>,
    pub flavour: u8,
    pub signature: String,
    pub extra_parts: u8,
}

impl Shaped {
    fn claims(&self) -> String {
        let mut claims = serde_json::Map::new();
        match &self.exp {
            Exp::Whole(n) => drop(claims.insert("exp".into(), (*n).into())),
            Exp::Signed(n) => drop(claims.insert("exp".into(), (*n).into())),
            Exp::Float(f) => drop(claims.insert(
                "exp".into(),
                serde_json::Number::from_f64(*f).map_or(serde_json::Value::Null, Into::into),
            )),
            Exp::Text(s) => drop(claims.insert("exp".into(), s.clone().into())),
            Exp::Missing => {}
        }
        if let Some((k, v)) = &self.other_claim {
            claims.entry(k.clone()).or_insert_with(|| v.clone().into());
        }
        serde_json::Value::Object(claims).to_string()
    }

    /// The token text.
    pub fn text(&self) -> String {
        let claims = self.claims();
        let payload = match self.flavour % 4 {
            0 => STANDARD.encode(&claims),
            1 => STANDARD_NO_PAD.encode(&claims),
            2 => URL_SAFE.encode(&claims),
            _ => URL_SAFE_NO_PAD.encode(&claims),
        };
        let mut text = format!("jwt.{}.{payload}.{}", self.header, self.signature);
        for _ in 0..self.extra_parts % 3 {
            text.push_str(".x");
        }
        text
    }

    /// The `exp` the parser must read, when the claims make it unambiguous.
    pub fn expected_exp(&self) -> Option<u64> {
        // A header or signature with a dot shifts the parts; the claims are then elsewhere.
        if self.header.contains('.') {
            return None;
        }
        let exp = match self.exp {
            Exp::Whole(n) => Some(n),
            Exp::Signed(n) => u64::try_from(n).ok(),
            _ => None,
        };
        exp.map(|n| n.min(MAX_EXP_UNIX))
    }
}

/// Parses one fuzz input as a token and checks what a parse promises.
pub fn run(data: &[u8]) {
    if let Some((&0, rest)) = data.split_first() {
        let Ok(shaped) = Shaped::arbitrary_take_rest(Unstructured::new(rest)) else {
            return;
        };
        let text = shaped.text();
        let parsed = check(&text);
        if let Some(exp) = shaped.expected_exp() {
            let token = parsed.unwrap_or_else(|| panic!("{text:?} refused"));
            assert_eq!(token.expires_at_unix(), exp, "{text:?}");
        }
        return;
    }
    let text = String::from_utf8_lossy(data);
    let _ = check(&text);
    let _ = check(&format!("jwt.h.{text}.s"));
}

/// Parses `text`; a token keeps its text whole and never shows it, an error is one of the two
/// documented codes.
fn check(text: &str) -> Option<Token> {
    match Token::parse(text) {
        Ok(token) => {
            assert_eq!(token.expose(), text);
            assert!(text.starts_with("jwt."), "{text:?} accepted");
            // Deriving the times from `exp` never overflows.
            let _ = token.expires_at();
            let _ = token.remaining(std::time::SystemTime::UNIX_EPOCH);
            // What a token shows is its `exp` and nothing else of its text, so no part of the
            // JWT can appear (comparing against the signature instead let a signature made of
            // the template's own words, or of the exp's digits, look like a leak).
            let exp = token.expires_at_unix();
            assert_eq!(format!("{token}"), format!("<chat token, exp {exp}>"));
            assert_eq!(format!("{token:?}"), format!("Token {{ exp: {exp}, .. }}"));
            Some(token)
        }
        Err(e) => {
            assert!(
                matches!(e.code(), "ACS-322" | "ACS-305"),
                "{text:?}: {e} ({})",
                e.code()
            );
            // The error is one fixed text per code, so nothing of the input can be in it
            // (looking for the input in it instead let an input that *is* the message look
            // like a leak: fuzz finding `crash-ef6d84a5…`).
            let fixed = match e.code() {
                "ACS-322" => Token::parse("not-a-jwt"),
                _ => Token::parse("jwt.h.not-base64!.s"),
            };
            let fixed = fixed.err().map(|e| e.to_string());
            assert_eq!(Some(e.to_string()), fixed);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn raw_text(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
            let mut data = bytes;
            if data.first() == Some(&0) {
                data[0] = b'j';
            }
            run(&data);
        }

        #[test]
        fn shaped_tokens(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
            let mut data = vec![0];
            data.extend(bytes);
            run(&data);
        }
    }

    /// Fuzz findings `crash-b8dc474f…`, `crash-9bf66551…` and `crash-ef6d84a5…` (token target):
    /// signatures made of the digits of the token's own `exp` or of the words of its Display,
    /// and an input that is the error message itself, looked like leaks to the first oracle.
    /// They now run against the exact-output oracle.
    #[test]
    fn signatures_like_what_a_token_shows_are_no_leak() {
        let data = [
            0x00, 0xff, 0x00, 0x40, 0x41, 0xa9, 0x00, 0x00, 0x08, 0x0a, 0x11, 0x20, 0x00, 0x00,
            0x08, 0x78, 0x70, 0x20, 0x32, 0x35, 0x33, 0x34, 0x30, 0x32, 0x33, 0x30, 0x30, 0x37,
            0x39, 0x39, 0x3e, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x14, 0x09, 0x09, 0x09, 0x09,
            0x00, 0x41, 0x00, 0x00, 0x00, 0x14, 0x09, 0x09, 0x09, 0x10, 0xbf,
        ];
        run(&data);
        run(&[
            0x00, 0xff, 0xf7, 0xff, 0x5b, 0xff, 0x0d, 0x0d, 0x0d, 0x24, 0x0d, 0x0d, 0x0d, 0x0d,
            0x0d, 0x0d, 0x43, 0x00, 0x00, 0x00, 0x0d, 0x0d, 0x0d, 0x74, 0x6f, 0x6b, 0x65, 0x6e,
            0x2c, 0x20, 0x65, 0x78, 0x70, 0x20, 0x3e, 0xff, 0xff, 0xff, 0x48, 0xf2, 0xf2, 0xee,
            0x34, 0x56, 0x41, 0x0a,
        ]);
        run(b"ACS-322 : Constraint violated : JWT Token should have valid format.");
        let shaped = Shaped {
            header: "h".into(),
            exp: Exp::Whole(253_402_300_799),
            other_claim: None,
            flavour: 0,
            signature: "253402300799".into(),
            extra_parts: 0,
        };
        let token = check(&shaped.text()).expect("parses");
        assert_eq!(token.expires_at_unix(), 253_402_300_799);
    }

    #[test]
    fn a_shaped_token_reads_its_exp() {
        let shaped = Shaped {
            header: "h".into(),
            exp: Exp::Whole(1_900_000_000),
            other_claim: Some(("sub".into(), "?>?>".into())),
            flavour: 3,
            signature: "signature".into(),
            extra_parts: 1,
        };
        let token = check(&shaped.text()).expect("parses");
        assert_eq!(token.expires_at_unix(), 1_900_000_000);
    }
}
