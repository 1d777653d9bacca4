//! `axp-chat chat`: an interactive, line-based chat on chat-tokio.
//!
//! Lines typed (or piped) are sent as messages; `/history`, `/participants`, `/leave`,
//! `/new`, `/retry`, `/help` and `/quit` are commands; end of input means `/quit`. The
//! transcript goes to stdout, connection state and progress to stderr.

use std::sync::Arc;

use chat_tokio::{
    Client, DisconnectReason, EndReason, Engagement, Event, EventStream, Message, Participant,
    ParticipantType, ShutdownReason, StreamFailure, StreamFailureReason, StreamTransport,
    TlsClientConfig,
};
use tokio::sync::mpsc;

use crate::error::{CliError, Kind};
use crate::output::{note, out};
use crate::source::TokenSource;
use crate::target::{Target, check_url};
use crate::token::Customer;

/// Chat as a customer: start a chat or join one of the customer's open chats, and type.
#[derive(clap::Args)]
pub(crate) struct ChatArgs {
    #[command(flatten)]
    target: Target,
    #[command(flatten)]
    customer: Customer,
    /// Get tokens from this backend (`POST {URL}/v1/getJWT`, such as token-client's
    /// `axp-token-server`); it may also supply the appkey and the integration id.
    #[arg(
        long,
        value_name = "URL",
        env = "AXP_BACKEND_URL",
        conflicts_with = "token"
    )]
    backend: Option<String>,
    /// Use this chat JWT (no automatic refresh). Without --token or --backend, tokens are
    /// minted with the client credentials, as a backend would.
    #[arg(
        long,
        env = "AXP_CHAT_TOKEN",
        hide_env_values = true,
        allow_hyphen_values = true
    )]
    token: Option<String>,
    #[command(flatten)]
    options: ChatOptions,
}

/// How to chat, shared with `demo`.
#[derive(clap::Args, Clone, Default)]
pub(crate) struct ChatOptions {
    /// Start a new chat even if the customer has open ones (by default the newest open one
    /// is joined).
    #[arg(long, conflicts_with = "join")]
    pub(crate) new: bool,
    /// Join this open chat of the customer.
    #[arg(long, value_name = "ENGAGEMENT_ID")]
    pub(crate) join: Option<String>,
    /// How events arrive.
    #[arg(long, value_enum, default_value_t = Transport::LongPoll)]
    pub(crate) transport: Transport,
    /// The name agents see (default: the name in the token).
    #[arg(long)]
    pub(crate) display_name: Option<String>,
}

/// The event stream transport.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default)]
pub(crate) enum Transport {
    /// HTTP long polling (what AXP serves).
    #[default]
    LongPoll,
    /// A WebSocket (the emulator's extension).
    Websocket,
    /// A WebSocket if the server upgrades, else long polling.
    Auto,
}

impl From<Transport> for StreamTransport {
    fn from(t: Transport) -> Self {
        match t {
            Transport::LongPoll => StreamTransport::LongPoll,
            Transport::Websocket => StreamTransport::WebSocket,
            Transport::Auto => StreamTransport::Auto,
        }
    }
}

/// Everything a chat needs, whatever the command that set it up.
pub(crate) struct Setup {
    pub(crate) host: String,
    pub(crate) integration_id: String,
    pub(crate) appkey: Option<String>,
    pub(crate) source: TokenSource,
    pub(crate) http: reqwest::Client,
    /// The TLS configuration of every transport (`--ca-cert`), if not the default.
    pub(crate) tls: Option<Arc<TlsClientConfig>>,
    pub(crate) allow_plain_http: bool,
    pub(crate) options: ChatOptions,
}

