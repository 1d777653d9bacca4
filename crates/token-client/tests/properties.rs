//! Arbitrary input never panics: token parsing, request validation, server-side configuration.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use proptest::prelude::*;
use token_client::{ChatJwt, CustomerRequest, TokenClientConfig};

proptest! {
    #[test]
    fn jwt_parsing_never_panics(text in ".{0,200}", exp in any::<i64>()) {
        let _ = ChatJwt::parse(&text);
        use base64::Engine as _;
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(format!("{{\"exp\":{exp}}}"));
        let parsed = ChatJwt::parse(&format!("jwt.h.{payload}.s"));
        prop_assert_eq!(parsed.is_some(), exp >= 0);
    }

    #[test]
    fn validation_is_total_and_matches_the_rules(
        id in ".{0,300}",
        name in proptest::option::of(".{0,90}"),
        identifiers in proptest::collection::btree_map(".{0,60}", proptest::collection::vec(".{0,260}", 0..7), 0..12),
        minutes in 0u64..100,
        extra_secs in 0u64..2,
    ) {
        let mut request = CustomerRequest::verified(id.clone())
            .lifetime(Duration::from_secs(minutes * 60 + extra_secs));
        if let Some(n) = &name {
            request = request.name(n.clone());
        }
        for (k, v) in &identifiers {
            request = request.identifier_values(k.clone(), v.clone());
        }
        let expected = (1..=256).contains(&id.chars().count())
            && name.as_ref().is_none_or(|n| n.chars().count() <= 70)
            && identifiers.len() <= 10
            && identifiers.iter().all(|(k, v)| {
                (1..=50).contains(&k.chars().count())
                    && v.len() <= 5
                    && v.iter().all(|s| (1..=256).contains(&s.chars().count()))
            })
            && extra_secs == 0
            && (15..=60).contains(&minutes);
        prop_assert_eq!(request.validate().is_ok(), expected);
    }

    #[test]
    fn config_checks_are_total(url in ".{0,80}", account in ".{0,20}") {
        let _ = TokenClientConfig::new(url, account, "c", "s", "k", "i").validate();
    }
}
