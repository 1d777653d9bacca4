//! Reference 7.2, page reload: a session resumed from its `Resumption`; and "Session not
//! found" on resume.
#![allow(clippy::unwrap_used)]

mod common;

use chat_emulator::AgentMode;
use chat_tokio::{EngagementStatus, Event, ParticipantType, StreamTransport};
use common::*;

async fn resume_session(transport: StreamTransport) {
    let emu = emulator(AgentMode::Agent).await;
    let (client, mut events) = connect(&emu, transport, "judy").await;
    let chat = client.create_engagement().await.unwrap();
    expect_event(&mut events, |e| matches!(e, Event::MessageArrived(_))).await;
    chat.send_message("before the reload").await.unwrap();
    expect_event(&mut events, arrived_with("before the reload")).await;
    let resumption = client.resumption().unwrap();
    assert_eq!(resumption.active_engagements, [chat.id().clone()]);
    // The "reload": everything dropped, nothing deleted.
    drop((client, events, chat));

    // Messages while away are caught up from history after the resume.
    let eid = resumption.active_engagements[0].clone();
    emu.control()
        .post_message(&eid, ParticipantType::Agent, "while you were away")
        .unwrap();
    let (client, mut events) = builder(&emu, transport, "judy")
        .resume(resumption.clone())
        .connect()
        .await
        .unwrap();
    assert_eq!(client.session_id(), &resumption.session_id);
    let init = events.recv().await.unwrap();
    let Event::Initialized(ctx) = init.event else {
        panic!("{init:?}")
    };
    assert_eq!(ctx.engagements.len(), 1);
    assert_eq!(ctx.engagements[0].status, EngagementStatus::Active);
    let (_, seen) = expect_event_seen(&mut events, arrived_with("while you were away")).await;
    assert!(names(&seen).contains(&"EVENT_STREAM_CONNECTED"));
    let chat = client.engagement(&eid).unwrap();
    chat.send_message("back again").await.unwrap();
    expect_event(&mut events, arrived_with("back again")).await;
    // Redraw: the history has everything.
    let history = chat.history(10).await.unwrap();
    assert!(
        history
            .items()
            .iter()
            .any(|m| m.text() == Some("before the reload"))
    );
    client.shutdown(None).await.unwrap();

    // The session is gone now: resuming it is "Session not found".
    let err = builder(&emu, transport, "judy")
        .resume(resumption)
        .connect()
        .await
        .unwrap_err();
    assert_eq!(err.code(), "ACS-320");
}

both!(resume, super::resume_session);