pub(crate) async fn run(args: ChatArgs) -> Result<(), CliError> {
    let resolved = args.target.resolve()?;
    let host = resolved.host()?;
    let tls = resolved.tls()?;
    let http = resolved.http(tls.as_deref())?;
    let source = if let Some(token) = args.token {
        TokenSource::Fixed(token)
    } else if let Some(url) = &args.backend {
        let url = check_url(url, resolved.allow_plain_http)?;
        TokenSource::Backend {
            http: http.clone(),
            url: url.as_str().trim_end_matches('/').to_owned(),
            customer: args.customer.request()?,
        }
    } else if resolved.has_client_credentials() {
        TokenSource::Direct {
            client: Arc::new(resolved.token_client(true)?),
            customer: args.customer.request()?,
        }
    } else {
        return Err(CliError::usage(
            "no way to get a chat token: give --backend URL, the client credentials \
             (--account-id, --client-id, --client-secret), or --token",
        ));
    };
    let integration_id = match &resolved.integration_id {
        Some(id) => id.clone(),
        None => source.integration_id().await?.ok_or_else(|| {
            CliError::usage("no integration id: give --integration-id or set AXP_INTEGRATION_ID")
        })?,
    };
    chat(Setup {
        host,
        integration_id,
        appkey: resolved.appkey.as_ref().map(|k| k.expose().to_owned()),
        source,
        http,
        tls,
        allow_plain_http: resolved.allow_plain_http,
        options: args.options,
    })
    .await
}

/// Connects, opens or joins a chat, and runs the conversation until `/quit` or end of input.
pub(crate) async fn chat(setup: Setup) -> Result<(), CliError> {
    note(format!("connecting to {} …", setup.host));
    let first = setup
        .source
        .fetch()
        .await
        .map_err(|e| e.context("cannot get a chat token"))?;
    let appkey = setup
        .appkey
        .or(first.appkey)
        .ok_or_else(|| CliError::usage("no appkey: give --appkey or set AXP_APPKEY"))?;
    let mut builder = Client::builder(&setup.host, &setup.integration_id, &appkey)
        .token(first.token)
        .http_client(setup.http.clone())
        .allow_plain_http(setup.allow_plain_http)
        .stream_transport(setup.options.transport.into());
    if let Some(tls) = &setup.tls {
        builder = builder.tls_config(Arc::clone(tls));
    }
    if let Some(name) = &setup.options.display_name {
        builder = builder.display_name(name.clone());
    }
    let refreshes = setup.source.refreshes();
    if refreshes {
        let source = setup.source.clone();
        builder = builder.token_provider(move || {
            let source = source.clone();
            async move {
                source
                    .fetch()
                    .await
                    .map(|f| f.token)
                    .map_err(|e| e.message.into())
            }
        });
    } else {
        note("[a fixed --token is not refreshed: the chat stops when it expires]");
    }
    let (client, events) = builder
        .connect()
        .await
        .map_err(|e| CliError::from(e).context(&format!("cannot connect to {}", setup.host)))?;
    note(format!("connected: session {}", client.session_id()));

    let mut state = Conversation {
        client: client.clone(),
        chat: None,
        active: false,
        connected: false,
        failed: false,
        refreshes,
        ended_by_server: false,
        fatal: None,
    };
    let result = state.open(&setup.options).await;
    let result = match result {
        Ok(()) => state.converse(events, stdin_lines()).await,
        Err(e) => Err(e),
    };
    // The chat itself stays open on the server (join it again later); the session ends.
    let _ = client.shutdown(Some(ShutdownReason::UserClosed)).await;
    let end = client.closed().await;
    result?;
    if let Some(fatal) = state.fatal {
        return Err(fatal);
    }
    if state.ended_by_server || end == EndReason::SessionInvalidated {
        return Err(CliError::runtime("the session was ended by the server"));
    }
    Ok(())
}

/// Lines of stdin, read on a thread of their own: a blocked terminal read must not keep the
/// runtime from shutting down, and a thread blocked in `read` does not keep the process alive.
fn stdin_lines() -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel(16);
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            if tx.blocking_send(line).is_err() {
                break;
            }
        }
    });
    rx
}

struct Conversation {
    client: Client,
    chat: Option<Engagement>,
    /// The chat is active: messages can be sent.
    active: bool,
    /// The event stream has been connected (so a new "connecting" is a reconnection).
    connected: bool,
    /// The connection has failed for good (until `/retry`).
    failed: bool,
    refreshes: bool,
    ended_by_server: bool,
    /// Why the chat cannot go on (the fixed token expired or was refused): the exit's error.
    fatal: Option<CliError>,
}

