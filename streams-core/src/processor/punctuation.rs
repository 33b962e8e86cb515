//! Punctuation: calling a processor back periodically, on stream time or wall-clock time.

use std::time::Duration;

/// Which clock drives a punctuator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PunctuationType {
    /// Driven by stream time (the highest record timestamp the task has seen). Fires only
    /// when records arrive; the first call happens with the first record processed after
    /// scheduling, later ones on multiples of the interval.
    StreamTime,
    /// Driven by the system clock (or the test driver's clock); fires even without input.
    WallClockTime,
}

/// Identifies a scheduled punctuator of a processor; returned by `schedule`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PunctuatorId(pub(crate) u64);

/// One punctuation call: which schedule fired, and the time it fired at (stream time or
/// wall-clock time, in ms, depending on the kind).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Punctuation {
    /// The schedule that fired.
    pub id: PunctuatorId,
    /// The clock it runs on.
    pub kind: PunctuationType,
    /// The time that triggered the call.
    pub timestamp: i64,
}

#[derive(Clone, Debug)]
struct Schedule {
    id: PunctuatorId,
    node: usize,
    kind: PunctuationType,
    interval: i64,
    next: i64,
}

/// All punctuation schedules of one task.
#[derive(Debug, Default)]
pub(crate) struct Punctuations {
    next_id: u64,
    schedules: Vec<Schedule>,
}

impl Punctuations {
    /// Adds a schedule for `node`. Stream-time schedules start at time zero, so the first
    /// record fires them; wall-clock schedules fire one interval from `wall_clock_now`.
    pub fn schedule(
        &mut self,
        node: usize,
        kind: PunctuationType,
        interval: Duration,
        wall_clock_now: i64,
    ) -> PunctuatorId {
        let interval = i64::try_from(interval.as_millis())
            .unwrap_or(i64::MAX)
            .max(1);
        let id = PunctuatorId(self.next_id);
        self.next_id += 1;
        let next = match kind {
            PunctuationType::StreamTime => 0,
            PunctuationType::WallClockTime => wall_clock_now.saturating_add(interval),
        };
        self.schedules.push(Schedule {
            id,
            node,
            kind,
            interval,
            next,
        });
        id
    }

    /// Removes a schedule; unknown ids are ignored.
    pub fn cancel(&mut self, id: PunctuatorId) {
        self.schedules.retain(|s| s.id != id);
    }

    /// Removes every schedule of `node` (when it closes).
    pub fn cancel_node(&mut self, node: usize) {
        self.schedules.retain(|s| s.node != node);
    }

    /// The schedules of `kind` due at `now`, each moved to its next time. A schedule that
    /// missed several intervals fires once and is re-aligned to its interval grid, so a
    /// gap in input (or a pause) does not cause a burst of calls.
    pub fn due(&mut self, kind: PunctuationType, now: i64) -> Vec<(usize, Punctuation)> {
        let mut fired = Vec::new();
        for s in self
            .schedules
            .iter_mut()
            .filter(|s| s.kind == kind && now >= s.next)
        {
            fired.push((
                s.node,
                Punctuation {
                    id: s.id,
                    kind,
                    timestamp: now,
                },
            ));
            let missed = (now - s.next) / s.interval;
            s.next = s
                .next
                .saturating_add((missed + 1).saturating_mul(s.interval));
        }
        fired
    }

    /// Whether the schedule still exists (it may be cancelled by an earlier punctuation
    /// of the same round).
    pub fn contains(&self, id: PunctuatorId) -> bool {
        self.schedules.iter().any(|s| s.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fired(p: &mut Punctuations, kind: PunctuationType, now: i64) -> Vec<i64> {
        p.due(kind, now)
            .into_iter()
            .map(|(_, p)| p.timestamp)
            .collect()
    }

    #[test]
    fn stream_time_fires_on_first_record_then_on_interval_grid() {
        let mut p = Punctuations::default();
        p.schedule(0, PunctuationType::StreamTime, Duration::from_millis(10), 0);
        assert_eq!(fired(&mut p, PunctuationType::StreamTime, 3), vec![3]);
        assert!(fired(&mut p, PunctuationType::StreamTime, 9).is_empty());
        assert_eq!(fired(&mut p, PunctuationType::StreamTime, 10), vec![10]);
        // A gap of several intervals fires once, then realigns to 50.
        assert_eq!(fired(&mut p, PunctuationType::StreamTime, 43), vec![43]);
        assert!(fired(&mut p, PunctuationType::StreamTime, 49).is_empty());
        assert_eq!(fired(&mut p, PunctuationType::StreamTime, 50), vec![50]);
        assert!(fired(&mut p, PunctuationType::WallClockTime, 1_000).is_empty());
    }

    #[test]
    fn wall_clock_starts_one_interval_from_now_and_cancel_stops_it() {
        let mut p = Punctuations::default();
        let id = p.schedule(
            0,
            PunctuationType::WallClockTime,
            Duration::from_secs(1),
            5_000,
        );
        assert!(fired(&mut p, PunctuationType::WallClockTime, 5_999).is_empty());
        assert_eq!(
            fired(&mut p, PunctuationType::WallClockTime, 6_000),
            vec![6_000]
        );
        p.cancel(id);
        assert!(!p.contains(id));
        assert!(fired(&mut p, PunctuationType::WallClockTime, 60_000).is_empty());
    }
}
