//! token-client against the in-process AXP emulator.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, SystemTime};

use chat_emulator::Route;
use common::{client, client_with, config, emulator};
use token_client::{AuthPath, CustomerRequest, Endpoint, Field, Rule, TokenClient, TokenError};

fn claims(token: &str) -> serde_json::Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(2).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .or_else(|_| {
            base64::engine::general_purpose::STANDARD_NO_PAD.decode(payload.trim_end_matches('='))
        })
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn verified_customer_token_carries_identity_and_lifetime() {
    let emu = emulator().await;
    let (client, _) = client(&emu);
    let request = CustomerRequest::verified("customer-42")
        .name("Alice Example")
        .email("alice@example.com")
        .phone("+15550100")
        .lifetime(Duration::from_secs(30 * 60));
    let before = SystemTime::now();
    let jwt = client.generate_jwt(&request).await.unwrap();
    let c = claims(jwt.token.expose());
    assert!(jwt.token.expose().starts_with("jwt."));
    assert_eq!(c["customerId"], "customer-42");
    assert_eq!(c["verifiedCustomer"], true);
    assert_eq!(c["customerName"], "Alice Example");
    assert_eq!(
        c["customerIdentifiers"]["emailAddresses"][0],
        "alice@example.com"
    );
    assert_eq!(
        c["integrationId"],
        emu.credentials().integration_id.as_str()
    );
    let lifetime = jwt.expires_at.duration_since(before).unwrap();
    assert!(
        (Duration::from_secs(29 * 60)..=Duration::from_secs(31 * 60)).contains(&lifetime),
        "{lifetime:?}"
    );
    assert_eq!(client.stats().jwts_issued, 1);
    emu.shutdown().await;
}

#[tokio::test]
async fn guest_token_is_unverified_with_default_lifetime() {
    let emu = emulator().await;
    let (client, _) = client(&emu);
    let before = SystemTime::now();
    let jwt = client
        .generate_jwt(
            &CustomerRequest::guest()
                .name("Visitor")
                .email("dropped@example.com"),
        )
        .await
        .unwrap();
    let c = claims(jwt.token.expose());
    assert_eq!(c["verifiedCustomer"], false);
    assert!(c["customerId"].as_str().unwrap().starts_with("guest-"));
    assert!(
        c.get("customerIdentifiers")
            .is_none_or(serde_json::Value::is_null)
    );
    // Default lifetime: 15 minutes.
    let lifetime = jwt.expires_at.duration_since(before).unwrap();
    assert!((Duration::from_secs(14 * 60)..=Duration::from_secs(16 * 60)).contains(&lifetime));
    emu.shutdown().await;
}

#[tokio::test]
async fn every_validation_error_is_typed_and_sends_nothing() {
    let emu = emulator().await;
    let (client, _) = client(&emu);
    let mut eleven = CustomerRequest::verified("c");
    for i in 0..11 {
        eleven = eleven.identifier(format!("key{i}"), "v");
    }
    let cases: Vec<(CustomerRequest, Field, &str)> = vec![
        (CustomerRequest::verified(""), Field::CustomerId, "length"),
        (
            CustomerRequest::verified("x".repeat(257)),
            Field::CustomerId,
            "length",
        ),
        (
            CustomerRequest::verified("c").name("n".repeat(71)),
            Field::CustomerName,
            "length",
        ),
        (eleven, Field::CustomerIdentifiers, "count"),
        (
            CustomerRequest::verified("c").identifier("k".repeat(51), "v"),
            Field::IdentifierKey("k".repeat(51)),
            "length",
        ),
        (
            CustomerRequest::verified("c").identifier("", "v"),
            Field::IdentifierKey(String::new()),
            "length",
        ),
        (
            CustomerRequest::verified("c").identifier_values("emailAddresses", ["a@b"; 6]),
            Field::IdentifierValues("emailAddresses".into()),
            "count",
        ),
        (
            CustomerRequest::verified("c").email(""),
            Field::IdentifierValue("emailAddresses".into(), 0),
            "length",
        ),
        (
            CustomerRequest::verified("c").phone("9".repeat(257)),
            Field::IdentifierValue("phoneNumbers".into(), 0),
            "length",
        ),
        (
            CustomerRequest::verified("c").lifetime(Duration::from_secs(14 * 60)),
            Field::Lifetime,
            "range",
        ),
        (
            CustomerRequest::verified("c").lifetime(Duration::from_secs(61 * 60)),
            Field::Lifetime,
            "range",
        ),
        (
            CustomerRequest::verified("c").lifetime(Duration::from_secs(20 * 60 + 30)),
            Field::Lifetime,
            "minutes",
        ),
        (
            CustomerRequest::guest().lifetime(Duration::ZERO),
            Field::Lifetime,
            "range",
        ),
    ];
    for (request, field, kind) in cases {
        let err = client.generate_jwt(&request).await.unwrap_err();
        let v = err
            .validation()
            .unwrap_or_else(|| panic!("not a validation error: {err}"));
        assert_eq!(v.field, field);
        let rule_ok = match kind {
            "length" => matches!(v.rule, Rule::Length { .. }),
            "count" => matches!(v.rule, Rule::Count { .. }),
            "range" => matches!(v.rule, Rule::LifetimeRange { .. }),
            _ => matches!(v.rule, Rule::WholeMinutes { .. }),
        };
        assert!(rule_ok, "{field:?}: {:?}", v.rule);
    }
    let stats = emu.control().stats();
    assert_eq!((stats.oauth_calls, stats.token_calls), (0, 0));
    assert_eq!(client.stats().oauth_requests, 0);
    emu.shutdown().await;
}

