//! Restart delays: exponential, capped, with jitter so that cameras that failed together (a
//! switch rebooted) do not all reconnect in the same instant.

use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    /// Each delay is drawn uniformly from `[d * (1 - jitter), d]`.
    pub jitter: f64,
}

impl Backoff {
    /// The delay before restart number `attempt` (1 for the first restart after a failure),
    /// given `unit`, a uniform draw in [0, 1).
    pub fn delay(&self, attempt: u32, unit: f64) -> Duration {
        let exponent = attempt.saturating_sub(1).min(30);
        let base = self.initial.saturating_mul(1u32 << exponent).min(self.max);
        base.mul_f64(1.0 - self.jitter * unit.clamp(0.0, 1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Backoff = Backoff {
        initial: Duration::from_millis(100),
        max: Duration::from_secs(2),
        jitter: 0.5,
    };

    #[test]
    fn doubles_up_to_the_cap() {
        let d: Vec<u128> = (1..=8).map(|a| B.delay(a, 0.0).as_millis()).collect();
        assert_eq!(d, [100, 200, 400, 800, 1600, 2000, 2000, 2000]);
        assert_eq!(B.delay(u32::MAX, 0.0), Duration::from_secs(2));
    }

    #[test]
    fn jitter_shortens_within_its_fraction() {
        assert_eq!(B.delay(3, 0.999_999).as_millis(), 200);
        assert_eq!(B.delay(3, 0.5).as_millis(), 300);
        let no_jitter = Backoff { jitter: 0.0, ..B };
        assert_eq!(no_jitter.delay(2, 0.7).as_millis(), 200);
    }
}
