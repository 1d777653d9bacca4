//! The smol client, `chat-smol` (the embedder's example adapter), as a soak [`Adapter`].
//! Its handles are `Send + Sync` and runtime-agnostic: the soak awaits them on tokio while
//! each client's own thread carries its I/O on smol.

use std::sync::Arc;

use async_trait::async_trait;
use chat_core::{EngagementId, Message};
use chat_smol::{Client, StreamTransport};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::adapter::{
    Adapter, AdapterError, ConnectSpec, Connection, SoakClient, TimedEvent, Transport,
};

/// Drives [`chat_smol::Client`].
#[derive(Debug, Clone, Copy, Default)]
pub struct SmolAdapter;

fn error(e: &chat_smol::Error) -> AdapterError {
    AdapterError::new(e.code(), e.to_string())
}

#[async_trait]
impl Adapter for SmolAdapter {
    fn name(&self) -> &'static str {
        "smol"
    }

    async fn connect(&self, spec: &ConnectSpec) -> Result<Connection, AdapterError> {
        let tokens = Arc::clone(&spec.tokens);
        let provider = move || {
            let token = tokens.mint();
            async move { Ok(token) }
        };
        let transport = match spec.transport {
            Transport::LongPoll => StreamTransport::LongPoll,
            Transport::WebSocket => StreamTransport::WebSocket,
        };
        let (client, mut stream) =
            Client::builder(&spec.base_url, &spec.integration_id, &spec.appkey.0)
                .config(spec.config.clone())
                .stream_transport(transport)
                .connect(provider)
                .await
                .map_err(|e| error(&e))?;
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(e) = stream.recv().await {
                let timed = TimedEvent {
                    event: e.event,
                    at: Instant::now(),
                };
                if tx.send(timed).is_err() {
                    break;
                }
            }
        });
        Ok(Connection {
            client: Arc::new(SmolClient { client }),
            events: rx,
        })
    }
}

struct SmolClient {
    client: Client,
}

#[async_trait]
impl SoakClient for SmolClient {
    fn session_id(&self) -> String {
        self.client.session_id().as_str().to_owned()
    }

    async fn create_engagement(&self) -> Result<EngagementId, AdapterError> {
        let chat = self
            .client
            .create_engagement()
            .await
            .map_err(|e| error(&e))?;
        Ok(chat.engagement_id)
    }

    async fn join(&self, engagement: &EngagementId) -> Result<(), AdapterError> {
        let list = self
            .client
            .list_engagements()
            .await
            .map_err(|e| error(&e))?;
        if !list.iter().any(|c| &c.engagement_id == engagement) {
            return Err(AdapterError::new("ACS-314", "engagement not listed"));
        }
        self.client.join(engagement).await.map_err(|e| error(&e))?;
        Ok(())
    }

    async fn send(&self, engagement: &EngagementId, text: &str) -> Result<Message, AdapterError> {
        self.client
            .send_message(engagement, text)
            .await
            .map_err(|e| error(&e))
    }

    async fn history(&self, engagement: &EngagementId) -> Result<Vec<Message>, AdapterError> {
        self.client
            .transcript(engagement)
            .await
            .map_err(|e| error(&e))
    }

    async fn shutdown(&self) {
        let _ = self.client.shutdown(None).await;
        self.client.closed().await;
    }
}
