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
