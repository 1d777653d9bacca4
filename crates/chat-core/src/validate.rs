//! Argument checks with the official SDK's limits. Lengths are counted in UTF-16 code units,
//! as the official SDK (JavaScript string length) and the service count them.

use crate::ChatError;
use crate::wire::MappedData;

/// Longest message text, in UTF-16 code units.
pub const MAX_MESSAGE_LEN: usize = 4096;
/// Longest display name, in UTF-16 code units.
pub const MAX_DISPLAY_NAME_LEN: usize = 70;
/// Most entries of session or engagement parameters.
pub const MAX_MAPPED_ENTRIES: usize = 20;
/// Longest parameter key.
pub const MAX_MAPPED_KEY_LEN: usize = 64;
/// Longest parameter value.
pub const MAX_MAPPED_VALUE_LEN: usize = 256;
/// The most bytes of one HTTP response body or WebSocket frame an adapter reads. A server (or
/// anything between) that sends more is answered with
/// [`TransportError::Protocol`](crate::TransportError::Protocol) instead of exhausting memory: a full history page of 50
/// messages of 4,096 characters is under 1 MiB, so 8 MiB leaves room for any honest answer.
pub const MAX_RESPONSE_LEN: usize = 8 * 1024 * 1024;

/// Length as JavaScript counts it: UTF-16 code units.
pub fn utf16_len(s: &str) -> usize {
    s.chars().map(char::len_utf16).sum()
}

/// A message text: 1 to 4096 UTF-16 code units.
pub fn message_text(text: &str) -> Result<(), ChatError> {
    match utf16_len(text) {
        0 => Err(ChatError::constraint("Message should not be empty string")),
        // In the unit it counts: a person counting characters would be surprised that 2,048
        // emoji are the limit.
        n if n > MAX_MESSAGE_LEN => Err(ChatError::constraint(format!(
            "Message length should not be more than {MAX_MESSAGE_LEN} UTF-16 code units \
             (an emoji counts as 2), was {n}"
        ))),
        _ => Ok(()),
    }
}

/// Session or engagement parameters: at most 20 entries, keys ≤ 64, values ≤ 256.
pub fn mapped_data(data: &MappedData) -> Result<(), ChatError> {
    let fits = data.len() <= MAX_MAPPED_ENTRIES
        && data.iter().all(|(k, v)| {
            utf16_len(k) <= MAX_MAPPED_KEY_LEN && utf16_len(v) <= MAX_MAPPED_VALUE_LEN
        });
    if fits {
        Ok(())
    } else {
        Err(ChatError::constraint(
            "Parameters should be an object of type {key: string (64 max length) -> value: string (256 max length)} with maximum 20 records",
        ))
    }
}

/// A display name: at most 70 UTF-16 code units.
pub fn display_name(name: &str) -> Result<(), ChatError> {
    match utf16_len(name) {
        n if n <= MAX_DISPLAY_NAME_LEN => Ok(()),
        n => Err(ChatError::init_param(format!(
            "displayName should be at most {MAX_DISPLAY_NAME_LEN} UTF-16 code units \
             (an emoji counts as 2), was {n}"
        ))),
    }
}

/// Whether `host` names the local machine: `localhost`, `127.0.0.0/8` or `[::1]`.
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    host == "localhost"
        || host.ends_with(".localhost")
        || host == "[::1]"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Checks and normalises a host URL: `https://` (any case) with a host, no path beyond `/`.
/// `http://` is accepted for a loopback host, or anywhere when `allow_plain_http` is set.
///
/// Returns the URL without trailing slashes, so that paths can be appended as they are.
pub fn host_url(url: &str, allow_plain_http: bool) -> Result<String, ChatError> {
    let trimmed = url.trim_end_matches('/');
    let lower = trimmed.to_ascii_lowercase();
    let (secure, rest) = if let Some(rest) = lower.strip_prefix("https://") {
        (true, rest)
    } else if let Some(rest) = lower.strip_prefix("http://") {
        (false, rest)
    } else {
        return Err(ChatError::init_param("hostURL should start with https://"));
    };
    // Only host-name, IP and port characters: URL parsers read `\` as `/` and drop tabs and
    // newlines, so `http://evil.com\.localhost` would pass a suffix check as loopback and
    // then connect to evil.com.
    let host_chars =
        |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '[' | ']');
    if rest.is_empty() || !rest.chars().all(host_chars) {
        return Err(ChatError::init_param(
            "hostURL should be a scheme and host only, such as https://na.api.avayacloud.com",
        ));
    }
    if !secure && !allow_plain_http && !is_loopback_host(host_of(rest)) {
        return Err(ChatError::init_param(
            "hostURL should start with https:// (plain http only for loopback or with the explicit opt-in)",
        ));
    }
    Ok(trimmed.to_owned())
}

