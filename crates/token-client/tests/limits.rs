//! token-client's limits are the service's: at each limit the emulator mints, one past it
//! token-client refuses locally with a typed error naming the field, and sends nothing.
#![allow(clippy::unwrap_used)]

mod common;

use token_client::{CustomerRequest, Field, Rule};

#[tokio::test]
async fn limits_match_the_service_and_are_checked_before_any_call() {
    let emu = common::emulator().await;
    let (client, _) = common::client(&emu);
    let many = |n: usize| -> CustomerRequest {
        (0..n).fold(CustomerRequest::verified("c"), |r, i| {
            r.identifier(format!("key{i}"), "v")
        })
    };
    let five_values = (0..5).fold(CustomerRequest::verified("c"), |r, i| {
        r.identifier("emailAddresses", format!("{i}@example.com"))
    });
    // (at the limit, one past it, the field named in the refusal)
    let cases = [
        (
            CustomerRequest::verified("é".repeat(256)),
            CustomerRequest::verified("é".repeat(257)),
            Field::CustomerId,
        ),
        (
            CustomerRequest::verified("c").name("n".repeat(70)),
            CustomerRequest::verified("c").name("n".repeat(71)),
            Field::CustomerName,
        ),
        (many(10), many(11), Field::CustomerIdentifiers),
        (
            CustomerRequest::verified("c").identifier("k".repeat(50), "v"),
            CustomerRequest::verified("c").identifier("k".repeat(51), "v"),
            Field::IdentifierKey("k".repeat(51)),
        ),
        (
            five_values.clone(),
            five_values.identifier("emailAddresses", "6@example.com"),
            Field::IdentifierValues("emailAddresses".into()),
        ),
        (
            CustomerRequest::verified("c").identifier("phoneNumbers", "1".repeat(256)),
            CustomerRequest::verified("c").identifier("phoneNumbers", "1".repeat(257)),
            Field::IdentifierValue("phoneNumbers".into(), 0),
        ),
    ];
    for (at_limit, past, field) in cases {
        client.generate_jwt(&at_limit).await.unwrap();
        let calls = emu.control().stats().token_calls;
        let err = client.generate_jwt(&past).await.unwrap_err();
        let v = err.validation().unwrap_or_else(|| panic!("{err:?}"));
        assert_eq!(v.field, field, "{err}");
        assert!(
            matches!(v.rule, Rule::Length { .. } | Rule::Count { .. }),
            "{v:?}"
        );
        assert_eq!(
            emu.control().stats().token_calls,
            calls,
            "{field:?} was sent"
        );
    }
    // An empty customer id is refused too.
    let err = client
        .generate_jwt(&CustomerRequest::verified(""))
        .await
        .unwrap_err();
    assert_eq!(err.validation().unwrap().field, Field::CustomerId);
    emu.shutdown().await;
}

#[cfg(feature = "server")]
#[tokio::test]
async fn the_reference_server_answers_413_past_64_kib() {
    use std::sync::Arc;
    let emu = common::emulator().await;
    let (client, _) = common::client(&emu);
    let app = token_client::server::router(
        client,
        Arc::new(token_client::server::TrustClientClaims),
        &[],
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1/getJWT", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let post = |body: Vec<u8>| {
        reqwest::Client::new()
            .post(&url)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let r = post(vec![b' '; 64 * 1024 + 1]).await.unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let mut at_limit = br#"{"customerId":"c"}"#.to_vec();
    at_limit.resize(64 * 1024, b' ');
    assert_eq!(post(at_limit).await.unwrap().status(), 200);
    assert_eq!(emu.control().stats().tokens_minted, 1);
    emu.shutdown().await;
}
