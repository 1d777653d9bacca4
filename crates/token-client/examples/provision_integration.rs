//! Provision a chat integration on the emulator with the backend's cached access token, then
//! issue a JWT for it.
//!
//! `cargo run -p token-client --example provision_integration`
//!
//! On a real AXP account integrations are created in the administration portal; only the
//! emulator offers this HTTP API (`/api/digital/config/v1/accounts/{accountId}/integrations`).
#![allow(clippy::print_stdout)]

use token_client::{CustomerRequest, TokenClient, TokenClientConfig};

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
    );
    let client = TokenClient::new(config.clone())?;

    // The same cached OAuth access token authorises the provisioning call.
    let access_token = client.access_token().await?;
    let created: serde_json::Value = reqwest::Client::new()
        .post(format!(
            "{}/api/digital/config/v1/accounts/{}/integrations",
            emulator.base_url(),
            c.account_id
        ))
        .bearer_auth(access_token.expose())
        .header("appkey", client.appkey().expose())
        .json(&serde_json::json!({ "name": "web shop chat" }))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let integration_id = created["integrationId"]
        .as_str()
        .ok_or("no integrationId in the answer")?
        .to_owned();
    println!("provisioned integration {integration_id}");

    // A client for the new integration.
    let shop = TokenClient::new(TokenClientConfig {
        integration_id,
        ..config
    })?;
    let jwt = shop.generate_jwt(&CustomerRequest::guest()).await?;
    println!(
        "JWT for the new integration expires at {:?}",
        jwt.expires_at
    );
    emulator.shutdown().await;
    Ok(())
}
