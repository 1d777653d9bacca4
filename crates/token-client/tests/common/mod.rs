//! Shared test helpers: the emulator, a client configured for it, and a manual clock.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chat_emulator::Emulator;
use token_client::{Clock, RetryPolicy, Sleep, TokenClient, TokenClientConfig};

/// A clock that moves only when told, and whose sleeps complete at once (recorded).
#[derive(Debug)]
pub struct ManualClock {
    base: Instant,
    offset: Mutex<Duration>,
    sleeps: Mutex<Vec<Duration>>,
}

impl ManualClock {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            base: Instant::now(),
            offset: Mutex::new(Duration::ZERO),
            sleeps: Mutex::new(Vec::new()),
        })
    }

    pub fn advance(&self, by: Duration) {
        *self.offset.lock().unwrap() += by;
    }

    pub fn sleeps(&self) -> Vec<Duration> {
        self.sleeps.lock().unwrap().clone()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.base + *self.offset.lock().unwrap()
    }

    fn sleep(&self, duration: Duration) -> Sleep {
        self.sleeps.lock().unwrap().push(duration);
        Box::pin(std::future::ready(()))
    }
}

pub async fn emulator() -> Emulator {
    Emulator::builder().start().await.unwrap()
}

pub fn config(emu: &Emulator) -> TokenClientConfig {
    let c = emu.credentials();
    TokenClientConfig::new(
        emu.base_url(),
        c.account_id.clone(),
        c.client_id.clone(),
        c.client_secret.clone(),
        c.appkey.clone(),
        c.integration_id.clone(),
    )
    .with_retry(RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        max_retry_after: Duration::from_secs(30),
    })
}

/// A client for `emu` with a manual clock.
pub fn client(emu: &Emulator) -> (TokenClient, Arc<ManualClock>) {
    client_with(config(emu))
}

pub fn client_with(config: TokenClientConfig) -> (TokenClient, Arc<ManualClock>) {
    let clock = ManualClock::new();
    let client = TokenClient::builder(config)
        .clock(clock.clone())
        .build()
        .unwrap();
    (client, clock)
}

/// Everything a tracing subscriber writes, kept in memory for a test to read back
/// (`.with_writer(move || buffer.clone())`).
#[derive(Clone, Default)]
pub struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogBuffer {
    /// What was written so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}
