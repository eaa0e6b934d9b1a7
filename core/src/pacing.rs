//! Keeping a live stream in real time: the inference interval that `rtmopose adaptive-interval`
//! runs at, raised when frames queue up (or are dropped) before the element and lowered again
//! once it has caught up.
//!
//! The controller sees, for every incoming frame, how late it is against the pipeline clock
//! (`clock - base_time - running_time`). A live source's frames always arrive somewhat late (its
//! own latency), so lateness is measured against the smallest lateness seen so far, the
//! *baseline*: the excess is the time frames have waited in queues before the element. Frames
//! missing from the timestamps (a leaky queue dropping them) mean the same.

/// How much queueing means "behind": two frame periods.
const BEHIND_PERIODS: u64 = 2;
/// Caught up: less than half a frame period of queueing ...
const CALM_FRACTION: u64 = 2;
/// ... for this long before the interval is lowered by one.
const CALM_NS: u64 = 3_000_000_000;
/// The least time between two raises, so that a raise takes effect before the next one.
const RAISE_GAP_NS: u64 = 500_000_000;

/// A change of the interval.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IntervalChange {
    pub interval: u32,
    pub previous: u32,
    /// Queueing before the element when the change was decided, ns.
    pub queueing_ns: u64,
}

/// The adaptive interval; see the module documentation.
#[derive(Clone, Debug)]
pub struct IntervalController {
    base: u32,
    max: u32,
    current: u32,
    baseline_ns: Option<i64>,
    last_raise_ns: Option<u64>,
    calm_since_ns: Option<u64>,
    behind: bool,
}

impl IntervalController {
    /// `base`: the interval when in real time; `max`: the largest it may become (`max <= base`
    /// turns adaptation off).
    pub fn new(base: u32, max: u32) -> Self {
        let base = base.max(1);
        Self {
            base,
            max: max.max(base),
            current: base,
            baseline_ns: None,
            last_raise_ns: None,
            calm_since_ns: None,
            behind: false,
        }
    }

    /// The interval to use now.
    pub fn interval(&self) -> u32 {
        self.current
    }

    /// The largest interval it may use.
    pub fn max(&self) -> u32 {
        self.max
    }

    /// Whether frames were queueing (or dropped) at the last observation.
    pub fn behind(&self) -> bool {
        self.behind
    }

    /// New limits (properties changed while playing); the current interval is clamped to them.
    pub fn set_limits(&mut self, base: u32, max: u32) {
        self.base = base.max(1);
        self.max = max.max(self.base);
        self.current = self.current.clamp(self.base, self.max);
    }

    /// Starts over (a flush: a new sequence of frames).
    pub fn reset(&mut self) {
        *self = Self::new(self.base, self.max);
    }

