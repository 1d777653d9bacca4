//! The conformance suite (crates/conformance): the same end-to-end sequences as
//! chat-tokio's, written once.

conformance::suite!(blocking);
