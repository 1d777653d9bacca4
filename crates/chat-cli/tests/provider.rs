//! token-client's one-line token provider plugs into chat-tokio and chat-blocking (issue #14): the chat client
//! holds a closure, never the backend's client secret; each call is a fresh chat JWT on one
//! cached access token. (Here rather than in token-client, which must not depend on the chat
//! crates, not even for tests.)

mod support;

use support::Emu;
use token_client::{CustomerRequest, TokenClient};

#[test]
fn token_client_is_a_chat_tokio_token_provider_in_one_line() {
    let Emu { emulator, runtime } = Emu::start();
    let tokens = TokenClient::new(Emu::config_of(&emulator)).expect("token client");
    runtime.block_on(async {
        let (client, _events) = chat_tokio::Client::builder(
            emulator.base_url(),
            tokens.integration_id(),
            tokens.appkey().expose(),
        )
        .token_provider(tokens.provider(CustomerRequest::verified("zoe").name("Zoe")))
        .connect()
        .await
        .expect("connects with a token from the provider");
        let chat = client.create_engagement().await.expect("a chat");
        assert!(!chat.id().as_str().is_empty());
        let stats = emulator.control().stats();
        assert_eq!(stats.oauth_calls, 1);
        assert!(stats.tokens_minted >= 1);

        // A refused token is replaced through the same closure, on the cached access token.
        emulator.control().revoke_chat_tokens();
        let minted = emulator.control().stats().tokens_minted;
        chat.history(10)
            .await
            .map(drop)
            .unwrap_or_else(|e| panic!("history after a refresh: {e}"));
        assert!(emulator.control().stats().tokens_minted > minted);
        assert_eq!(emulator.control().stats().oauth_calls, 1);

        let _ = client.shutdown(None).await;
        emulator.shutdown().await;
    });
}

#[test]
fn the_blocking_token_client_is_a_chat_blocking_token_provider_in_one_line() {
    // The emulator runs on its runtime; the blocking clients run on this thread, outside it.
    let Emu { emulator, runtime } = Emu::start();
    let tokens =
        token_client::blocking::TokenClient::new(Emu::config_of(&emulator)).expect("token client");

    let (client, _events) = chat_blocking::Client::builder(
        emulator.base_url(),
        tokens.integration_id(),
        tokens.appkey().expose(),
    )
    .token_provider(tokens.provider(CustomerRequest::verified("bot-7").name("Bot")))
    .connect()
    .expect("connects with a token from the provider");
    let chat = client.create_engagement().expect("a chat");
    emulator.control().revoke_chat_tokens();
    let minted = emulator.control().stats().tokens_minted;
    chat.history(10)
        .map(drop)
        .unwrap_or_else(|e| panic!("history after a refresh: {e}"));
    let stats = emulator.control().stats();
    assert!(stats.tokens_minted > minted, "a new token was minted");
    assert_eq!(stats.oauth_calls, 1, "on the one cached access token");
    let _ = client.shutdown(None);
    runtime.block_on(emulator.shutdown());
}
