//! The reference server with the application's own authentication plugged in, against the
//! in-process emulator.
//!
//! `cargo run -p token-client --example custom_auth_server`, then, from another shell:
//!
//! ```text
//! curl -s -X POST localhost:3000/v1/getJWT -H 'content-type: application/json' \
//!      -H 'authorization: Bearer session-alice' -d '{"customerId":"ignored","verifiedCustomer":true}'
//! ```
#![allow(clippy::print_stdout)]

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::HeaderMap;
use token_client::server::{AuthFuture, CustomerAuthenticator, GetJwtRequest, Rejection, router};
use token_client::{CustomerRequest, TokenClient, TokenClientConfig};

/// Stand-in for the application's session store: session token → (customer id, e-mail).
struct Sessions(HashMap<String, (String, String)>);

impl CustomerAuthenticator for Sessions {
    fn authenticate<'a>(
        &'a self,
        headers: &'a HeaderMap,
        body: &'a GetJwtRequest,
    ) -> AuthFuture<'a> {
        Box::pin(async move {
            let session = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "));
            match session.and_then(|s| self.0.get(s)) {
                // Signed in: identity from the application's records, never from the page.
                Some((customer_id, email)) => Ok(CustomerRequest::verified(customer_id.clone())
                    .name(body.customer_name.clone().unwrap_or_default())
                    .email(email.clone())),
                // A session header that is not valid: refuse.
                None if session.is_some() => Err(Rejection::unauthorized("session expired")),
                // Not signed in: an anonymous guest.
                None => Ok(CustomerRequest::guest()),
            }
        })
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let emulator = chat_emulator::Emulator::builder().start().await?;
    let c = emulator.credentials();
    let client = TokenClient::new(TokenClientConfig::new(
        emulator.base_url(),
        c.account_id.clone(),
        c.client_id.clone(),
        c.client_secret.clone(),
        c.appkey.clone(),
        c.integration_id.clone(),
    ))?;
    let sessions = Sessions(HashMap::from([(
        "session-alice".to_owned(),
        ("customer-42".to_owned(), "alice@example.com".to_owned()),
    )]));
    let origins = vec!["http://localhost:8080".to_owned()];
    let app = router(client, Arc::new(sessions), &origins)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!(
        "listening on http://{}; Ctrl-C to stop",
        listener.local_addr()?
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    emulator.shutdown().await;
    Ok(())
}