#[tokio::test]
async fn access_token_is_reused_then_refreshed_before_expiry() {
    let emu = chat_emulator::Emulator::builder()
        .access_token_ttl(Duration::from_secs(100))
        .allow_short_token_ttl(true)
        .start()
        .await
        .unwrap();
    let (client, clock) = client(&emu);
    for _ in 0..5 {
        client
            .generate_jwt(&CustomerRequest::guest())
            .await
            .unwrap();
    }
    assert_eq!(emu.control().stats().oauth_calls, 1);
    assert_eq!(emu.control().stats().token_calls, 5);
    // Refresh margin: 10 % of 100 s. At 89 s the token is still used...
    clock.advance(Duration::from_secs(89));
    client
        .generate_jwt(&CustomerRequest::guest())
        .await
        .unwrap();
    assert_eq!(emu.control().stats().oauth_calls, 1);
    // ...at 90 s it is replaced, once.
    clock.advance(Duration::from_secs(1));
    client
        .generate_jwt(&CustomerRequest::guest())
        .await
        .unwrap();
    client
        .generate_jwt(&CustomerRequest::guest())
        .await
        .unwrap();
    assert_eq!(emu.control().stats().oauth_calls, 2);
    assert_eq!(client.stats().oauth_requests, 2);
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_concurrent_requests_on_a_cold_cache_make_one_oauth_call() {
    let emu = emulator().await;
    let (client, _) = client(&emu);
    let tasks: Vec<_> = (0..1000)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move {
                client
                    .generate_jwt(&CustomerRequest::verified(format!("customer-{i}")))
                    .await
            })
        })
        .collect();
    for task in futures::future::join_all(tasks).await {
        task.unwrap().unwrap();
    }
    let stats = emu.control().stats();
    assert_eq!(stats.oauth_calls, 1);
    assert_eq!(stats.token_calls, 1000);
    assert_eq!(client.stats().jwts_issued, 1000);
    emu.shutdown().await;
}

#[tokio::test]
async fn a_failed_refresh_is_shared_not_repeated_by_every_waiter() {
    let emu = emulator().await;
    let (client, clock) = client(&emu);
    emu.control().fail_next(Route::OAuth, 503, 100);
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.generate_jwt(&CustomerRequest::guest()).await })
        })
        .collect();
    for task in futures::future::join_all(tasks).await {
        let err = task.unwrap().unwrap_err();
        assert_eq!(err.status(), Some(503), "{err}");
    }
    // One fetch with its 3 attempts, shared by all 50 callers.
    assert_eq!(emu.control().stats().oauth_calls, 3);
    assert_eq!(clock.sleeps().len(), 2);
    emu.control().clear_faults();
    client
        .generate_jwt(&CustomerRequest::guest())
        .await
        .unwrap();
    emu.shutdown().await;
}

