//! The last message shown of each chat, remembered across runs, so that joining an open chat
//! again shows only what came while the CLI was away.
//!
//! One small file per chat, `<dir>/seen-<engagement id>`, holding a message index. The
//! directory is `AXP_CHAT_STATE_DIR`, else `$XDG_STATE_HOME/axp-chat`, else
//! `$HOME/.local/state/axp-chat`. It holds no secret and no message text. Failing to read
//! or write it only means showing more history (or all of it) next time: never an error.

use std::path::PathBuf;

pub(crate) struct Seen {
    dir: Option<PathBuf>,
}

impl Seen {
    pub(crate) fn open() -> Self {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        let dir = var("AXP_CHAT_STATE_DIR")
            .map(PathBuf::from)
            .or_else(|| var("XDG_STATE_HOME").map(|d| PathBuf::from(d).join("axp-chat")))
            .or_else(|| var("HOME").map(|d| PathBuf::from(d).join(".local/state/axp-chat")));
        Self { dir }
    }

    fn file(&self, engagement_id: &str) -> Option<PathBuf> {
        // Ids are UUIDs; anything else is not made into a path.
        let safe = !engagement_id.is_empty()
            && engagement_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-');
        safe.then(|| {
            self.dir
                .as_ref()
                .map(|d| d.join(format!("seen-{engagement_id}")))
        })
        .flatten()
    }

    /// The index of the last message of the chat shown here, if any.
    pub(crate) fn last(&self, engagement_id: &str) -> Option<u64> {
        let text = std::fs::read_to_string(self.file(engagement_id)?).ok()?;
        text.trim().parse().ok()
    }

    /// Remembers that the message of `index` was shown.
    pub(crate) fn record(&self, engagement_id: &str, index: u64) {
        let Some(file) = self.file(engagement_id) else {
            return;
        };
        if let Some(dir) = file.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        // Written whole, then renamed: a run killed half-way leaves the old index, not a
        // torn one.
        let partial = file.with_extension("partial");
        if std::fs::write(&partial, index.to_string()).is_ok() {
            let _ = std::fs::rename(&partial, &file);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Seen;

    #[test]
    fn the_last_shown_index_is_remembered_per_chat() {
        let dir = std::env::temp_dir().join(format!("axp-chat-seen-{}", std::process::id()));
        let seen = Seen {
            dir: Some(dir.clone()),
        };
        assert_eq!(seen.last("e-1"), None);
        seen.record("e-1", 3);
        seen.record("e-1", 5);
        seen.record("e-2", 1);
        assert_eq!(seen.last("e-1"), Some(5));
        assert_eq!(seen.last("e-2"), Some(1));
        // Not a path: never read or written.
        seen.record("../x", 1);
        assert_eq!(seen.last("../x"), None);
        let _ = std::fs::remove_dir_all(dir);
    }
}
