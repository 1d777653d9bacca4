//! Errors a person understands (issue #14): rules in words and in the unit they count, one
//! endpoint prefix per message, and failures that cannot pass (an untrusted certificate, a
//! host name that does not resolve) reported as what they are, after one attempt.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use chat_emulator::{Emulator, Route};
use token_client::{CustomerRequest, Endpoint, RetryPolicy, TokenClientConfig, TokenError};

#[test]
fn rules_are_stated_in_words_and_in_their_unit() {
    let five_minutes = CustomerRequest::verified("c")
        .lifetime(Duration::from_secs(5 * 60))
        .validate()
        .unwrap_err();
    assert_eq!(
        five_minutes.to_string(),
        "invalid ttl: must be 15 to 60 minutes, was 5 minutes"
    );
    let name = CustomerRequest::verified("c")
        .name("n".repeat(71))
        .validate()
        .unwrap_err();
    assert_eq!(
        name.to_string(),
        "invalid customerName: must be at most 70 characters long, was 71"
    );
    let id = CustomerRequest::verified("").validate().unwrap_err();
    assert_eq!(id.to_string(), "invalid customerId: must not be empty");
    let mut many = CustomerRequest::verified("c");
    for i in 0..11 {
        many = many.identifier(format!("k{i}"), "v");
    }
    assert_eq!(
        many.validate().unwrap_err().to_string(),
        "invalid customerIdentifiers: must have 1 to 10 entries, had 11"
    );
    for e in [five_minutes, name, id] {
        assert!(!e.to_string().contains("..="), "{e}");
    }
}

#[tokio::test]
async fn a_lifetime_out_of_range_is_given_in_minutes() {
    let emu = common::emulator().await;
    let (client, _) = common::client(&emu);
    let err = client
        .generate_jwt(&CustomerRequest::verified("c").lifetime(Duration::from_secs(5 * 60)))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid ttl: must be 15 to 60 minutes, was 5 minutes"
    );
    let odd = client
        .generate_jwt(&CustomerRequest::verified("c").lifetime(Duration::from_secs(20 * 60 + 5)))
        .await
        .unwrap_err();
    assert_eq!(
        odd.to_string(),
        "invalid ttl: must be a whole number of minutes, was 1205 seconds"
    );
    assert_eq!(emu.control().stats().oauth_calls, 0, "nothing was sent");
    emu.shutdown().await;
}

#[tokio::test]
async fn given_up_retries_name_the_endpoint_once() {
    let emu = common::emulator().await;
    emu.control().fail_next(Route::OAuth, 503, 3);
    let (client, _) = common::client(&emu);
    let err = client
        .generate_jwt(&CustomerRequest::verified("c"))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(
        err,
        TokenError::RetriesExhausted { attempts: 3, .. }
    ));
    assert!(
        text.starts_with(
            "OAuth token endpoint: gave up after 3 attempts; the last attempt answered HTTP 503"
        ),
        "{text}"
    );
    assert_eq!(text.matches("OAuth token endpoint").count(), 1, "{text}");
    emu.shutdown().await;
}

#[tokio::test]
async fn an_untrusted_certificate_is_said_so_and_not_retried() {
    let emu = Emulator::builder().tls(true).start().await.unwrap();
    // The default HTTP client: webpki roots only, which do not include the emulator's.
    let (client, clock) = common::client_with(common::config(&emu));
    let err = client
        .generate_jwt(&CustomerRequest::verified("c"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            TokenError::UntrustedCertificate {
                endpoint: Endpoint::OAuth,
                ..
            }
        ),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains("certificate is not trusted"), "{text}");
    assert!(text.contains("ca_cert_file"), "{text}");
    assert_eq!(client.stats().oauth_requests, 1, "one attempt");
    assert!(clock.sleeps().is_empty(), "no backoff");
    // With its root trusted, the same emulator answers.
    let ca = emu
        .cert_path()
        .expect("a TLS emulator writes its certificate");
    let (trusting, _) = common::client_with(common::config(&emu).with_ca_cert_file(ca));
    assert!(
        trusting
            .generate_jwt(&CustomerRequest::verified("c"))
            .await
            .is_ok()
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn a_host_that_does_not_resolve_is_said_so_and_not_retried() {
    // `.invalid` never resolves (RFC 2606), with or without a network.
    let config = TokenClientConfig::new(
        "https://axp-host.invalid",
        "account",
        "client",
        "secret",
        "appkey",
        "integration",
    )
    .with_retry(RetryPolicy {
        max_attempts: 3,
        ..RetryPolicy::default()
    });
    let (client, clock) = common::client_with(config);
    let err = client
        .generate_jwt(&CustomerRequest::verified("c"))
        .await
        .unwrap_err();
    assert!(matches!(err, TokenError::HostNotFound { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("OAuth token endpoint: cannot resolve the host name"),
        "{err}"
    );
    assert_eq!(client.stats().oauth_requests, 1, "one attempt");
    assert!(clock.sleeps().is_empty(), "no backoff");
}

#[tokio::test]
async fn a_refused_connection_is_still_retried_and_its_causes_are_not_repeated() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let config = TokenClientConfig::new(
        format!("http://127.0.0.1:{port}"),
        "account",
        "client",
        "secret",
        "appkey",
        "integration",
    )
    .with_retry(RetryPolicy {
        max_attempts: 2,
        ..RetryPolicy::default()
    });
    let (client, clock) = common::client_with(config);
    let err = client
        .generate_jwt(&CustomerRequest::verified("c"))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, TokenError::RetriesExhausted { attempts: 2, .. }),
        "{err:?}"
    );
    assert!(
        text.contains("the last attempt could not connect"),
        "{text}"
    );
    assert_eq!(text.matches("Connection refused").count(), 1, "{text}");
    assert_eq!(clock.sleeps().len(), 1);
}
