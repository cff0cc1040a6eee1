//! Lifeguard's local health multiplier: a saturating score of how much this node, rather
//! than its peers, seems to be the problem. Probe interval and timeout scale by
//! `1 + score`, so a slow node probes less aggressively instead of accusing healthy peers.

use std::time::Duration;

#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct LocalHealth {
    score: u32,
    max: u32,
}

impl LocalHealth {
    pub fn new(max: u32) -> LocalHealth {
        LocalHealth { score: 0, max }
    }

    /// +1 per failed probe, per missing nack and per refutation of a suspicion of
    /// ourselves; −1 per successful probe (Lifeguard §4.3).
    pub fn apply(&mut self, delta: i32) {
        let s = i64::from(self.score) + i64::from(delta);
        self.score = s.clamp(0, i64::from(self.max)) as u32;
    }

    pub fn score(&self) -> u32 {
        self.score
    }

    /// `d × (1 + score)`.
    pub fn scale(&self, d: Duration) -> Duration {
        d.saturating_mul(self.score + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saturates_both_ways() {
        let mut h = LocalHealth::new(8);
        h.apply(-1);
        assert_eq!(h.score(), 0);
        for _ in 0..20 {
            h.apply(1);
        }
        assert_eq!(h.score(), 8);
        assert_eq!(
            h.scale(Duration::from_millis(500)),
            Duration::from_millis(4500)
        );
        let mut off = LocalHealth::new(0);
        off.apply(5);
        assert_eq!(off.scale(Duration::from_secs(1)), Duration::from_secs(1));
    }
}