const HELP: &str = "type a line to send it; /history shows the transcript, /participants who \
                    is there, /leave ends the chat, /new starts another, /retry reconnects \
                    after a failure, /quit exits (the chat stays open)";

impl Conversation {
    /// Joins the chosen or newest open chat of the customer, or starts one.
    async fn open(&mut self, options: &ChatOptions) -> Result<(), CliError> {
        let open = &self.client.user_context().engagements;
        let pick = match (&options.join, options.new) {
            (Some(id), _) => Some(
                open.iter()
                    .find(|e| e.engagement_id.as_str() == id)
                    .cloned()
                    .ok_or_else(|| {
                        CliError::usage(format!("{id} is not an open chat of this customer"))
                    })?,
            ),
            (None, true) => None,
            (None, false) => open.last().cloned(),
        };
        match pick {
            Some(info) => {
                if open.len() > 1 {
                    note(format!(
                        "{} open chats; joining {} (--join ID picks another)",
                        open.len(),
                        info.engagement_id
                    ));
                }
                let chat = self.client.engagement_handle(info);
                chat.join().await?;
                out(format!("* joined chat {}", chat.id()));
                for p in chat.participants()? {
                    out(format!("* {} is here", who(&p)));
                }
                self.chat = Some(chat);
            }
            None => self.start().await?,
        }
        note(HELP);
        Ok(())
    }

    async fn start(&mut self) -> Result<(), CliError> {
        let chat = self.client.create_engagement().await?;
        out(format!(
            "* chat {} started, waiting for an agent",
            chat.id()
        ));
        self.chat = Some(chat);
        self.active = false;
        Ok(())
    }

    /// Input is only read when it can be acted on: not while a new or left chat is still
    /// changing state, so that piped lines run in order, none refused for being early.
    /// After the connection failed for good, input is read again, for `/retry`.
    fn ready_for_input(&self) -> bool {
        self.chat.is_none() || self.active || self.failed
    }