#[tokio::test]
async fn a_401_from_the_token_api_refreshes_once_and_retries_once() {
    let emu = emulator().await;
    let (client, _) = client(&emu);
    client
        .generate_jwt(&CustomerRequest::guest())
        .await
        .unwrap();
    emu.control().revoke_access_tokens();
    client
        .generate_jwt(&CustomerRequest::guest())
        .await
        .unwrap();
    let stats = emu.control().stats();
    assert_eq!(stats.oauth_calls, 2);
    assert_eq!(stats.token_calls, 3);

    // Concurrent callers that all hit the 401 still refresh only once.
    emu.control().revoke_access_tokens();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.generate_jwt(&CustomerRequest::guest()).await })
        })
        .collect();
    for task in futures::future::join_all(tasks).await {
        task.unwrap().unwrap();
    }
    assert_eq!(emu.control().stats().oauth_calls, 3);

    // A 401 that persists is returned after exactly one refresh and one retry.
    emu.control().fail_next(Route::TokenApi, 401, 2);
    let err = client
        .generate_jwt(&CustomerRequest::guest())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            TokenError::Http {
                endpoint: Endpoint::TokenApi,
                status: 401,
                ..
            }
        ),
        "{err}"
    );
    let stats = emu.control().stats();
    assert_eq!(stats.oauth_calls, 4);
    emu.shutdown().await;
}

#[tokio::test]
async fn server_errors_are_retried_with_backoff_then_given_up() {
    let emu = emulator().await;
    let (client, clock) = client(&emu);
    emu.control().fail_next(Route::TokenApi, 503, 2);
    client
        .generate_jwt(&CustomerRequest::guest())
        .await
        .unwrap();
    assert_eq!(emu.control().stats().token_calls, 3);
    let sleeps = clock.sleeps();
    assert_eq!(sleeps.len(), 2);
    assert!(sleeps[0] <= Duration::from_millis(1) && sleeps[1] <= Duration::from_millis(2));

    emu.control().fail_next(Route::TokenApi, 500, 3);
    let err = client
        .generate_jwt(&CustomerRequest::guest())
        .await
        .unwrap_err();
    match &err {
        TokenError::RetriesExhausted {
            endpoint: Endpoint::TokenApi,
            attempts: 3,
            last,
        } => {
            assert_eq!(last.status(), Some(500));
        }
        other => panic!("unexpected {other}"),
    }
    assert_eq!(err.status(), Some(500));
    assert!(err.problem().is_some(), "problem details kept");

    // OAuth 5xx are retried too.
    client.invalidate_access_token().await;
    emu.control().fail_next(Route::OAuth, 502, 1);
    client
        .generate_jwt(&CustomerRequest::guest())
        .await
        .unwrap();

    // 4xx other than 401 are not retried.
    let before = emu.control().stats().token_calls;
    emu.control().fail_next(Route::TokenApi, 403, 1);
    let err = client
        .generate_jwt(&CustomerRequest::guest())
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(403));
    assert_eq!(emu.control().stats().token_calls, before + 1);
    emu.shutdown().await;
}

#[tokio::test]
async fn too_many_requests_honours_retry_after() {
    let emu = emulator().await;
    let (client, clock) = client(&emu);
    emu.control()
        .fail_next_with_retry_after(Route::TokenApi, 429, 1, 7);
    client
        .generate_jwt(&CustomerRequest::guest())
        .await
        .unwrap();
    assert_eq!(clock.sleeps(), vec![Duration::from_secs(7)]);
    // Capped by the policy.
    emu.control()
        .fail_next_with_retry_after(Route::OAuth, 429, 1, 3600);
    client.invalidate_access_token().await;
    client
        .generate_jwt(&CustomerRequest::guest())
        .await
        .unwrap();
    assert_eq!(clock.sleeps()[1], Duration::from_secs(30));
    emu.shutdown().await;
}