    /// One incoming frame: `now_ns` on a monotonic clock, its `lateness_ns` against the pipeline
    /// clock, the stream's `frame_period_ns`, and `dropped` frames missing from the timestamps
    /// just before it. Returns the change of interval it decides, if any.
    pub fn observe(
        &mut self,
        now_ns: u64,
        lateness_ns: i64,
        frame_period_ns: u64,
        dropped: u64,
    ) -> Option<IntervalChange> {
        let baseline = self.baseline_ns.map_or(lateness_ns, |b| b.min(lateness_ns));
        self.baseline_ns = Some(baseline);
        let queueing = (lateness_ns - baseline).max(0) as u64;
        let period = frame_period_ns.max(1);
        self.behind = dropped > 0 || queueing > BEHIND_PERIODS * period;
        let previous = self.current;
        if self.behind {
            self.calm_since_ns = None;
            let may_raise = self
                .last_raise_ns
                .is_none_or(|t| now_ns.saturating_sub(t) >= RAISE_GAP_NS);
            if may_raise && self.current < self.max {
                self.current += 1;
                self.last_raise_ns = Some(now_ns);
            }
        } else if queueing < period / CALM_FRACTION {
            let since = *self.calm_since_ns.get_or_insert(now_ns);
            if now_ns.saturating_sub(since) >= CALM_NS && self.current > self.base {
                self.current -= 1;
                self.calm_since_ns = Some(now_ns);
            }
        } else {
            self.calm_since_ns = None;
        }
        (self.current != previous).then_some(IntervalChange {
            interval: self.current,
            previous,
            queueing_ns: queueing,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: u64 = 33_333_333;
    const MS: u64 = 1_000_000;

    #[test]
    fn off_when_max_is_not_above_base() {
        let mut c = IntervalController::new(2, 1);
        for i in 0..100 {
            assert_eq!(c.observe(i * P, (i * P) as i64, P, 3), None);
        }
        assert_eq!(c.interval(), 2);
        assert!(c.behind());
    }

    #[test]
    fn raises_when_frames_queue_up_at_most_twice_a_second() {
        let mut c = IntervalController::new(1, 4);
        // On time: 40 ms of source latency, steady.
        assert_eq!(c.observe(0, 40 * MS as i64, P, 0), None);
        assert_eq!(c.observe(P, 40 * MS as i64, P, 0), None);
        // Queueing grows by 20 ms a frame.
        let mut changes = Vec::new();
        for i in 2..60u64 {
            let lateness = (40 * MS + (i - 1) * 20 * MS) as i64;
            if let Some(change) = c.observe(i * P, lateness, P, 0) {
                changes.push((i, change.interval));
            }
        }
        // The first raise once queueing passes two periods (frame 5: 80 ms), then one at least
        // 500 ms later each (16 frames of 33.3 ms) up to the maximum.
        assert_eq!(changes, [(5, 2), (21, 3), (37, 4)]);
        assert_eq!(c.interval(), 4);
    }

    #[test]
    fn dropped_frames_count_as_behind() {
        let mut c = IntervalController::new(1, 3);
        assert_eq!(c.observe(0, 0, P, 0), None);
        let change = c.observe(P, 0, P, 2).unwrap();
        assert_eq!((change.previous, change.interval), (1, 2));
    }

    #[test]
    fn lowers_one_step_per_three_calm_seconds() {
        let mut c = IntervalController::new(1, 4);
        c.observe(0, 0, P, 5);
        c.observe(RAISE_GAP_NS, 0, P, 5);
        c.observe(2 * RAISE_GAP_NS, 0, P, 5);
        assert_eq!(c.interval(), 4);
        let start = 2 * RAISE_GAP_NS + P;
        let mut lowered = Vec::new();
        for i in 0..400u64 {
            let now = start + i * P;
            if let Some(change) = c.observe(now, 5 * MS as i64, P, 0) {
                lowered.push((now - start) / MS);
                assert_eq!(change.interval, change.previous - 1);
            }
        }
        assert_eq!(c.interval(), 1);
        // 3 s of calm per step (rounded to frames).
        assert_eq!(lowered.len(), 3);
        assert!(
            lowered.windows(2).all(|w| w[1] - w[0] >= 3000),
            "{lowered:?}"
        );
    }

    #[test]
    fn moderate_queueing_neither_raises_nor_lowers() {
        let mut c = IntervalController::new(1, 4);
        c.observe(0, 0, P, 1);
        assert_eq!(c.interval(), 2);
        for i in 1..300u64 {
            // One period of queueing: not behind, not calm.
            assert_eq!(c.observe(RAISE_GAP_NS + i * P, P as i64, P, 0), None);
        }
        assert_eq!(c.interval(), 2);
    }

    #[test]
    fn reset_starts_over() {
        let mut c = IntervalController::new(2, 5);
        c.observe(0, 0, P, 3);
        assert_eq!(c.interval(), 3);
        c.reset();
        assert_eq!(c.interval(), 2);
        c.set_limits(3, 4);
        assert_eq!(c.interval(), 3);
    }
}
