//! `axp-chat provision`: chat integrations on the emulator's admin API
//! (`/api/digital/config/v1/accounts/{accountId}/integrations`, docs/emulator.md
//! "Provisioning"), authorised with the account's OAuth access token from token-client.

use std::time::Duration;

use serde::Deserialize;

use crate::error::{CliError, Kind, status_kind};
use crate::output::out;
use crate::target::Target;

/// Create, list and delete chat integrations on the emulator (real AXP accounts provision
/// them in the administration portal instead).
#[derive(clap::Args)]
pub(crate) struct ProvisionArgs {
    #[command(flatten)]
    target: Target,
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand)]
enum Action {
    /// Create an integration; prints its id (or the whole integration with --json).
    Create {
        /// Its name, 1 to 128 characters.
        #[arg(long)]
        name: String,
        /// Its settings, a JSON object.
        #[arg(long, value_parser = parse_object)]
        settings: Option<serde_json::Value>,
        /// Print the created integration as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the integrations: id, name and creation time, one a line (or JSON with --json).
    List {
        /// Print the list as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete an integration: its sessions end and its chats terminate.
    Delete {
        /// The integration id.
        id: String,
    },
}

fn parse_object(text: &str) -> Result<serde_json::Value, String> {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(value) if value.is_object() => Ok(value),
        Ok(_) => Err("must be a JSON object, such as {\"locale\":\"en\"}".to_owned()),
        Err(e) => Err(format!("not JSON: {e}")),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Integration {
    integration_id: String,
    name: String,
    #[serde(default)]
    created_at: String,
}

const TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) async fn run(args: ProvisionArgs) -> Result<(), CliError> {
    let resolved = args.target.resolve()?;
    let host = resolved.host()?;
    let tokens = resolved.token_client(false)?;
    let http = resolved.http(resolved.tls()?.as_deref())?;
    let account = resolved.account_id.clone().unwrap_or_default();
    let base = format!("{host}/api/digital/config/v1/accounts/{account}/integrations");
    let access = tokens
        .access_token()
        .await
        .map_err(|e| CliError::from(e).context("cannot get an access token"))?;
    let call = |request: reqwest::RequestBuilder| {
        request
            .bearer_auth(access.expose())
            .header("appkey", tokens.appkey().expose())
            .timeout(TIMEOUT)
            .send()
    };
    match args.action {
        Action::Create {
            name,
            settings,
            json,
        } => {
            let mut body = serde_json::json!({ "name": name });
            if let Some(settings) = settings {
                body["settings"] = settings;
            }
            let answer = expect(call(http.post(&base).json(&body)).await, 201).await?;
            let created: Integration = parse(&answer)?;
            if json {
                out(answer.trim());
            } else {
                out(created.integration_id);
            }
        }
        Action::List { json } => {
            let answer = expect(call(http.get(&base)).await, 200).await?;
            #[derive(Deserialize)]
            struct List {
                integrations: Vec<serde_json::Value>,
            }
            let list: List = parse(&answer)?;
            if json {
                out(serde_json::Value::Array(list.integrations));
            } else {
                for value in list.integrations {
                    let i: Integration = serde_json::from_value(value)
                        .map_err(|e| CliError::runtime(format!("unexpected answer: {e}")))?;
                    out(format!(
                        "{}\t{}\t{}",
                        i.integration_id, i.name, i.created_at
                    ));
                }
            }
        }
        Action::Delete { id } => {
            if id.is_empty() || id.contains(['/', '?', '#']) {
                return Err(CliError::usage(format!("{id:?} is not an integration id")));
            }
            expect(call(http.delete(format!("{base}/{id}"))).await, 204).await?;
            out(format!("deleted {id}"));
        }
    }
    Ok(())
}

/// The body of a response with the `wanted` status, or the error the server gave.
async fn expect(
    sent: Result<reqwest::Response, reqwest::Error>,
    wanted: u16,
) -> Result<String, CliError> {
    let response = sent.map_err(|e| CliError::from(e).context("provisioning"))?;
    let status = response.status().as_u16();
    let body = response
        .text()
        .await
        .map_err(|e| CliError::from(e).context("provisioning"))?;
    if status == wanted {
        return Ok(body);
    }
    let kind = match status {
        400 | 413 => Kind::Usage,
        other => status_kind(other),
    };
    Err(CliError::new(
        kind,
        format!("provisioning: HTTP {status}: {}", problem_text(&body)),
    ))
}

fn parse<T: serde::de::DeserializeOwned>(body: &str) -> Result<T, CliError> {
    serde_json::from_str(body).map_err(|e| CliError::runtime(format!("unexpected answer: {e}")))
}

/// A one-line summary of an RFC 7807 problem body: title, detail and field violations.
pub(crate) fn problem_text(body: &str) -> String {
    #[derive(Deserialize, Default)]
    struct Problem {
        title: Option<String>,
        detail: Option<String>,
        #[serde(default)]
        violations: Vec<Violation>,
    }
    #[derive(Deserialize)]
    struct Violation {
        field: Option<String>,
        message: Option<String>,
    }
    let Ok(problem) = serde_json::from_str::<Problem>(body) else {
        return "no problem details".to_owned();
    };
    let mut parts: Vec<String> = problem.title.into_iter().chain(problem.detail).collect();
    parts.extend(problem.violations.into_iter().map(|v| {
        format!(
            "{}: {}",
            v.field.unwrap_or_default(),
            v.message.unwrap_or_default()
        )
    }));
    if parts.is_empty() {
        "no problem details".to_owned()
    } else {
        parts.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::problem_text;

    #[test]
    fn problem_bodies_become_one_line() {
        let body = r#"{"title":"Bad Request","status":400,"violations":[{"field":"name","message":"must be a string of 1 to 128 characters"}]}"#;
        assert_eq!(
            problem_text(body),
            "Bad Request; name: must be a string of 1 to 128 characters"
        );
        assert_eq!(problem_text("<html>"), "no problem details");
    }
}
