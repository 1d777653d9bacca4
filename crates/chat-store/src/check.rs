//! The arguments every backend refuses alike, checked before any I/O, so that a record or key
//! one backend takes is one every other backend takes too.

use std::time::Duration;

use crate::{MAX_NAME_LEN, MAX_TTL, StoreError};

/// A key, owner or engagement id: not empty, at most [`MAX_NAME_LEN`] bytes, no NUL
/// (PostgreSQL's text cannot hold one).
pub(crate) fn name(what: &'static str, value: &str) -> Result<(), StoreError> {
    let reason = if value.is_empty() {
        "must not be empty".to_owned()
    } else if value.len() > MAX_NAME_LEN {
        format!(
            "must be at most {MAX_NAME_LEN} bytes long, was {}",
            value.len()
        )
    } else if value.contains('\0') {
        "must not contain a NUL character".to_owned()
    } else {
        return Ok(());
    };
    Err(StoreError::Invalid { what, reason })
}

/// A record: any text without a NUL character. Its content is never shown.
pub(crate) fn record(value: &str) -> Result<(), StoreError> {
    if value.contains('\0') {
        return Err(StoreError::Invalid {
            what: "record",
            reason: "must not contain a NUL character".to_owned(),
        });
    }
    Ok(())
}

/// A lease's length, in whole milliseconds (rounded up, so that a ttl of 1 µs is not a lapsed
/// lease), at most [`MAX_TTL`].
pub(crate) fn ttl_millis(ttl: Duration) -> Result<i64, StoreError> {
    if ttl > MAX_TTL {
        return Err(StoreError::Invalid {
            what: "ttl",
            reason: format!(
                "must be at most {} days, was {} s",
                MAX_TTL.as_secs() / 86_400,
                ttl.as_secs()
            ),
        });
    }
    let millis = ttl.as_nanos().div_ceil(1_000_000);
    // At most MAX_TTL, so it fits.
    Ok(i64::try_from(millis).unwrap_or(i64::MAX))
}

/// A message index, as the databases' signed 64-bit integers hold it.
pub(crate) fn message_index(index: u64) -> Result<i64, StoreError> {
    i64::try_from(index).map_err(|_| StoreError::Invalid {
        what: "message index",
        reason: format!("must be at most {}, was {index}", i64::MAX),
    })
}

/// An epoch or message index read back from a database: never negative.
pub(crate) fn stored_u64(key: &str, what: &str, value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt {
        key: key.to_owned(),
        detail: format!("its {what} is negative ({value})"),
    })
}
