//! The stage of the crash and failover soaks: the in-process emulator (no simulated agent:
//! the parent is the agent) behind the soak's proxy, which the customer processes talk to, so
//! that the faults can cut their connections and take the server away.

use std::time::Duration;

use chat_emulator::{AgentMode, Control, Credentials, Emulator};

use crate::SoakError;
use crate::proxy::Proxy;

/// The clients' poll timeout (chat-core's configuration in [`crate::app`]); a hang fault
/// holds a poll one second longer, and the emulator holds a quiet poll half of it.
pub(crate) const POLL_TIMEOUT: Duration = Duration::from_secs(2);

/// The emulator and the proxy in front of it.
pub(crate) struct Stage {
    emulator: Emulator,
    pub(crate) proxy: Proxy,
    pub(crate) control: Control,
    pub(crate) credentials: Credentials,
}

impl Stage {
    /// Starts the emulator and the proxy.
    pub(crate) async fn start() -> Result<Self, SoakError> {
        let emulator = Emulator::builder()
            .hold_time(POLL_TIMEOUT / 2)
            .agent(AgentMode::Off)
            .ws_ping_interval(Duration::from_secs(5))
            .start()
            .await
            .map_err(|e| SoakError::Start(e.to_string()))?;
        let upstream = emulator
            .base_url()
            .trim_start_matches("http://")
            .parse()
            .map_err(|e| SoakError::Start(format!("emulator address: {e}")))?;
        let proxy = Proxy::start(upstream)
            .await
            .map_err(|e| SoakError::Start(format!("proxy: {e}")))?;
        let control = emulator.control();
        let credentials = emulator.credentials().clone();
        Ok(Self {
            emulator,
            proxy,
            control,
            credentials,
        })
    }

    /// A chat token for `customer_id`, good for `life`: the children's tokens are minted once
    /// for the whole run (so the token-expiry fault is not in these soaks' mix).
    pub(crate) fn token(&self, customer_id: &str, life: Duration) -> String {
        self.control.mint_token(customer_id, true, life)
    }

    /// Stops the proxy and the emulator.
    pub(crate) async fn stop(self) {
        drop(self.proxy);
        self.emulator.shutdown().await;
    }
}
