//! `axp-chat chat`: an interactive, line-based chat on chat-tokio.
//!
//! Lines typed (or piped) are sent as messages; `/history`, `/participants`, `/leave`,
//! `/new`, `/retry`, `/help` and `/quit` are commands; `//text` sends `/text`; end of input
//! means `/quit`. The transcript goes to stdout, connection state and progress to stderr.
//! Joining an open chat again shows what came while the CLI was away: the last message each
//! chat showed is remembered in a small state file ([`crate::seen`]).

use std::sync::Arc;

use chat_tokio::{
    Client, DisconnectReason, EndReason, Engagement, Event, EventStream, Message, Participant,
    ParticipantType, ShutdownReason, StreamFailure, StreamFailureReason, StreamTransport,
    TlsClientConfig,
};
use tokio::sync::mpsc;

use crate::error::{CliError, Kind};
use crate::output::{note, out};
use crate::seen::Seen;
use crate::source::TokenSource;
use crate::target::{Target, check_integration_id, check_url};
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
    let customer = || -> Result<token_client::CustomerRequest, CliError> {
        let request = args.customer.request()?;
        if args.customer.is_guest() {
            // A guest's id is random: without it, the chat cannot be joined again.
            note(format!(
                "guest id {id}: `axp-chat chat --guest-id {id}` joins this guest's chats again",
                id = request.customer_id()
            ));
        }
        Ok(request)
    };
    let source = if let Some(token) = args.token.clone() {
        TokenSource::Fixed(token)
    } else if let Some(url) = &args.backend {
        let url = check_url(url, resolved.allow_plain_http)?;
        TokenSource::Backend {
            http: http.clone(),
            url: url.as_str().trim_end_matches('/').to_owned(),
            customer: customer()?,
        }
    } else if resolved.has_client_credentials() {
        TokenSource::Direct {
            client: Arc::new(resolved.token_client(true)?),
            customer: customer()?,
        }
    } else {
        return Err(CliError::usage(
            "no way to get a chat token: give --backend URL, the client credentials \
             (--account-id, --client-id, --client-secret), or --token",
        ));
    };
    let integration_id = match &resolved.integration_id {
        Some(id) => {
            check_integration_id(id)?;
            id.clone()
        }
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
        seen: Seen::open(),
        last_shown: None,
        active: false,
        connected: false,
        failed: false,
        refreshes,
        ended_by_server: false,
        fatal: None,
        scripted: !std::io::IsTerminal::is_terminal(&std::io::stdin()),
        awaiting: None,
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
    /// Where the last message shown of each chat is remembered, across runs.
    seen: Seen,
    /// The index of the last message of this chat shown: what the history on rejoining
    /// already printed is not printed again when the event stream delivers it too.
    last_shown: Option<u64>,
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
    /// Input is a pipe or a file, not a person: a script's lines take turns with the other
    /// side (see `awaiting`).
    scripted: bool,
    /// Until when a script waits for the other side's turn before its next line: for their
    /// first message in a new chat, and for the answer after each message sent.
    awaiting: Option<tokio::time::Instant>,
}

/// The longest a script waits for the other side's turn before reading on.
const TURN: std::time::Duration = std::time::Duration::from_secs(10);

