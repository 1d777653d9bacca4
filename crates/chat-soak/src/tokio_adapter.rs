//! The async client, `chat-tokio`, as a soak [`Adapter`].

use std::sync::Arc;

use async_trait::async_trait;
use chat_core::{EngagementId, Message};
use chat_tokio::{Client, StreamTransport};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::adapter::{
    Adapter, AdapterError, ConnectSpec, Connection, SoakClient, TimedEvent, Transport,
};

/// Drives [`chat_tokio::Client`].
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioAdapter;

fn error(e: &chat_tokio::Error) -> AdapterError {
    AdapterError::new(e.code(), e.to_string())
}

#[async_trait]
impl Adapter for TokioAdapter {
    fn name(&self) -> &'static str {
        "tokio"
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
        let (client, stream) =
            Client::builder(&spec.base_url, &spec.integration_id, &spec.appkey.0)
                .token_provider(provider)
                .config(spec.config.clone())
                .stream_transport(transport)
                .connect()
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
            client: Arc::new(TokioClient { client }),
            events: rx,
        })
    }
}

struct TokioClient {
    client: Client,
}

impl TokioClient {
    fn engagement(&self, id: &EngagementId) -> Result<chat_tokio::Engagement, AdapterError> {
        self.client
            .engagement(id)
            .ok_or_else(|| AdapterError::new("ACS-314", "engagement not known to this session"))
    }
}

#[async_trait]
impl SoakClient for TokioClient {
    fn session_id(&self) -> String {
        self.client.session_id().as_str().to_owned()
    }

    async fn create_engagement(&self) -> Result<EngagementId, AdapterError> {
        let chat = self
            .client
            .create_engagement()
            .await
            .map_err(|e| error(&e))?;
        Ok(chat.id().clone())
    }

    async fn join(&self, engagement: &EngagementId) -> Result<(), AdapterError> {
        let list = self
            .client
            .list_engagements()
            .await
            .map_err(|e| error(&e))?;
        let chat = list
            .into_iter()
            .find(|c| c.id() == engagement)
            .ok_or_else(|| AdapterError::new("ACS-314", "engagement not listed"))?;
        chat.join().await.map_err(|e| error(&e))?;
        Ok(())
    }

    async fn send(&self, engagement: &EngagementId, text: &str) -> Result<Message, AdapterError> {
        let chat = self.engagement(engagement)?;
        chat.send_message(text).await.map_err(|e| error(&e))
    }

    async fn history(&self, engagement: &EngagementId) -> Result<Vec<Message>, AdapterError> {
        let chat = self.engagement(engagement)?;
        chat.transcript().await.map_err(|e| error(&e))
    }

    async fn shutdown(&self) {
        let _ = self.client.shutdown(None).await;
        self.client.closed().await;
    }
}
