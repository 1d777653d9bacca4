//! The customer → agent half of the crash and failover soaks' verdict: a customer's numbers
//! as the emulator stored them, read from its dialogs through the control handle (the
//! server's truth, whatever any client believes).

use chat_emulator::Control;

use crate::numbered::{Way, parse};

/// A customer's numbers in the emulator's dialogs.
#[derive(Debug, Default)]
pub(crate) struct Dialog {
    /// In the order stored (by message index, chat after chat).
    pub(crate) numbers: Vec<u64>,
    /// The customer's chats (one expected).
    pub(crate) engagements: usize,
}

/// The numbers of customer `index` (texts of `mode`) in the chats of `customer_id`, oldest
/// chat first.
pub(crate) fn customer_numbers(
    control: &Control,
    customer_id: &str,
    index: usize,
    mode: &str,
) -> Dialog {
    let mut dialog = Dialog::default();
    for e in control
        .engagements()
        .into_iter()
        .filter(|e| e.customer_id == customer_id)
    {
        dialog.engagements += 1;
        let Ok(mut transcript) = control.transcript(&e.engagement_id) else {
            continue;
        };
        transcript.sort_by_key(|t| t.message.message_index);
        dialog.numbers.extend(transcript.iter().filter_map(|t| {
            match t.message.body.text().and_then(|x| parse(mode, index, x)) {
                Some((Way::Customer, k)) => Some(k),
                _ => None,
            }
        }));
    }
    dialog
}