#[tokio::test]
async fn dropped_connections_are_retried_and_hangs_time_out() {
    let emu = emulator().await;
    let (client, _) = client_with(config(&emu).with_request_timeout(Duration::from_millis(300)));
    emu.control().drop_next(Route::TokenApi, 1);
    client
        .generate_jwt(&CustomerRequest::guest())
        .await
        .unwrap();

    emu.control()
        .hang_next(Route::TokenApi, 1, Duration::from_secs(5));
    let err = client
        .generate_jwt(&CustomerRequest::guest())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            TokenError::Timeout {
                endpoint: Endpoint::TokenApi,
                ..
            }
        ),
        "{err}"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn connection_refused_is_retried_then_reported() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let emu = emulator().await;
    let mut cfg = config(&emu);
    cfg.api_base_url = format!("http://127.0.0.1:{port}");
    let (client, clock) = client_with(cfg);
    let err = client
        .generate_jwt(&CustomerRequest::guest())
        .await
        .unwrap_err();
    match err {
        TokenError::RetriesExhausted {
            endpoint: Endpoint::OAuth,
            attempts: 3,
            last,
        } => {
            assert!(matches!(*last, TokenError::Transport { .. }), "{last}");
        }
        other => panic!("unexpected {other}"),
    }
    assert_eq!(clock.sleeps().len(), 2);
    emu.shutdown().await;
}

#[tokio::test]
async fn legacy_realm_path_and_bad_credentials() {
    let emu = emulator().await;
    let (client, _) = client_with(config(&emu).with_auth_path(AuthPath::LegacyRealm));
    client
        .generate_jwt(&CustomerRequest::guest())
        .await
        .unwrap();
    assert_eq!(emu.control().stats().oauth_calls, 1);

    let mut cfg = config(&emu);
    cfg.client_secret = "wrong-secret".into();
    let client = TokenClient::new(cfg).unwrap();
    let err = client
        .generate_jwt(&CustomerRequest::guest())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            TokenError::Http {
                endpoint: Endpoint::OAuth,
                status: 401,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.problem().and_then(|p| p.title.as_deref()).is_some(),
        "{err:?}"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn plain_http_to_a_remote_host_is_refused_before_any_call() {
    let emu = emulator().await;
    let mut cfg = config(&emu);
    cfg.api_base_url = "http://axp.example.com".into();
    assert!(matches!(
        TokenClient::new(cfg),
        Err(TokenError::Config(token_client::ConfigError::InsecureUrl))
    ));
    emu.shutdown().await;
}

#[tokio::test]
async fn https_with_the_emulators_certificate_as_extra_root() {
    let emu = chat_emulator::Emulator::builder()
        .tls(true)
        .start()
        .await
        .unwrap();
    assert!(emu.base_url().starts_with("https://"), "{}", emu.base_url());
    let cert = emu
        .cert_path()
        .expect("TLS emulator writes its certificate");
    let (client, _) = client_with(config(&emu).with_ca_cert_file(cert));
    client
        .generate_jwt(&CustomerRequest::guest())
        .await
        .unwrap();
    // Without trusting it, the handshake fails, once: retrying cannot change the answer.
    let (untrusting, _) = client_with(config(&emu));
    let err = untrusting
        .generate_jwt(&CustomerRequest::guest())
        .await
        .unwrap_err();
    assert!(
        matches!(err, TokenError::UntrustedCertificate { .. }),
        "{err}"
    );
    assert_eq!(untrusting.stats().oauth_requests, 1);
    emu.shutdown().await;
}

#[tokio::test]
async fn problem_details_of_the_service_are_typed() {
    let emu = emulator().await;
    let mut cfg = config(&emu);
    cfg.integration_id = "00000000-0000-4000-8000-000000000000".into();
    let (client, _) = client_with(cfg);
    client.warm_up().await.unwrap();
    assert!(!client.access_token().await.unwrap().expose().is_empty());
    let err = client
        .generate_jwt(&CustomerRequest::guest())
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(404), "{err}");
    let problem = err.problem().unwrap();
    assert_eq!(problem.status, Some(404));
    assert!(
        problem
            .detail
            .as_deref()
            .unwrap_or("")
            .contains("Integration"),
        "{problem:?}"
    );
    assert!(err.to_string().contains("404"));
    // Warm-up and the explicit access token reused the one cached token.
    assert_eq!(emu.control().stats().oauth_calls, 1);
    emu.shutdown().await;
}
