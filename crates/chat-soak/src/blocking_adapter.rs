//! The blocking client, `chat-blocking`, as a soak [`Adapter`]: every call runs on tokio's
//! blocking pool, and one thread per session reads the blocking [`chat_blocking::EventStream`]
//! (which also drives the client's protocol loop) and forwards its events.

use std::sync::Arc;

use async_trait::async_trait;
use chat_blocking::{Client, StreamTransport};
use chat_core::{EngagementId, Message};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::adapter::{
    Adapter, AdapterError, ConnectSpec, Connection, SoakClient, TimedEvent, Transport,
};

/// Drives [`chat_blocking::Client`].
#[derive(Debug, Clone, Copy, Default)]
pub struct BlockingAdapter;

fn error(e: &chat_blocking::Error) -> AdapterError {
    AdapterError::new(e.code(), e.to_string())
}

fn panicked(e: &tokio::task::JoinError) -> AdapterError {
    AdapterError::new("SOAK", format!("blocking call did not finish: {e}"))
}

/// Runs a blocking call on tokio's blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, AdapterError> + Send + 'static,
) -> Result<T, AdapterError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| panicked(&e))?
}

#[async_trait]
impl Adapter for BlockingAdapter {
    fn name(&self) -> &'static str {
        "blocking"
    }

    async fn connect(&self, spec: &ConnectSpec) -> Result<Connection, AdapterError> {
        let spec = spec.clone();
        let (client, connection) = blocking(move || {
            let tokens = Arc::clone(&spec.tokens);
            let provider = move || -> Result<String, chat_blocking::BoxError> { Ok(tokens.mint()) };
            let transport = match spec.transport {
                Transport::LongPoll => StreamTransport::LongPoll,
                Transport::WebSocket => StreamTransport::WebSocket,
            };
            Client::builder(&spec.base_url, &spec.integration_id, &spec.appkey.0)
                .token_provider(provider)
                .config(spec.config.clone())
                .stream_transport(transport)
                .connect()
                .map_err(|e| error(&e))
        })
        .await?;
        let (tx, rx) = mpsc::unbounded_channel();
        let reader = std::thread::Builder::new()
            .name("soak-events".to_owned())
            .spawn(move || {
                while let Some(e) = connection.recv() {
                    let timed = TimedEvent {
                        event: e.event,
                        at: Instant::from_std(std::time::Instant::now()),
                    };
                    if tx.send(timed).is_err() {
                        break;
                    }
                }
            });
        if let Err(e) = reader {
            let _ = client.shutdown(None);
            return Err(AdapterError::new("SOAK", format!("no reader thread: {e}")));
        }
        Ok(Connection {
            client: Arc::new(BlockingClient { client }),
            events: rx,
        })
    }
}

struct BlockingClient {
    client: Client,
}

fn engagement(
    client: &Client,
    id: &EngagementId,
) -> Result<chat_blocking::Engagement, AdapterError> {
    client
        .engagement(id)
        .ok_or_else(|| AdapterError::new("ACS-314", "engagement not known to this session"))
}

#[async_trait]
impl SoakClient for BlockingClient {
    fn session_id(&self) -> String {
        self.client.session_id().as_str().to_owned()
    }

    async fn create_engagement(&self) -> Result<EngagementId, AdapterError> {
        let client = self.client.clone();
        blocking(move || {
            let chat = client.create_engagement().map_err(|e| error(&e))?;
            Ok(chat.id().clone())
        })
        .await
    }

    async fn join(&self, id: &EngagementId) -> Result<(), AdapterError> {
        let client = self.client.clone();
        let id = id.clone();
        blocking(move || {
            let list = client.list_engagements().map_err(|e| error(&e))?;
            let chat = list
                .into_iter()
                .find(|c| c.id() == &id)
                .ok_or_else(|| AdapterError::new("ACS-314", "engagement not listed"))?;
            chat.join().map_err(|e| error(&e))?;
            Ok(())
        })
        .await
    }

    async fn send(&self, id: &EngagementId, text: &str) -> Result<Message, AdapterError> {
        let client = self.client.clone();
        let id = id.clone();
        let text = text.to_owned();
        blocking(move || {
            engagement(&client, &id)?
                .send_message(&text)
                .map_err(|e| error(&e))
        })
        .await
    }

    async fn history(&self, id: &EngagementId) -> Result<Vec<Message>, AdapterError> {
        let client = self.client.clone();
        let id = id.clone();
        blocking(move || {
            let chat = engagement(&client, &id)?;
            chat.transcript().map_err(|e| error(&e))
        })
        .await
    }

    async fn shutdown(&self) {
        let client = self.client.clone();
        let _ = tokio::task::spawn_blocking(move || client.shutdown(None)).await;
    }
}
