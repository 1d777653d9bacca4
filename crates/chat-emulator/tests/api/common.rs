//! Shared helpers.

use std::time::Duration;

use chat_emulator::{AgentMode, Emulator};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

pub struct Harness {
    pub emu: Emulator,
    pub http: reqwest::Client,
}

pub async fn start(agent: AgentMode) -> Harness {
    start_with(Emulator::builder().agent(agent).allow_short_token_ttl(true)).await
}

pub async fn start_with(builder: chat_emulator::EmulatorBuilder) -> Harness {
    let emu = builder
        .hold_time(Duration::from_millis(300))
        .agent_delay(Duration::from_millis(20))
        .start()
        .await
        .unwrap();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    Harness { emu, http }
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Harness {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.emu.base_url())
    }

    pub fn chat(&self, path: &str) -> String {
        format!(
            "{}/sdk/digital/chat/v1/integrations/{}{path}",
            self.emu.base_url(),
            self.emu.credentials().integration_id
        )
    }

    pub async fn access_token(&self) -> String {
        let c = self.emu.credentials();
        let r = self
            .http
            .post(self.url(&format!(
                "/api/auth/v1/{}/protocol/openid-connect/token",
                c.account_id
            )))
            .header("appkey", &c.appkey)
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", c.client_id.as_str()),
                ("client_secret", c.client_secret.as_str()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json::<Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// A chat token through OAuth + the token API.
    pub async fn jwt(&self, customer_id: &str, verified: bool) -> String {
        let access = self.access_token().await;
        let r = self
            .token_api(
                &access,
                json!({
                    "integrationId": self.emu.credentials().integration_id,
                    "customerId": customer_id,
                    "customerName": format!("Name of {customer_id}"),
                    "verifiedCustomer": verified,
                    "ttl": 15,
                }),
            )
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        r.body["jwtToken"].as_str().unwrap().to_owned()
    }

    pub async fn token_api(&self, access: &str, body: Value) -> Reply {
        let c = self.emu.credentials();
        let r = self
            .http
            .post(self.url(&format!(
                "/api/digital/chat/v1/accounts/{}/tokens",
                c.account_id
            )))
            .bearer_auth(access)
            .header("appkey", &c.appkey)
            .json(&body)
            .send()
            .await
            .unwrap();
        reply(r).await
    }

    /// A chat API call with the given token and the right appkey.
    pub async fn call(&self, method: Method, url: &str, token: &str, body: Option<Value>) -> Reply {
        let mut request = self
            .http
            .request(method, url)
            .bearer_auth(token)
            .header("appkey", &self.emu.credentials().appkey);
        if let Some(body) = body {
            request = request.json(&body);
        }
        reply(request.send().await.unwrap()).await
    }

    pub async fn create_session(&self, token: &str) -> String {
        let r = self
            .call(
                Method::POST,
                &self.chat("/sessions"),
                token,
                Some(json!({"clientType": "web"})),
            )
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        r.body["sessionId"].as_str().unwrap().to_owned()
    }

    /// Creates an engagement; returns (engagementId, dialogId).
    pub async fn create_engagement(&self, token: &str, session: &str) -> (String, String) {
        let r = self
            .call(
                Method::POST,
                &self.chat("/engagements"),
                token,
                Some(json!({"sessionId": session, "engagementParameters": {}})),
            )
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        (
            r.body["engagementId"].as_str().unwrap().to_owned(),
            r.body["dialogs"][0]["dialogId"]
                .as_str()
                .unwrap()
                .to_owned(),
        )
    }

    pub async fn poll(&self, token: &str, session: &str, last: Option<&str>) -> Reply {
        let mut url = self.chat(&format!("/sessions/{session}/events"));
        if let Some(last) = last {
            url.push_str(&format!("?lastEventId={last}"));
        }
        self.call(Method::GET, &url, token, None).await
    }

    /// Polls (acknowledging as it goes) until an event satisfying `want` arrives; returns all
    /// events seen up to and including it, and the cursor.
    pub async fn poll_until(
        &self,
        token: &str,
        session: &str,
        cursor: &mut Option<String>,
        want: impl Fn(&Value) -> bool,
    ) -> Vec<Value> {
        let mut seen = Vec::new();
        for _ in 0..50 {
            let r = self.poll(token, session, cursor.as_deref()).await;
            assert_eq!(r.status, 200, "{:?}", r.body);
            for event in r.body.as_array().unwrap() {
                *cursor = Some(event["eventId"].as_str().unwrap().to_owned());
                seen.push(event.clone());
                if want(event) {
                    return seen;
                }
            }
        }
        panic!("event never arrived; saw {seen:?}");
    }
}

pub async fn reply(r: reqwest::Response) -> Reply {
    let status = r.status();
    let headers = r.headers().clone();
    let bytes = r.bytes().await.unwrap();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()))
    };
    Reply {
        status,
        headers,
        body,
    }
}

pub fn is_problem(r: &Reply, status: u16) -> bool {
    r.status.as_u16() == status
        && r.headers["content-type"] == "application/problem+json"
        && r.body["status"] == status
        && r.body["title"].is_string()
        && r.body["detail"].is_string()
}