fn host_of(authority: &str) -> &str {
    if authority.starts_with('[') {
        // [v6]:port
        return authority
            .find(']')
            .map_or(authority, |end| &authority[..=end]);
    }
    authority.split(':').next().unwrap_or(authority)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_limits_count_utf16() {
        assert!(message_text("").is_err());
        assert!(message_text("a").is_ok());
        assert!(message_text(&"a".repeat(4096)).is_ok());
        assert!(message_text(&"a".repeat(4097)).is_err());
        // '😀' is two UTF-16 code units: 2048 of them fill the limit exactly.
        assert!(message_text(&"😀".repeat(2048)).is_ok());
        let long = message_text(&format!("{}a", "😀".repeat(2048))).unwrap_err();
        assert_eq!(
            long.to_string(),
            "ACS-322 : Constraint violated : Message length should not be more than 4096 \
             UTF-16 code units (an emoji counts as 2), was 4097."
        );
    }

    #[test]
    fn display_name_limit_counts_utf16() {
        assert!(display_name("").is_ok());
        assert!(display_name(&"n".repeat(70)).is_ok());
        assert_eq!(display_name(&"n".repeat(71)).unwrap_err().code(), "ACS-302");
        // 35 astral characters are 70 UTF-16 units; one more is over.
        assert!(display_name(&"😀".repeat(35)).is_ok());
        assert_eq!(
            display_name(&format!("{}n", "😀".repeat(35)))
                .unwrap_err()
                .to_string(),
            "ACS-302 : Invalid init parameters : displayName should be at most 70 UTF-16 code \
             units (an emoji counts as 2), was 71."
        );
    }

    #[test]
    fn mapped_data_limits() {
        let mut d = MappedData::new();
        for i in 0..20 {
            d.insert(format!("k{i}"), "v".repeat(256));
        }
        assert!(mapped_data(&d).is_ok());
        d.insert("k20".into(), "v".into());
        assert_eq!(mapped_data(&d).unwrap_err().code(), "ACS-322");
        let long_key = MappedData::from([("k".repeat(65), "v".into())]);
        assert!(mapped_data(&long_key).is_err());
        let long_value = MappedData::from([("k".into(), "v".repeat(257))]);
        assert!(mapped_data(&long_value).is_err());
    }

    #[test]
    fn host_rules() {
        assert_eq!(
            host_url("https://na.api.avayacloud.com/", false).unwrap(),
            "https://na.api.avayacloud.com"
        );
        assert!(host_url("HTTPS://Example.com", false).is_ok());
        assert!(host_url("http://example.com", false).is_err());
        assert!(host_url("http://example.com", true).is_ok());
        assert!(host_url("http://127.0.0.1:8080", false).is_ok());
        assert!(host_url("http://localhost:8080", false).is_ok());
        assert!(host_url("http://[::1]:8080", false).is_ok());
        assert!(host_url("http://127.0.0.1.evil.com", false).is_err());
        assert!(host_url("https://", false).is_err());
        assert!(host_url("https://a.com/path", false).is_err());
        assert!(host_url("ftp://a.com", false).is_err());
        assert_eq!(
            host_url("ftp://a.com", false).unwrap_err().code(),
            "ACS-302"
        );
    }

    #[test]
    fn plain_http_only_to_hosts_that_really_are_loopback() {
        for url in [
            "http://127.0.0.1",
            "http://127.0.0.1:8080/",
            "http://127.9.9.9",
            "http://localhost",
            "http://LOCALHOST:1",
            "HTTP://localhost:8080",
            "Http://[::1]",
            "http://[::1]:8443",
            "http://app.localhost",
        ] {
            assert!(host_url(url, false).is_ok(), "{url}");
        }
        for url in [
            "http://127.0.0.1.evil.com",
            "http://localhost.evil",
            "http://localhost.evil:80",
            "http://localhost@evil.com",
            "http://127.0.0.1:80@evil.com",
            "http://user:pw@localhost",
            "http://evil.com\\.localhost",
            "http://evil.com\t.localhost",
            "http://evil.com%2f.localhost",
            "http://[::2]",
            "http://[::ffff:8.8.8.8]",
            "http://128.0.0.1",
            "HTTP://example.com",
            "http://0.0.0.0",
            "http://10.0.0.1:8080",
        ] {
            let err = host_url(url, false).unwrap_err();
            assert_eq!(err.code(), "ACS-302", "{url}");
        }
        // The explicit opt-in allows any well-formed host, never a malformed one.
        assert!(host_url("http://example.com", true).is_ok());
        assert!(host_url("http://localhost@evil.com", true).is_err());
        assert!(host_url("http://evil.com\\.localhost", true).is_err());
    }
}
