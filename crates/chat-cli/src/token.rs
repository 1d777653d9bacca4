//! `axp-chat token`: a chat JWT minted with token-client, as a backend would.

use std::time::{Duration, SystemTime};

use token_client::{CustomerRequest, EMAIL_ADDRESSES, Field, PHONE_NUMBERS, Rule, ValidationError};

use crate::error::CliError;
use crate::output::{note, out, rfc3339};
use crate::target::Target;

/// Who the chat token is for: a verified customer or a guest.
#[derive(clap::Args, Clone, Default)]
pub(crate) struct Customer {
    /// The customer id of a customer your backend has verified.
    #[arg(long, env = "AXP_CUSTOMER_ID", conflicts_with_all = ["guest", "guest_id"])]
    pub(crate) customer_id: Option<String>,
    /// An anonymous visitor with a new random id (no identifiers); the id is printed, so that
    /// `--guest-id ID` can come back to the same chats.
    #[arg(long, conflicts_with = "guest_id")]
    pub(crate) guest: bool,
    /// The anonymous visitor of this id (printed by an earlier `--guest`): the same guest again.
    #[arg(long, value_name = "GUEST_ID")]
    pub(crate) guest_id: Option<String>,
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
    #[arg(long, value_name = "MINUTES", env = "AXP_JWT_TTL_MINUTES")]
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
        let mut request = match (&self.customer_id, self.guest, &self.guest_id) {
            (Some(id), false, None) => CustomerRequest::verified(id.clone()),
            (None, true, None) => CustomerRequest::guest(),
            (None, false, Some(id)) => CustomerRequest::unverified(id.clone()),
            _ => {
                return Err(CliError::usage(
                    "say who the token is for: --customer-id ID (or AXP_CUSTOMER_ID), --guest, \
                     or --guest-id ID",
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
            .map_err(|e| CliError::usage(invalid(&e)))?;
        Ok(request)
    }

    /// Whether the token is for a guest (whose id must be shown to come back).
    pub(crate) fn is_guest(&self) -> bool {
        self.guest || self.guest_id.is_some()
    }
}

/// A broken field rule in the user's words: the flag that set the field, and the rule in the
/// unit the flag takes (`--lifetime-minutes` in minutes).
pub(crate) fn invalid(e: &ValidationError) -> String {
    let flag = match &e.field {
        Field::CustomerId => "--customer-id",
        Field::CustomerName => "--name",
        Field::Lifetime => "--lifetime-minutes",
        Field::IdentifierValues(key) | Field::IdentifierValue(key, _) if key == EMAIL_ADDRESSES => {
            "--email"
        }
        Field::IdentifierValues(key) | Field::IdentifierValue(key, _) if key == PHONE_NUMBERS => {
            "--phone"
        }
        _ => "--identifier",
    };
    let rule = match e.rule {
        // The flag takes whole minutes, so the seconds case cannot come from it.
        Rule::LifetimeRange {
            min_minutes,
            max_minutes,
            actual_secs,
        } => format!(
            "must be {min_minutes} to {max_minutes} (minutes), was {}",
            actual_secs / 60
        ),
        ref other => other.to_string(),
    };
    format!("invalid {flag}: {rule}")
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
    if args.customer.guest && !args.json {
        note(format!(
            "guest id {}: --guest-id {} mints for the same guest again",
            request.customer_id(),
            request.customer_id()
        ));
    }
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use token_client::CustomerRequest;

    use super::invalid;

    #[test]
    fn field_rules_name_the_flag_and_its_unit() {
        let short = CustomerRequest::verified("c")
            .lifetime(Duration::from_secs(5 * 60))
            .validate()
            .unwrap_err();
        assert_eq!(
            invalid(&short),
            "invalid --lifetime-minutes: must be 15 to 60 (minutes), was 5"
        );
        let name = CustomerRequest::verified("c")
            .name("n".repeat(71))
            .validate()
            .unwrap_err();
        assert_eq!(
            invalid(&name),
            "invalid --name: must be at most 70 characters long, was 71"
        );
        let email = CustomerRequest::verified("c")
            .email("")
            .validate()
            .unwrap_err();
        assert_eq!(invalid(&email), "invalid --email: must not be empty");
    }
}