    async fn converse(
        &mut self,
        events: EventStream,
        mut input: mpsc::Receiver<String>,
    ) -> Result<(), CliError> {
        let interrupted = tokio::signal::ctrl_c();
        tokio::pin!(interrupted);
        loop {
            tokio::select! {
                // Ctrl-C is /quit: the session is closed properly, the chat stays open.
                _ = &mut interrupted => return Ok(()),
                line = input.recv(), if self.ready_for_input() => {
                    let Some(line) = line else { return Ok(()) };
                    if !self.command(line.trim()).await? {
                        return Ok(());
                    }
                }
                event = events.recv() => {
                    let Some(event) = event else { return Ok(()) };
                    if !self.event(event.event) {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Runs one line; `false` to quit.
    async fn command(&mut self, line: &str) -> Result<bool, CliError> {
        match line {
            "" => {}
            "/quit" | "/exit" => return Ok(false),
            "/help" => note(HELP),
            "/leave" => match &self.chat {
                Some(chat) => match chat.disconnect(Some(DisconnectReason::UserClosed)).await {
                    // ENGAGEMENT_TERMINATED follows and clears the chat.
                    Ok(()) => self.active = false,
                    Err(e) => note(format!("cannot leave: {e}")),
                },
                None => note("no chat to leave (/new starts one)"),
            },
            "/new" => match &self.chat {
                Some(_) => note("leave this chat first (/leave)"),
                None => {
                    if let Err(e) = self.start().await {
                        note(format!("cannot start a chat: {e}"));
                    }
                }
            },
            "/retry" => match self.client.retry_connection() {
                Ok(()) => note("[retrying the connection]"),
                Err(e) => note(format!("cannot retry: {e}")),
            },
            "/participants" => match &self.chat {
                Some(chat) => match chat.participants() {
                    Ok(list) => {
                        for p in list {
                            out(format!("* {} is here", who(&p)));
                        }
                    }
                    Err(e) => note(format!("cannot list participants: {e}")),
                },
                None => note("no chat"),
            },
            "/history" => match &self.chat {
                Some(chat) => match transcript(chat).await {
                    Ok(messages) => {
                        out("--- history ---");
                        for m in &messages {
                            out(format!("#{} {}", m.message_index, said(m)));
                        }
                        out("--- end of history ---");
                    }
                    Err(e) => note(format!("cannot fetch the history: {e}")),
                },
                None => note("no chat"),
            },
            command if command.starts_with('/') => {
                note(format!("unknown command {command}; /help lists them"));
            }
            text => match &self.chat {
                // MESSAGE_DELIVERED shows it in the transcript.
                Some(chat) => {
                    if let Err(e) = chat.send_message(text).await {
                        note(format!("not sent: {e}"));
                    }
                }
                None => note("no chat: /new starts one"),
            },
        }
        Ok(true)
    }

    /// Shows one event; `false` when the session is over.
    fn event(&mut self, event: Event) -> bool {
        let ours =
            |id: &chat_tokio::EngagementId| self.chat.as_ref().is_some_and(|chat| chat.id() == id);
        match event {
            Event::MessageArrived(m) | Event::MessageDelivered(m) if ours(&m.engagement_id) => {
                out(said(&m));
            }
            Event::ParticipantAdded(p) if ours(&p.engagement.engagement_id) => {
                out(format!("* {} joined", who(&p.participant)));
            }
            Event::ParticipantDisconnected(p) if ours(&p.engagement.engagement_id) => {
                out(format!("* {} left", who(&p.participant)));
            }
            Event::EngagementActive(e) if ours(&e.engagement_id) => {
                self.active = true;
                note("[chat active: type to send]");
            }
            Event::EngagementTerminated(e) if ours(&e.engagement_id) => {
                self.chat = None;
                self.active = false;
                out("* the chat has ended");
                note("/new starts another chat, /quit exits");
            }
            Event::EngagementError {
                engagement, error, ..
            } if ours(&engagement.engagement_id) => {
                self.chat = None;
                self.active = false;
                out(format!(
                    "* the chat failed: {}",
                    error.title.as_deref().unwrap_or("engagement error")
                ));
            }
            Event::EventStreamConnecting if self.connected => note("[reconnecting …]"),
            Event::EventStreamConnecting => note("[connecting the event stream …]"),
            Event::EventStreamConnected => {
                self.connected = true;
                self.failed = false;
                note("[connected]");
            }
            Event::EventStreamFailed(f) => {
                self.failed = f.reason == StreamFailureReason::ReconnectionTimeout;
                note(failure_line(&f, self.refreshes));
                match f.reason {
                    // Nothing will replace a fixed token: the chat cannot go on.
                    StreamFailureReason::Unauthorized | StreamFailureReason::Forbidden
                        if !self.refreshes =>
                    {
                        self.fatal = Some(CliError::new(
                            Kind::Rejected,
                            "the server refused the chat token (a fixed --token is not refreshed)",
                        ));
                        return false;
                    }
                    // The session is over: nothing more comes (exit 1).
                    StreamFailureReason::ClientSessionInvalidated => {
                        self.ended_by_server = true;
                        return false;
                    }
                    _ => {}
                }
            }
            Event::EventStreamClosed => note("[event stream closed]"),
            Event::TokenExpiryReminder { expires_in, .. } if self.refreshes => note(format!(
                "[the token expires in {}s; refreshing]",
                expires_in.as_secs()
            )),
            Event::TokenExpiryReminder { expires_in, .. } => note(format!(
                "[the token expires in {}s and cannot be refreshed (--token)]",
                expires_in.as_secs()
            )),
            Event::TokenExpired { .. } if self.refreshes => note("[the token has expired]"),
            Event::TokenExpired { .. } => {
                note("[the token has expired and cannot be refreshed (--token)]");
                self.fatal = Some(CliError::new(
                    Kind::Rejected,
                    "the chat token expired (a fixed --token is not refreshed)",
                ));
                return false;
            }
            Event::IdleTimeoutExpired { grace_period } => note(format!(
                "[idle: the session ends in {}s unless you type]",
                grace_period.as_secs()
            )),
            Event::Shutdown { reason } => {
                if reason != Some(ShutdownReason::UserClosed) {
                    self.ended_by_server = true;
                }
                note("[session closed]");
                return false;
            }
            _ => {}
        }
        true
    }
}

/// The state line of an `EVENT_STREAM_FAILED`.
fn failure_line(f: &StreamFailure, refreshes: bool) -> String {
    match f.reason {
        StreamFailureReason::ReconnectionTimeout => format!(
            "[connection failed: {} Type /retry to try again, /quit to exit]",
            f.reason.message()
        ),
        StreamFailureReason::Unauthorized | StreamFailureReason::Forbidden if refreshes => {
            "[the token was refused; fetching a new one]".to_owned()
        }
        StreamFailureReason::Unauthorized | StreamFailureReason::Forbidden => {
            "[the token was refused and cannot be refreshed (--token)]".to_owned()
        }
        StreamFailureReason::ClientSessionInvalidated => {
            "[the server ended the session]".to_owned()
        }
        reason => match f.retry_after {
            Some(after) => format!(
                "[connection lost ({}); retrying in {:.1}s]",
                reason.as_str(),
                after.as_secs_f64()
            ),
            None => format!("[connection lost ({})]", reason.as_str()),
        },
    }
}

/// The whole transcript of a chat from the server's history, oldest first.
async fn transcript(chat: &Engagement) -> Result<Vec<Message>, chat_tokio::Error> {
    let mut pager = chat.history(50).await?;
    let mut messages = pager.items().to_vec();
    while pager.older().await? {
        messages.extend(pager.items().iter().cloned());
    }
    messages.sort_by_key(|m| m.message_index);
    messages.dedup_by_key(|m| m.message_index);
    Ok(messages)
}

/// The participant's name (else its kind), or "you" for the customer.
fn who(p: &Participant) -> String {
    let kind = match p.participant_type {
        ParticipantType::Customer => return "you".to_owned(),
        ParticipantType::Agent => "agent",
        ParticipantType::Supervisor => "supervisor",
        ParticipantType::System => "system",
        ParticipantType::Bot => "bot",
        _ => "participant",
    };
    // The emulator's names already say what they are ("Alex (agent)").
    p.display_name.clone().unwrap_or_else(|| kind.to_owned())
}

/// "who: text".
fn said(m: &Message) -> String {
    let who = match m.sender.participant_type {
        ParticipantType::Customer => "you".to_owned(),
        _ => m
            .sender
            .display_name
            .clone()
            .unwrap_or_else(|| who(&m.sender)),
    };
    format!(
        "{who}: {}",
        m.text().unwrap_or("<a message that is not text>")
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chat_tokio::{StreamFailure, StreamFailureReason};

    use super::failure_line;

    fn failure(reason: StreamFailureReason, retry_after: Option<Duration>) -> StreamFailure {
        StreamFailure {
            reason,
            retry_after,
        }
    }

    #[test]
    fn a_given_up_connection_prompts_for_retry() {
        let line = failure_line(
            &failure(StreamFailureReason::ReconnectionTimeout, None),
            true,
        );
        assert_eq!(
            line,
            "[connection failed: ACS-306 : Server is unreachable. Type /retry to try again, /quit to exit]"
        );
    }

    #[test]
    fn retrying_failures_say_when() {
        let line = failure_line(
            &failure(
                StreamFailureReason::ServerUnreachable,
                Some(Duration::from_secs(2)),
            ),
            true,
        );
        assert_eq!(
            line,
            "[connection lost (SERVER_UNREACHABLE); retrying in 2.0s]"
        );
    }

    #[test]
    fn a_refused_token_is_refreshed_unless_fixed() {
        let refused = failure(StreamFailureReason::Unauthorized, None);
        assert!(failure_line(&refused, true).contains("fetching a new one"));
        assert!(failure_line(&refused, false).contains("cannot be refreshed"));
    }
}
