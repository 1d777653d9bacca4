//! Plain `http://` is refused except for hosts that really are loopback, or with the opt-in.
#![allow(clippy::unwrap_used, missing_docs)]

use token_client::{ConfigError, TokenClientConfig};

const INT: &str = "123e4567-e89b-12d3-a456-426614174000";

fn validate(url: &str, opt_in: bool) -> Result<(), ConfigError> {
    TokenClientConfig::new(url, "ABCDEF", "client", "secret", "appkey", INT)
        .with_allow_plain_http(opt_in)
        .validate()
}

#[test]
fn plain_http_only_to_loopback_or_with_the_opt_in() {
    for url in [
        "https://na.api.avayacloud.com",
        "http://127.0.0.1:8080",
        "http://127.9.9.9",
        "http://localhost",
        "HTTP://LOCALHOST:9000",
        "http://[::1]:8443/",
    ] {
        assert!(validate(url, false).is_ok(), "{url}");
    }
    for url in [
        "http://127.0.0.1.evil.com",
        "http://localhost.evil",
        "http://evil.com\\.localhost",
        "http://[::2]",
        "http://10.0.0.1",
        "HTTP://example.com",
        "http://0.0.0.0",
    ] {
        assert!(
            matches!(validate(url, false), Err(ConfigError::InsecureUrl)),
            "{url}"
        );
        assert!(validate(url, true).is_ok(), "{url} with the opt-in");
    }
    // User info is refused with or without the opt-in: `localhost@evil.com` is evil.com.
    for url in ["http://localhost@evil.com", "https://user:pw@localhost"] {
        for opt_in in [false, true] {
            assert!(
                matches!(
                    validate(url, opt_in),
                    Err(ConfigError::Invalid {
                        field: "api_base_url",
                        ..
                    })
                ),
                "{url}"
            );
        }
    }
}
