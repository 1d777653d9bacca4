//! The hostile-server suite (`crates/hostile-server`) against the blocking client: every case
//! of [`hostile_server::CASES`], once over the adapter's own transport for the request the
//! case meets (reqwest for the session's creation, [`Http1LongPollTransport`] for the polls,
//! each bounding its own calls by the request's timeout), once through a whole [`Client`].
//! The async client runs the same table (`crates/chat-tokio/tests/hostile.rs`).
//! `-- --nocapture` prints one line per run.
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use chat_blocking::{
    Cancel, Client, EventTransport, Http1LongPollTransport, HttpTransport, ReqwestTransport,
    TransportError,
};
use hostile_server::{APPKEY, Case, EVENT_CAPACITY, HostileServer, INTEGRATION_ID, On, Run, TOKEN};

#[test]
fn every_hostile_case() {
    let mut results = Vec::new();
    for case in hostile_server::CASES {
        results.push((case, "exchange", exchange(case)));
        results.push((case, "client", client(case)));
    }
    hostile_server::report("blocking", &results);
}

/// One exchange (two when the case is about the kept connection) over the transport the
/// client would use.
fn exchange(case: &Case) -> Result<(), String> {
    let server = HostileServer::start(case).map_err(|e| e.to_string())?;
    let request = hostile_server::request(server.base_url(), case.on);
    let start = Instant::now();
    let got = match case.on {
        On::Connect => ReqwestTransport::new().send(request).map(|r| r.status),
        On::Poll => {
            let mut polls = Http1LongPollTransport::new();
            let mut last = Err(TransportError::Disconnected);
            for _ in 0..case.exchanges() {
                last = hostile_server::status_of(&polls.poll(request.clone(), &Cancel::new()));
            }
            last
        }
    };
    let checked = case.check_exchange(got, start.elapsed());
    hostile_server::both(checked, case.check_server(&server, false))
}

/// A whole client: connect, create an engagement (the stream starts), take events until the
/// case's outcome or its budget, then shut down.
fn client(case: &Case) -> Result<(), String> {
    let server = HostileServer::start(case).map_err(|e| e.to_string())?;
    let mut run = Run::default();
    let start = Instant::now();
    let connected = Client::builder(server.base_url(), INTEGRATION_ID, APPKEY)
        .token(TOKEN)
        .config(hostile_server::config())
        .event_capacity(EVENT_CAPACITY)
        .connect();
    let (client, events) = match connected {
        Ok(connected) => connected,
        Err(e) => {
            run.elapsed = start.elapsed();
            run.connect = Err(e.as_chat().cloned());
            return hostile_server::both(case.check_run(&run), case.check_server(&server, true));
        }
    };
    if let Err(e) = client.create_engagement() {
        return Err(format!("create_engagement: {e}"));
    }
    let start = Instant::now();
    let deadline = start + case.budget();
    while !case.done(&run) {
        match events.recv_deadline(deadline) {
            Ok(e) => {
                run.max_queued = run.max_queued.max(events.queued() + 1);
                run.push(e.event);
            }
            Err(_) => break,
        }
    }
    run.elapsed = start.elapsed();
    run.footprint = Some(client.footprint());
    // While the client runs: the polls that follow the outcome are on their way.
    let checked = hostile_server::both(case.check_run(&run), case.check_server(&server, true));
    let stopped = client.shutdown(None);
    match stopped {
        Ok(()) => checked,
        Err(e) => hostile_server::both(checked, Err(format!("shutdown: {e}"))),
    }
}