const HELP: &str = "type a line to send it (//text sends /text); /history shows the \
                    transcript, /participants who is there, /leave ends the chat, /new starts \
                    another, /retry reconnects after a failure, /quit exits (the chat stays \
                    open)";

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
                out(present(&chat.participants()?));
                self.catch_up(&chat).await;
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
        self.last_shown = None;
        self.await_turn();
        Ok(())
    }

    /// On joining a chat again: the messages since the last one shown here (from an earlier
    /// run), oldest first; all of them if this machine never showed the chat.
    async fn catch_up(&mut self, chat: &Engagement) {
        let last = self.seen.last(chat.id().as_str());
        self.last_shown = last;
        let messages = match transcript(chat).await {
            Ok(messages) => messages,
            Err(e) => {
                note(format!("cannot fetch what came while you were away: {e}"));
                return;
            }
        };
        let missed: Vec<&Message> = messages
            .iter()
            .filter(|m| last.is_none_or(|last| m.message_index > last))
            .collect();
        if missed.is_empty() {
            return;
        }
        out(if last.is_some() {
            "--- while you were away ---"
        } else {
            "--- earlier in this chat ---"
        });
        for m in missed {
            self.show(m);
        }
        out("--- now ---");
    }

    /// Prints a message of the chat once: a message already shown (from the history on
    /// rejoining) is not shown again when the event stream delivers it.
    /// Whether it was new.
    fn show(&mut self, m: &Message) -> bool {
        if self.last_shown.is_some_and(|last| m.message_index <= last) {
            return false;
        }
        out(said(m));
        self.last_shown = Some(m.message_index);
        self.seen.record(m.engagement_id.as_str(), m.message_index);
        true
    }

    /// Input is only read when it can be acted on: not while a new or left chat is still
    /// changing state, so that piped lines run in order, none refused for being early.
    /// After the connection failed for good, input is read again, for `/retry`.
    fn ready_for_input(&self) -> bool {
        (self.chat.is_none() || self.active || self.failed) && self.awaiting.is_none()
    }

    /// A script waits for the other side before its next line (a person types when they like).
    fn await_turn(&mut self) {
        if self.scripted {
            self.awaiting = Some(tokio::time::Instant::now() + TURN);
        }
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
                () = tokio::time::sleep_until(self.awaiting.unwrap_or_else(tokio::time::Instant::now)),
                    if self.awaiting.is_some() =>
                {
                    self.awaiting = None;
                    note("[no answer yet; reading on]");
                }
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
                    Ok(list) => out(present(&list)),
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
            // The escape: `//text` sends `/text`.
            command if command.starts_with('/') && !command.starts_with("//") => {
                note(format!(
                    "unknown command {command}; /help lists them (//text sends /text)"
                ));
            }
            text => match &self.chat {
                // MESSAGE_DELIVERED shows it in the transcript.
                Some(chat) => {
                    let text = text
                        .strip_prefix('/')
                        .filter(|t| t.starts_with('/'))
                        .unwrap_or(text);
                    match chat.send_message(text).await {
                        Ok(_) => self.await_turn(),
                        Err(e) => note(format!("not sent: {e}")),
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
                // The other side's turn came (a new message, not one shown already): a
                // script reads on.
                let new = self.show(&m);
                if new && m.sender.participant_type != ParticipantType::Customer {
                    self.awaiting = None;
                }
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
                self.awaiting = None;
                out("* the chat has ended");
                note("/new starts another chat, /quit exits");
            }
            Event::EngagementError {
                engagement, error, ..
            } if ours(&engagement.engagement_id) => {
                self.chat = None;
                self.active = false;
                self.awaiting = None;
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
                if self.failed {
                    // Nothing will come: /retry or /quit must be readable.
                    self.awaiting = None;
                }
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

/// Who is in the chat, as a sentence: "* in this chat: you and Alex (agent)".
fn present(participants: &[Participant]) -> String {
    sentence(&participants.iter().map(who).collect::<Vec<_>>())
}

fn sentence(names: &[String]) -> String {
    match names {
        [] => "* nobody is in this chat yet".to_owned(),
        [one] => format!("* in this chat: {one}"),
        [rest @ .., last] => format!("* in this chat: {} and {last}", rest.join(", ")),
    }
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

    use super::{failure_line, sentence};

    fn failure(reason: StreamFailureReason, retry_after: Option<Duration>) -> StreamFailure {
        StreamFailure {
            reason,
            retry_after,
        }
    }

    #[test]
    fn participants_read_as_a_sentence() {
        let names = |list: &[&str]| list.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();
        assert_eq!(sentence(&[]), "* nobody is in this chat yet");
        assert_eq!(sentence(&names(&["you"])), "* in this chat: you");
        assert_eq!(
            sentence(&names(&["you", "Alex (agent)"])),
            "* in this chat: you and Alex (agent)"
        );
        assert_eq!(
            sentence(&names(&["you", "Alex (agent)", "bot"])),
            "* in this chat: you, Alex (agent) and bot"
        );
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
