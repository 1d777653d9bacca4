//! The numbered messages of the crash and failover soaks: `{mode} c{customer} n{k}` from the
//! customer, `{mode} c{customer} a{j}` from the agent, and where a customer app that just
//! restarted finds the next number to send.

/// Which way a numbered message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Way {
    /// Sent by the customer app through the SDK (`n{k}`).
    Customer,
    /// Posted by the agent side through the emulator's control handle (`a{j}`).
    Agent,
}

/// The text of message `number` of `customer`, going `way`, in a soak of `mode` (`crash` or
/// `failover`).
pub(crate) fn text(mode: &str, customer: usize, way: Way, number: u64) -> String {
    let w = match way {
        Way::Customer => 'n',
        Way::Agent => 'a',
    };
    format!("{mode} c{customer} {w}{number}")
}

/// Reads back [`text`]: `Some((way, number))` for a message of `customer` in `mode`.
pub(crate) fn parse(mode: &str, customer: usize, text: &str) -> Option<(Way, u64)> {
    let rest = text.strip_prefix(mode)?.strip_prefix(" c")?;
    let (c, m) = rest.split_once(' ')?;
    if c.parse::<usize>().ok()? != customer {
        return None;
    }
    let way = match m.as_bytes().first()? {
        b'n' => Way::Customer,
        b'a' => Way::Agent,
        _ => return None,
    };
    let digits = m.get(1..)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((way, digits.parse().ok()?))
}

/// The next number `customer` sends: one past the highest of its own numbers that the SDK
/// still holds (`pending`, sends handed over and not known delivered) or that the dialog
/// holds (`transcript`). Read `pending` *before* the transcript: a send delivered between
/// the two reads is then in the transcript, whereas the other way round it could be in
/// neither and be sent twice.
pub(crate) fn next_number<'a>(
    mode: &str,
    customer: usize,
    pending: impl IntoIterator<Item = &'a str>,
    transcript: impl IntoIterator<Item = &'a str>,
) -> u64 {
    pending
        .into_iter()
        .chain(transcript)
        .filter_map(|t| match parse(mode, customer, t) {
            Some((Way::Customer, k)) => Some(k),
            _ => None,
        })
        .max()
        .map_or(1, |k| k + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_read_back_and_nothing_else_does() {
        let t = text("crash", 3, Way::Customer, 17);
        assert_eq!(t, "crash c3 n17");
        assert_eq!(parse("crash", 3, &t), Some((Way::Customer, 17)));
        assert_eq!(
            parse("crash", 3, &text("crash", 3, Way::Agent, 1)),
            Some((Way::Agent, 1))
        );
        assert_eq!(parse("crash", 4, &t), None);
        assert_eq!(parse("failover", 3, &t), None);
        for junk in [
            "",
            "crash",
            "crash c3",
            "crash c3 ",
            "crash c3 x1",
            "crash c3 n",
            "crash c3 n1x",
            "crash c3 n+1",
            "crash cx n1",
            "soak s3 c1",
        ] {
            assert_eq!(parse("crash", 3, junk), None, "{junk:?}");
        }
    }

    #[test]
    fn the_next_number_follows_the_highest_held_or_stored() {
        assert_eq!(next_number("crash", 1, [], []), 1);
        let stored = ["crash c1 n1", "crash c1 a4", "crash c1 n2", "crash c2 n9"];
        assert_eq!(next_number("crash", 1, [], stored), 3);
        // A send still held counts as sent, even ahead of the dialog.
        assert_eq!(next_number("crash", 1, ["crash c1 n3"], stored), 4);
        // Agent numbers and other customers' numbers do not count.
        assert_eq!(next_number("crash", 2, [], stored), 10);
    }
}
