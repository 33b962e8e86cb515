//! Stream-time retention shared by window and session stores: which timestamps are still
//! live, and the segment a timestamp falls into.

use crate::error::{Result, StoreError};

/// Tracks the stream time a store has observed (the largest window start or session end
/// written or restored) and decides what has expired.
///
/// A record with time `t` is expired once `t <= stream_time - retention`, as in Kafka's
/// window and session stores: it is dropped on write and hidden from reads.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Retention {
    retention_ms: i64,
    stream_time: i64,
}

impl Retention {
    /// No stream time observed yet.
    pub(crate) fn new(retention_ms: i64) -> Self {
        Retention {
            retention_ms,
            stream_time: i64::MIN,
        }
    }

    /// The largest time observed, `i64::MIN` before any.
    pub(crate) fn stream_time(&self) -> i64 {
        self.stream_time
    }

    /// Advances stream time to `time` if it is later.
    pub(crate) fn observe(&mut self, time: i64) {
        self.stream_time = self.stream_time.max(time);
    }

    /// The earliest time that is still live.
    pub(crate) fn min_live(&self) -> i64 {
        if self.stream_time == i64::MIN {
            i64::MIN
        } else {
            self.stream_time
                .saturating_sub(self.retention_ms)
                .saturating_add(1)
        }
    }

    /// Whether `time` has expired.
    pub(crate) fn is_expired(&self, time: i64) -> bool {
        time < self.min_live()
    }
}

/// Validates a retention period and segment interval.
pub(crate) fn validate(retention_ms: i64, segment_interval_ms: i64) -> Result<()> {
    if retention_ms < 0 {
        return Err(StoreError::InvalidArgument(format!(
            "retention must not be negative, got {retention_ms} ms"
        )));
    }
    if segment_interval_ms <= 0 {
        return Err(StoreError::InvalidArgument(format!(
            "segment interval must be positive, got {segment_interval_ms} ms"
        )));
    }
    Ok(())
}

/// Kafka's default segment interval for a retention period: half of it, at least a minute.
pub(crate) fn default_segment_interval(retention_ms: i64) -> i64 {
    (retention_ms / 2).max(60_000)
}

/// Rejects negative timestamps, which windows and sessions never have.
pub(crate) fn check_timestamp(what: &str, time: i64) -> Result<()> {
    if time < 0 {
        return Err(StoreError::InvalidArgument(format!(
            "{what} must not be negative, got {time}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_follows_stream_time() {
        let mut r = Retention::new(100);
        assert!(!r.is_expired(0));
        r.observe(250);
        r.observe(200);
        assert_eq!(r.stream_time(), 250);
        assert!(r.is_expired(150));
        assert!(!r.is_expired(151));
        assert_eq!(r.min_live(), 151);
    }

    #[test]
    fn default_segment_interval_is_half_retention_but_at_least_a_minute() {
        assert_eq!(default_segment_interval(1_000), 60_000);
        assert_eq!(default_segment_interval(86_400_000), 43_200_000);
    }
}
