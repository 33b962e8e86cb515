//! Window specifications: tumbling and hopping time windows, session windows, and the
//! windows of stream-stream joins. Times are event times in milliseconds.

use std::time::Duration;

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Fixed-size windows: tumbling (advance = size) or hopping (advance < size). A record
/// belongs to every window `[start, start + size)` containing its timestamp, with starts
/// on multiples of the advance. A window accepts records until stream time passes its
/// end plus the grace period; later records are dropped and counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeWindows {
    pub(crate) size_ms: i64,
    pub(crate) advance_ms: i64,
    pub(crate) grace_ms: i64,
}

impl TimeWindows {
    /// Tumbling windows of `size` that close as soon as stream time passes their end.
    pub fn of_size_with_no_grace(size: Duration) -> Self {
        Self::of_size_and_grace(size, Duration::ZERO)
    }

    /// Tumbling windows of `size` accepting records up to `grace` after their end.
    ///
    /// # Panics
    /// If `size` is zero.
    pub fn of_size_and_grace(size: Duration, grace: Duration) -> Self {
        let size_ms = millis(size);
        assert!(size_ms > 0, "a window size must be positive");
        TimeWindows {
            size_ms,
            advance_ms: size_ms,
            grace_ms: millis(grace),
        }
    }

    /// Makes the windows hop by `advance` (overlapping windows when `advance < size`).
    ///
    /// # Panics
    /// If `advance` is zero or larger than the size.
    pub fn advance_by(mut self, advance: Duration) -> Self {
        let advance_ms = millis(advance);
        assert!(
            advance_ms > 0 && advance_ms <= self.size_ms,
            "the advance must be in (0, size]"
        );
        self.advance_ms = advance_ms;
        self
    }

    /// The window size.
    pub fn size(&self) -> Duration {
        Duration::from_millis(self.size_ms as u64)
    }

    /// Starts of the windows containing `timestamp`, ascending: from
    /// `floor(max(0, timestamp - size + advance) / advance) * advance` up to the last
    /// start at or before `timestamp`, as Kafka Streams' `TimeWindows::windowsFor`.
    pub fn windows_for(&self, timestamp: i64) -> Vec<i64> {
        let earliest = (timestamp - self.size_ms + self.advance_ms).max(0);
        let mut start = earliest - earliest.rem_euclid(self.advance_ms);
        let mut starts = Vec::new();
        // Rounding down keeps the first window holding the record: its end is at least
        // `timestamp - size + 1 + size`.
        while start <= timestamp {
            starts.push(start);
            start += self.advance_ms;
        }
        starts
    }
}

/// Session windows: records of a key closer than the inactivity gap belong to one
/// session; a record bridging two sessions merges them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionWindows {
    pub(crate) gap_ms: i64,
    pub(crate) grace_ms: i64,
}

impl SessionWindows {
    /// Sessions with inactivity `gap`, closed as soon as stream time passes their end.
    pub fn with_inactivity_gap_and_no_grace(gap: Duration) -> Self {
        Self::with_inactivity_gap_and_grace(gap, Duration::ZERO)
    }

    /// Sessions with inactivity `gap`, accepting records up to `grace` after their end.
    ///
    /// # Panics
    /// If `gap` is zero.
    pub fn with_inactivity_gap_and_grace(gap: Duration, grace: Duration) -> Self {
        let gap_ms = millis(gap);
        assert!(gap_ms > 0, "an inactivity gap must be positive");
        SessionWindows {
            gap_ms,
            grace_ms: millis(grace),
        }
    }
}

/// Sliding windows: for every record, the window of length `time_difference` that ends
/// at it, and the one that starts just after it if later records fall in it; each window
/// holds the records whose timestamps lie within it (both ends included). Unlike hopping
/// windows, only windows whose contents differ exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlidingWindows {
    pub(crate) difference_ms: i64,
    pub(crate) grace_ms: i64,
}

impl SlidingWindows {
    /// Windows spanning `difference`, closed as soon as stream time passes their end.
    pub fn with_time_difference_and_no_grace(difference: Duration) -> Self {
        Self::with_time_difference_and_grace(difference, Duration::ZERO)
    }

