//! Where chat tokens come from: a backend (the reference server `axp-token-server` or any
//! backend with its `POST /v1/getJWT` contract), token-client directly, or a fixed token.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use token_client::{CustomerRequest, TokenClient};

use crate::error::{CliError, Kind, status_kind};
use crate::provision::problem_text;

/// A source of chat tokens, cheap to clone into a token provider.
#[derive(Clone)]
pub(crate) enum TokenSource {
    /// A backend's `POST {url}/v1/getJWT`.
    Backend {
        http: reqwest::Client,
        url: String,
        customer: CustomerRequest,
    },
    /// token-client with the integration's client credentials (as a backend does).
    Direct {
        client: Arc<TokenClient>,
        customer: CustomerRequest,
    },
    /// A token given on the command line: no refresh.
    Fixed(String),
}

/// A token, and the appkey when the backend gave one.
pub(crate) struct Fetched {
    pub(crate) token: String,
    pub(crate) appkey: Option<String>,
}

const TIMEOUT: Duration = Duration::from_secs(15);

impl TokenSource {
    /// Whether the client can fetch fresh tokens from it by itself.
    pub(crate) fn refreshes(&self) -> bool {
        !matches!(self, TokenSource::Fixed(_))
    }

    /// A token (and the backend's appkey).
    pub(crate) async fn fetch(&self) -> Result<Fetched, CliError> {
        match self {
            TokenSource::Fixed(token) => Ok(Fetched {
                token: token.clone(),
                appkey: None,
            }),
            TokenSource::Direct { client, customer } => {
                let jwt = client.generate_jwt(customer).await?;
                Ok(Fetched {
                    token: jwt.token.expose().to_owned(),
                    appkey: None,
                })
            }
            TokenSource::Backend {
                http,
                url,
                customer,
            } => {
                let body = serde_json::json!({
                    "customerId": customer.customer_id(),
                    "customerName": customer.customer_name(),
                    "verifiedCustomer": customer.is_verified(),
                    "customerIdentifiers": customer.customer_identifiers(),
                });
                let (status, text) =
                    backend_call(url, http.post(format!("{url}/v1/getJWT")).json(&body)).await?;
                if status != 200 {
                    return Err(CliError::new(
                        status_kind(status),
                        format!(
                            "backend {url} answered HTTP {status}: {}",
                            problem_text(&text)
                        ),
                    ));
                }
                #[derive(Deserialize)]
                #[serde(rename_all = "camelCase")]
                struct Answer {
                    jwt_token: String,
                    appkey: Option<String>,
                }
                let answer: Answer = serde_json::from_str(&text).map_err(|_| {
                    CliError::runtime(format!("backend {url}: the answer has no jwtToken"))
                })?;
                Ok(Fetched {
                    token: answer.jwt_token,
                    appkey: answer.appkey,
                })
            }
        }
    }

    /// The backend's integration id (`GET {url}/v1/getIntegration`), for a backend source.
    pub(crate) async fn integration_id(&self) -> Result<Option<String>, CliError> {
        let TokenSource::Backend { http, url, .. } = self else {
            return Ok(None);
        };
        let (status, text) =
            backend_call(url, http.get(format!("{url}/v1/getIntegration"))).await?;
        if status != 200 {
            return Err(CliError::new(
                Kind::Runtime,
                format!("backend {url}: getIntegration answered HTTP {status}"),
            ));
        }
        Ok(Some(text.trim().to_owned()))
    }
}

/// One call to the backend: its status and body text, failures named after the backend.
async fn backend_call(
    url: &str,
    request: reqwest::RequestBuilder,
) -> Result<(u16, String), CliError> {
    let context = |e: reqwest::Error| CliError::from(e).context(&format!("backend {url}"));
    let response = request.timeout(TIMEOUT).send().await.map_err(context)?;
    let status = response.status().as_u16();
    let text = response.text().await.map_err(context)?;
    Ok((status, text))
}
