//! The audit at the end of a run: each engagement's dialog read straight from the emulator's
//! chat API (plain HTTP, not through an SDK) by a fresh session of the same customer, with
//! every fault cleared: the server's truth of what was stored, in order.

use std::time::Duration;

use chat_core::EngagementId;
use chat_core::wire::{CreateSessionRequest, MessagePage, RestMessage, Session};
use chat_emulator::Control;

use crate::session::{Dir, parse};

/// Where and as whom the audit reads.
pub(crate) struct Auditor<'a> {
    pub(crate) http: &'a reqwest::Client,
    pub(crate) control: &'a Control,
    /// The emulator itself, not the proxy.
    pub(crate) base_url: &'a str,
    pub(crate) integration_id: &'a str,
    pub(crate) appkey: &'a str,
}

impl Auditor<'_> {
    /// The messages of session `index` in the engagement's dialog: (message index, direction,
    /// number), by message index.
    pub(crate) async fn dialog(
        &self,
        customer: &str,
        index: usize,
        engagement: &EngagementId,
    ) -> Result<Vec<(u64, Dir, usize)>, String> {
        let mut last = String::new();
        for _ in 0..5 {
            match self.read(customer, engagement).await {
                Ok(all) => {
                    let mut dialog: Vec<(u64, Dir, usize)> = all
                        .iter()
                        .filter_map(|m| {
                            let (dir, n) = m.body.text().and_then(|t| parse(index, t))?;
                            Some((m.message_index, dir, n))
                        })
                        .collect();
                    dialog.sort_by_key(|d| d.0);
                    return Ok(dialog);
                }
                Err(e) => last = e,
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(last)
    }

    async fn read(
        &self,
        customer: &str,
        engagement: &EngagementId,
    ) -> Result<Vec<RestMessage>, String> {
        let token = self
            .control
            .mint_token(customer, true, Duration::from_secs(600));
        let api = format!(
            "{}/sdk/digital/chat/v1/integrations/{}",
            self.base_url, self.integration_id
        );
        let body = CreateSessionRequest {
            display_name: None,
            client_type: "web".to_owned(),
            session_parameters: None,
        };
        let answer = self
            .http
            .post(format!("{api}/sessions"))
            .bearer_auth(&token)
            .header("appkey", self.appkey)
            .json(&body)
            .send()
            .await
            .map_err(|e| format!("audit session: {}", e.without_url()))?;
        if !answer.status().is_success() {
            return Err(format!("audit session answered {}", answer.status()));
        }
        let session: Session = answer
            .json()
            .await
            .map_err(|e| format!("audit session body: {}", e.without_url()))?;
        let url = format!("{api}/engagements/{}/messages", engagement.as_str());
        let mut all = Vec::new();
        for page in 1..100_000u32 {
            let answer = self
                .http
                .get(&url)
                .query(&[
                    ("sessionId", session.session_id.as_str()),
                    ("pageSize", "50"),
                    ("orderBy", "ASC"),
                    ("pageNumber", &page.to_string()),
                ])
                .bearer_auth(&token)
                .header("appkey", self.appkey)
                .send()
                .await
                .map_err(|e| format!("audit history: {}", e.without_url()))?;
            if !answer.status().is_success() {
                return Err(format!("audit history answered {}", answer.status()));
            }
            let page: MessagePage = answer
                .json()
                .await
                .map_err(|e| format!("audit history body: {}", e.without_url()))?;
            let done = page.messages.len() < 50;
            all.extend(page.messages);
            if done {
                break;
            }
        }
        // The audit's session is not needed any more.
        let _ = self
            .http
            .delete(format!("{api}/sessions/{}", session.session_id.as_str()))
            .bearer_auth(&token)
            .header("appkey", self.appkey)
            .send()
            .await;
        Ok(all)
    }
}
