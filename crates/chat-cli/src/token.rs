//! `axp-chat token`: a chat JWT minted with token-client, as a backend would.

use std::time::{Duration, SystemTime};

use token_client::CustomerRequest;

use crate::error::CliError;
use crate::output::{out, rfc3339};
use crate::target::Target;

/// Who the chat token is for: a verified customer or a guest.
#[derive(clap::Args, Clone, Default)]
pub(crate) struct Customer {
    /// The customer id of a customer your backend has verified.
    #[arg(long, env = "AXP_CUSTOMER_ID", conflicts_with = "guest")]
    pub(crate) customer_id: Option<String>,
    /// An anonymous visitor with a random id (no identifiers).
    #[arg(long)]
    pub(crate) guest: bool,
    /// The customer's display name.
    #[arg(long, env = "AXP_CUSTOMER_NAME")]
    pub(crate) name: Option<String>,
    /// An email address of the customer (repeatable).
    #[arg(long)]
    pub(crate) email: Vec<String>,
    /// A phone number of the customer (repeatable).
    #[arg(long)]
    pub(crate) phone: Vec<String>,
    /// Any other identifier, KEY=VALUE (repeatable).
    #[arg(long = "identifier", value_name = "KEY=VALUE", value_parser = parse_pair)]
    pub(crate) identifiers: Vec<(String, String)>,
    /// Lifetime of the token in minutes (15 to 60; default the account's, 15).
    #[arg(long, value_name = "MINUTES")]
    pub(crate) lifetime_minutes: Option<u64>,
}

fn parse_pair(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err("expected KEY=VALUE".to_owned()),
    }
}

impl Customer {
    /// The token request, checked against every field rule before anything is sent.
    pub(crate) fn request(&self) -> Result<CustomerRequest, CliError> {
        let mut request = match (&self.customer_id, self.guest) {
            (Some(id), false) => CustomerRequest::verified(id.clone()),
            (None, true) => CustomerRequest::guest(),
            _ => {
                return Err(CliError::usage(
                    "say who the token is for: --customer-id ID (or AXP_CUSTOMER_ID) or --guest",
                ));
            }
        };
        if let Some(name) = &self.name {
            request = request.name(name.clone());
        }
        for email in &self.email {
            request = request.email(email.clone());
        }
        for phone in &self.phone {
            request = request.phone(phone.clone());
        }
        for (key, value) in &self.identifiers {
            request = request.identifier(key.clone(), value.clone());
        }
        if let Some(minutes) = self.lifetime_minutes {
            request = request.lifetime(Duration::from_secs(minutes.saturating_mul(60)));
        }
        request
            .validate()
            .map_err(|e| CliError::usage(format!("invalid customer: {e}")))?;
        Ok(request)
    }
}

/// Mint a chat JWT for a verified customer or a guest, with the integration's client
/// credentials; prints the token, or JSON with its expiry. The token is a credential: this is
/// the one command that prints a secret.
#[derive(clap::Args)]
pub(crate) struct TokenArgs {
    #[command(flatten)]
    target: Target,
    #[command(flatten)]
    customer: Customer,
    /// Print `{"jwtToken", "expiresAt", "expiresIn", "customerId"}` instead of the bare token.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn run(args: TokenArgs) -> Result<(), CliError> {
    let request = args.customer.request()?;
    let client = args.target.resolve()?.token_client(true)?;
    let jwt = client
        .generate_jwt(&request)
        .await
        .map_err(|e| CliError::from(e).context("cannot mint a chat token"))?;
    if args.json {
        let expires_in = jwt.remaining(SystemTime::now()).as_secs();
        out(serde_json::json!({
            "jwtToken": jwt.token.expose(),
            "expiresAt": rfc3339(jwt.expires_at),
            "expiresIn": expires_in,
            "customerId": request.customer_id(),
        }));
    } else {
        out(jwt.token.expose());
    }
    Ok(())
}
