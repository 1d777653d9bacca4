//! [`Secret`]: a string that never shows itself in `Debug` or `Display`.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer};

/// A credential (client secret, appkey, access token, chat JWT) whose text is only reachable
/// through [`Secret::expose`].
///
/// `Debug` prints `Secret([redacted])` and `Display` prints `[redacted]`, so a secret that ends up
/// in a log line, an error message or a `{:?}` of a bigger structure shows nothing. Cloning is
/// cheap (the text is shared). There is deliberately no `Serialize` implementation.
///
/// ```
/// use token_client::Secret;
/// let secret = Secret::new("s3cr3t");
/// assert_eq!(secret.expose(), "s3cr3t");
/// assert_eq!(format!("{secret}"), "[redacted]");
/// assert!(!format!("{secret:?}").contains("s3cr3t"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Arc<str>);

impl Secret {
    /// Wraps `text`.
    pub fn new(text: impl Into<String>) -> Self {
        Self(Arc::from(text.into()))
    }

    /// The secret text. Call this only where the text goes on the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the secret is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl From<String> for Secret {
    fn from(text: String) -> Self {
        Self::new(text)
    }
}

impl From<&str> for Secret {
    fn from(text: &str) -> Self {
        Self::new(text)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_shows_its_text() {
        let s = Secret::new("hunter2");
        assert!(!format!("{s:?} {s} {s:#?}").contains("hunter2"));
        assert_eq!(s.expose(), "hunter2");
        assert!(!s.is_empty());
    }
}
