//! Percentiles of measured durations.

use std::time::Duration;

/// A set of measurements, sorted.
#[derive(Debug, Clone, Default)]
pub struct Samples {
    sorted: Vec<Duration>,
}

impl Samples {
    /// Sorts `values`.
    pub fn new(mut values: Vec<Duration>) -> Samples {
        values.sort_unstable();
        Samples { sorted: values }
    }

    /// Returns the number of measurements.
    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    /// Returns the `p`-th percentile (nearest rank), or zero when empty.
    pub fn pct(&self, p: f64) -> Duration {
        if self.sorted.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((p / 100.0) * self.sorted.len() as f64).ceil() as usize;
        self.sorted[rank.clamp(1, self.sorted.len()) - 1]
    }

    /// Returns the largest measurement, or zero when empty.
    pub fn max(&self) -> Duration {
        self.sorted.last().copied().unwrap_or_default()
    }

    /// Returns `self` and `other` as one set.
    pub fn merged(&self, other: &Samples) -> Samples {
        Samples::new(self.sorted.iter().chain(&other.sorted).copied().collect())
    }
}

/// Formats a duration in milliseconds with three decimals.
pub fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1e3)
}

/// Formats a duration in microseconds, no decimals.
pub fn us(d: Duration) -> String {
    format!("{:.0}", d.as_secs_f64() * 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let s = Samples::new((1..=100).rev().map(Duration::from_millis).collect());
        assert_eq!(s.pct(50.0), Duration::from_millis(50));
        assert_eq!(s.pct(90.0), Duration::from_millis(90));
        assert_eq!(s.pct(99.0), Duration::from_millis(99));
        assert_eq!(s.max(), Duration::from_millis(100));
        let one = Samples::new(vec![Duration::from_millis(3)]);
        assert_eq!(one.pct(50.0), Duration::from_millis(3));
        assert_eq!(Samples::default().pct(50.0), Duration::ZERO);
    }
}