    /// Windows spanning `difference`, accepting records up to `grace` after their end.
    ///
    /// # Panics
    /// If `difference` is zero.
    pub fn with_time_difference_and_grace(difference: Duration, grace: Duration) -> Self {
        let difference_ms = millis(difference);
        assert!(difference_ms > 0, "a time difference must be positive");
        SlidingWindows {
            difference_ms,
            grace_ms: millis(grace),
        }
    }
}

/// When a windowed aggregation emits its results (Kafka Streams' `EmitStrategy`, KIP-825).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EmitStrategy {
    /// Every update of a window goes downstream as it happens.
    #[default]
    OnWindowUpdate,
    /// Only a window's final result goes downstream, once, when the stream time the
    /// aggregation has observed passes the window's end plus the grace period.
    OnWindowClose,
}

impl EmitStrategy {
    /// Emits every update of a window (the default).
    pub fn on_window_update() -> Self {
        EmitStrategy::OnWindowUpdate
    }

    /// Emits each window's final result once, when it closes.
    pub fn on_window_close() -> Self {
        EmitStrategy::OnWindowClose
    }
}

/// Which records of two streams join: those whose timestamps differ by at most `before`
/// (other side earlier) or `after` (other side later).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JoinWindows {
    pub(crate) before_ms: i64,
    pub(crate) after_ms: i64,
    pub(crate) grace_ms: i64,
}

impl JoinWindows {
    /// Records within `difference` of each other, either way; no grace.
    pub fn of_time_difference_with_no_grace(difference: Duration) -> Self {
        Self::of_time_difference_and_grace(difference, Duration::ZERO)
    }

    /// Records within `difference` of each other, accepting out-of-order records up to
    /// `grace` late.
    pub fn of_time_difference_and_grace(difference: Duration, grace: Duration) -> Self {
        let d = millis(difference);
        JoinWindows {
            before_ms: d,
            after_ms: d,
            grace_ms: millis(grace),
        }
    }

    /// Sets how much earlier the other side's record may be.
    pub fn before(mut self, before: Duration) -> Self {
        self.before_ms = millis(before);
        self
    }

    /// Sets how much later the other side's record may be.
    pub fn after(mut self, after: Duration) -> Self {
        self.after_ms = millis(after);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tumbling_windows_hold_each_record_once() {
        let w = TimeWindows::of_size_with_no_grace(Duration::from_millis(10));
        assert_eq!(w.windows_for(0), [0]);
        assert_eq!(w.windows_for(9), [0]);
        assert_eq!(w.windows_for(10), [10]);
        assert_eq!(w.windows_for(25), [20]);
    }

    #[test]
    fn hopping_windows_hold_each_record_size_over_advance_times() {
        let w = TimeWindows::of_size_with_no_grace(Duration::from_millis(10))
            .advance_by(Duration::from_millis(5));
        assert_eq!(w.windows_for(12), [5, 10]);
        assert_eq!(w.windows_for(15), [10, 15]);
        // Near zero there are no negative starts.
        assert_eq!(w.windows_for(3), [0]);
        let w = TimeWindows::of_size_with_no_grace(Duration::from_millis(10))
            .advance_by(Duration::from_millis(3));
        assert_eq!(w.windows_for(10), [3, 6, 9]);
    }

    #[test]
    fn hopping_windows_start_at_the_earliest_window_holding_the_record() {
        // Size 10, advance 4: the record at 9 lies in [0,10), [4,14) and [8,18).
        let w = TimeWindows::of_size_with_no_grace(Duration::from_millis(10))
            .advance_by(Duration::from_millis(4));
        assert_eq!(w.windows_for(9), [0, 4, 8]);
        assert_eq!(w.windows_for(10), [4, 8]);
        assert_eq!(w.windows_for(13), [4, 8, 12]);
        assert_eq!(w.windows_for(0), [0]);
    }

    #[test]
    fn windows_for_matches_kafka_time_windows() {
        let ms = Duration::from_millis;
        let tumbling = TimeWindows::of_size_with_no_grace(ms(12));
        assert_eq!(tumbling.windows_for(21), [12]);
        let hopping = TimeWindows::of_size_with_no_grace(ms(12)).advance_by(ms(5));
        assert_eq!(hopping.windows_for(21), [10, 15, 20]);
        let barely_overlapping = TimeWindows::of_size_with_no_grace(ms(6)).advance_by(ms(5));
        assert_eq!(barely_overlapping.windows_for(7), [5]);
    }
}
