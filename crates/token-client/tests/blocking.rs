//! The blocking facade (feature `blocking`).
#![cfg(feature = "blocking")]
#![allow(clippy::unwrap_used)]

mod common;

use token_client::{CustomerRequest, TokenError, blocking};

#[test]
fn blocking_client_shares_the_async_behaviour() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let emu = rt.block_on(common::emulator());
    let client = blocking::TokenClient::new(common::config(&emu)).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let client = client.clone();
            std::thread::spawn(move || {
                client
                    .generate_jwt(&CustomerRequest::verified(format!("c{i}")))
                    .unwrap()
            })
        })
        .collect();
    for t in threads {
        assert!(t.join().unwrap().token.expose().starts_with("jwt."));
    }
    assert_eq!(emu.control().stats().oauth_calls, 1);
    assert_eq!(client.stats().jwts_issued, 4);
    let err = client
        .generate_jwt(&CustomerRequest::verified(""))
        .unwrap_err();
    assert!(err.validation().is_some());
    rt.block_on(emu.shutdown());
}

#[tokio::test]
async fn blocking_call_inside_a_runtime_is_an_error_not_a_panic() {
    let emu = common::emulator().await;
    let config = common::config(&emu);
    let client = tokio::task::spawn_blocking(move || blocking::TokenClient::new(config).unwrap())
        .await
        .unwrap();
    let err = client.generate_jwt(&CustomerRequest::guest()).unwrap_err();
    assert!(matches!(err, TokenError::BlockingInAsyncContext));
    // Dropping the last clone here must not panic either.
    drop(client);
    emu.shutdown().await;
}

#[test]
fn blocking_client_has_the_documented_accessors() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let emu = rt.block_on(common::emulator());
    let c = emu.credentials().clone();
    let client = blocking::TokenClient::new(common::config(&emu)).unwrap();
    assert_eq!(client.integration_id(), c.integration_id);
    assert_eq!(client.appkey().expose(), c.appkey);
    assert_eq!(client.config().integration_id, c.integration_id);
    let first = client.access_token().unwrap();
    assert_eq!(
        client.access_token().unwrap().expose(),
        first.expose(),
        "cached"
    );
    assert_eq!(emu.control().stats().oauth_calls, 1);
    client.invalidate_access_token();
    let second = client.access_token().unwrap();
    assert_ne!(second.expose(), first.expose());
    assert_eq!(emu.control().stats().oauth_calls, 2);
    rt.block_on(emu.shutdown());
}

#[test]
fn the_blocking_provider_mints_a_chat_jwt_per_call_on_one_access_token() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let emu = rt.block_on(common::emulator());
    let client = blocking::TokenClient::new(common::config(&emu)).unwrap();
    let provider = client.provider(CustomerRequest::verified("bot-1").name("Bot"));
    let first = provider().unwrap();
    // The chat client calls it from its own thread.
    let second = std::thread::spawn(provider.clone())
        .join()
        .unwrap()
        .unwrap();
    assert!(first.starts_with("jwt.") && second.starts_with("jwt."));
    let stats = emu.control().stats();
    assert_eq!((stats.oauth_calls, stats.tokens_minted), (1, 2));
    // A failure keeps its type for the caller that wants it.
    let refused = client.provider(CustomerRequest::verified(""))().unwrap_err();
    let typed = refused.downcast_ref::<TokenError>().expect("a TokenError");
    assert!(typed.validation().is_some());
    rt.block_on(emu.shutdown());
}

#[test]
fn the_blocking_builder_takes_the_clock_as_the_async_one_does() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let emu = rt.block_on(async {
        chat_emulator::Emulator::builder()
            .access_token_ttl(std::time::Duration::from_secs(100))
            .allow_short_token_ttl(true)
            .start()
            .await
            .unwrap()
    });
    let clock = common::ManualClock::new();
    let client = blocking::TokenClient::builder(common::config(&emu))
        .clock(clock.clone())
        .build()
        .unwrap();
    client.access_token().unwrap();
    // Within the refresh margin (10 % of 100 s) by the injected clock, not the real one.
    clock.advance(std::time::Duration::from_secs(89));
    client.access_token().unwrap();
    assert_eq!(emu.control().stats().oauth_calls, 1);
    clock.advance(std::time::Duration::from_secs(1));
    client.access_token().unwrap();
    assert_eq!(emu.control().stats().oauth_calls, 2);
    rt.block_on(emu.shutdown());
}
