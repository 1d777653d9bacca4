//! The async client, `chat-tokio`, as a soak [`Adapter`].

use std::sync::Arc;

use async_trait::async_trait;
use chat_core::{EngagementId, Message};
use chat_tokio::{Client, StreamTransport, token_provider_fn};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::adapter::{
    Adapter, AdapterError, ConnectSpec, Connection, SoakClient, TimedEvent, Transport,
};

/// History page size: the API's maximum.
const PAGE_SIZE: usize = 50;

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
        let provider = token_provider_fn(move || {
            let token = tokens.mint();
            async move { Ok(token) }
        });
        let transport = match spec.transport {
            Transport::LongPoll => StreamTransport::LongPoll,
            Transport::WebSocket => StreamTransport::WebSocket,
        };
        let (client, mut stream) =
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
    async fn engagement(&self, id: &EngagementId) -> Result<chat_tokio::Engagement, AdapterError> {
        self.client
            .engagement(id)
            .await
            .map_err(|e| error(&e))?
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
            .create_engagement(Default::default())
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
        let chat = self.engagement(engagement).await?;
        chat.send_message(text, None).await.map_err(|e| error(&e))
    }

    async fn history(&self, engagement: &EngagementId) -> Result<Vec<Message>, AdapterError> {
        let chat = self.engagement(engagement).await?;
        let mut pager = chat.history(PAGE_SIZE).await.map_err(|e| error(&e))?;
        let mut all = pager.items().to_vec();
        while pager.older().await.map_err(|e| error(&e))? {
            all.extend_from_slice(pager.items());
        }
        Ok(all)
    }

    async fn shutdown(&self) {
        let _ = self.client.shutdown(None).await;
        self.client.closed().await;
    }
}
