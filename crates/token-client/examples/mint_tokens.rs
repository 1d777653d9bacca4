//! Fetch chat JWTs for a verified customer and a guest, against the in-process emulator.
//!
//! `cargo run -p token-client --example mint_tokens`
//!
//! Against a real AXP account, build the configuration with `TokenClientConfig::from_env()` (or
//! `from_file`) instead of from the emulator's credentials.
#![allow(clippy::print_stdout)]

use std::time::{Duration, SystemTime};

use token_client::{CustomerRequest, TokenClient, TokenClientConfig, TokenError};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let emulator = chat_emulator::Emulator::builder().start().await?;
    let c = emulator.credentials();
    let config = TokenClientConfig::new(
        emulator.base_url(),
        c.account_id.clone(),
        c.client_id.clone(),
        c.client_secret.clone(),
        c.appkey.clone(),
        c.integration_id.clone(),
    )
    .with_default_lifetime(Duration::from_secs(30 * 60));
    let client = TokenClient::new(config)?;

    // A customer your backend has signed in.
    let alice = CustomerRequest::verified("customer-42")
        .name("Alice Example")
        .email("alice@example.com")
        .phone("+15550100");
    let jwt = client.generate_jwt(&alice).await?;
    let left = jwt.remaining(SystemTime::now());
    println!(
        "verified JWT: {} characters, expires in {} s",
        jwt.token.expose().len(),
        left.as_secs()
    );

    // An anonymous visitor.
    let guest = client.generate_jwt(&CustomerRequest::guest()).await?;
    println!(
        "guest JWT expires in {} s",
        guest.remaining(SystemTime::now()).as_secs()
    );

    // Invalid input fails before any network call, with the field and the rule.
    match client
        .generate_jwt(&CustomerRequest::verified("x").name("n".repeat(71)))
        .await
    {
        Err(TokenError::Validation(v)) => println!("rejected locally: {v}"),
        other => println!("unexpected: {other:?}"),
    }

    println!("{:?}", client.stats()); // oauth_requests: 1
    emulator.shutdown().await;
    Ok(())
}
