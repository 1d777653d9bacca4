//! The hostile-server suite (`crates/hostile-server`) against the async client: every case of
//! [`hostile_server::CASES`], once over the adapter's own transport for the request the case
//! meets (reqwest for the session's creation, [`Http1LongPollTransport`] for the polls), once
//! through a whole [`Client`]. The blocking client runs the same table
//! (`crates/chat-blocking/tests/hostile.rs`). `-- --nocapture` prints one line per run.
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use chat_tokio::{
    Client, EventTransport, Http1LongPollTransport, HttpTransport, ReqwestTransport, TransportError,
};
use hostile_server::{APPKEY, Case, EVENT_CAPACITY, HostileServer, INTEGRATION_ID, On, Run, TOKEN};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_hostile_case() {
    let mut results = Vec::new();
    for case in hostile_server::CASES {
        results.push((case, "exchange", exchange(case).await));
        results.push((case, "client", client(case).await));
    }
    hostile_server::report("tokio", &results);
}

/// Waits on the server's log off the runtime's workers.
fn check_server(case: &Case, server: &HostileServer, client: bool) -> Result<(), String> {
    tokio::task::block_in_place(|| case.check_server(server, client))
}

/// One exchange (two when the case is about the kept connection) over the transport the
/// client would use, timed out at the request's timeout as the client's driver does.
async fn exchange(case: &Case) -> Result<(), String> {
    let server = HostileServer::start(case).map_err(|e| e.to_string())?;
    let request = hostile_server::request(server.base_url(), case.on);
    let timeout = request.timeout;
    let start = Instant::now();
    let got = match case.on {
        On::Connect => {
            let rest = ReqwestTransport::new();
            match tokio::time::timeout(timeout, rest.send(request)).await {
                Ok(r) => r.map(|r| r.status),
                Err(_) => Err(TransportError::Timeout),
            }
        }
        On::Poll => {
            let mut polls = Http1LongPollTransport::new();
            let mut last = Err(TransportError::Disconnected);
            for _ in 0..case.exchanges() {
                last = match tokio::time::timeout(timeout, polls.poll(request.clone())).await {
                    Ok(outcome) => hostile_server::status_of(&outcome),
                    Err(_) => Err(TransportError::Timeout),
                };
            }
            last
        }
    };
    let checked = case.check_exchange(got, start.elapsed());
    hostile_server::both(checked, check_server(case, &server, false))
}

/// A whole client: connect, create an engagement (the stream starts), take events until the
/// case's outcome or its budget, then shut down.
async fn client(case: &Case) -> Result<(), String> {
    let server = HostileServer::start(case).map_err(|e| e.to_string())?;
    let mut run = Run::default();
    let start = Instant::now();
    let connected = Client::builder(server.base_url(), INTEGRATION_ID, APPKEY)
        .token(TOKEN)
        .config(hostile_server::config())
        .event_capacity(EVENT_CAPACITY)
        .connect()
        .await;
    let (client, events) = match connected {
        Ok(connected) => connected,
        Err(e) => {
            run.elapsed = start.elapsed();
            run.connect = Err(e.as_chat().cloned());
            return hostile_server::both(case.check_run(&run), check_server(case, &server, true));
        }
    };
    if let Err(e) = client.create_engagement().await {
        return Err(format!("create_engagement: {e}"));
    }
    let start = Instant::now();
    let deadline = tokio::time::Instant::from_std(start + case.budget());
    while !case.done(&run) {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(e)) => {
                run.max_queued = run.max_queued.max(events.queued() + 1);
                run.push(e.event);
            }
            Ok(None) | Err(_) => break,
        }
    }
    run.elapsed = start.elapsed();
    run.footprint = Some(client.footprint());
    // While the client runs: the polls that follow the outcome are on their way.
    let checked = hostile_server::both(case.check_run(&run), check_server(case, &server, true));
    let stopped = tokio::time::timeout(case.budget(), client.shutdown(None)).await;
    match stopped {
        Ok(Ok(())) => checked,
        other => hostile_server::both(checked, Err(format!("shutdown: {other:?}"))),
    }
}
