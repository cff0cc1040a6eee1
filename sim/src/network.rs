//! The network model: latency, per-link jitter, loss (uniform and Gilbert–Elliott),
//! duplication, reordering and partitions. Every draw comes from the world's seeded RNG.

use std::time::Duration;

use rand::Rng;
use rand_distr::{Distribution, LogNormal, Normal};
use rand_xoshiro::Xoshiro256PlusPlus;
use rumor::Time;

use crate::scenario::{Latency, Network};

/// What the network does with one datagram.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Fate {
    /// Lost.
    Dropped,
    /// Cut by a partition.
    Partitioned,
    /// Delivered after the first delay, and again after the second if duplicated.
    Delivered(Duration, Option<Duration>),
}

/// A partition in force between `start` and `end`.
#[derive(Clone, Debug)]
pub struct ActivePartition {
    /// Start.
    pub start: Time,
    /// Heal.
    pub end: Time,
    /// Side membership by node index.
    pub side: Vec<bool>,
    /// Only side → rest is cut.
    pub one_way: bool,
    /// Fraction of crossing datagrams dropped (1: a cut; less: a loss burst).
    pub loss: f64,
    /// Only the link between these two nodes (then `side` is not used).
    pub link: Option<(usize, usize)>,
    /// Cut for `.0`, then up for `.1`, repeatedly, from `start`.
    pub flap: Option<(Duration, Duration)>,
}

impl ActivePartition {
    /// Whether this partition, at `now`, stands between `from` and `to`.
    fn crosses(&self, now: Time, from: usize, to: usize) -> bool {
        if now < self.start || now >= self.end {
            return false;
        }
        if let Some((down, up)) = self.flap {
            let cycle = (down + up).as_nanos().max(1);
            let phase = (now - self.start).as_nanos() % cycle;
            if phase >= down.as_nanos() {
                return false;
            }
        }
        match self.link {
            Some((a, b)) => (from, to) == (a, b) || (!self.one_way && (from, to) == (b, a)),
            None => {
                self.side.get(from) != self.side.get(to)
                    && (!self.one_way || self.side.get(from) == Some(&true))
            }
        }
    }
}

/// The network between `n` nodes.
#[derive(Debug)]
pub struct NetModel {
    cfg: Network,
    seed: u64,
    partitions: Vec<ActivePartition>,
    /// Gilbert–Elliott state per receiving node (true = bad).
    burst_bad: Vec<bool>,
    lognormal: Option<LogNormal<f64>>,
    normal: Option<Normal<f64>>,
}

impl NetModel {
    /// A model for `n` nodes.
    pub fn new(
        cfg: Network,
        n: usize,
        seed: u64,
        partitions: Vec<ActivePartition>,
    ) -> Result<NetModel, String> {
        let lognormal = match &cfg.latency {
            Latency::Lognormal { median, sigma } => Some(
                LogNormal::new(median.0.as_secs_f64().max(1e-9).ln(), *sigma)
                    .map_err(|e| format!("network.latency: {e}"))?,
            ),
            _ => None,
        };
        let normal = match &cfg.latency {
            Latency::Normal { mean, std_dev } => Some(
                Normal::new(mean.0.as_secs_f64(), std_dev.0.as_secs_f64())
                    .map_err(|e| format!("network.latency: {e}"))?,
            ),
            _ => None,
        };
        Ok(NetModel {
            cfg,
            seed,
            partitions,
            burst_bad: vec![false; n],
            lognormal,
            normal,
        })
    }

    /// Decides the fate of a datagram from `from` to `to` sent at `now`.
    pub fn fate(
        &mut self,
        rng: &mut Xoshiro256PlusPlus,
        now: Time,
        from: usize,
        to: usize,
    ) -> Fate {
        let mut burst_loss = 0.0_f64;
        for p in self.partitions.iter().filter(|p| p.crosses(now, from, to)) {
            if p.loss >= 1.0 {
                return Fate::Partitioned;
            }
            burst_loss = burst_loss.max(p.loss);
        }
        // Drawn only while a loss burst is in force, so runs without one keep their draws.
        if burst_loss > 0.0 && rng.random::<f64>() < burst_loss {
            return Fate::Dropped;
        }
        let mut loss = self.cfg.loss;
        if let Some(b) = &self.cfg.burst {
            let bad = &mut self.burst_bad[to];
            let flip = if *bad {
                b.p_bad_to_good
            } else {
                b.p_good_to_bad
            };
            if rng.random::<f64>() < flip {
                *bad = !*bad;
            }
            if *bad {
                loss = b.loss_bad;
            }
        }
        if loss > 0.0 && rng.random::<f64>() < loss {
            return Fate::Dropped;
        }
        let first = self.delay(rng, from, to);
        let dup = (self.cfg.duplicate > 0.0 && rng.random::<f64>() < self.cfg.duplicate)
            .then(|| self.delay(rng, from, to));
        Fate::Delivered(first, dup)
    }

    fn delay(&self, rng: &mut Xoshiro256PlusPlus, from: usize, to: usize) -> Duration {
        let base = match &self.cfg.latency {
            Latency::Constant { value } => value.0,
            Latency::Uniform { min, max } => {
                let (a, b) = (
                    min.0.as_secs_f64(),
                    max.0.as_secs_f64().max(min.0.as_secs_f64()),
                );
                Duration::from_secs_f64(a + (b - a) * rng.random::<f64>())
            }
            Latency::Normal { .. } => {
                let x = self.normal.as_ref().map_or(0.0, |d| d.sample(rng));
                Duration::from_secs_f64(x.clamp(0.0, 60.0))
            }
            Latency::Lognormal { .. } => {
                let x = self.lognormal.as_ref().map_or(0.0, |d| d.sample(rng));
                Duration::from_secs_f64(x.clamp(0.0, 60.0))
            }
        };
        let mut d = base + self.link_offset(from, to);
        if self.cfg.reorder > 0.0 && rng.random::<f64>() < self.cfg.reorder {
            d += self.cfg.reorder_delay.0.mul_f64(rng.random::<f64>());
        }
        d
    }

    /// A fixed extra latency per directed link, from a hash of the link and the seed,
    /// so no n² table is stored.
    fn link_offset(&self, from: usize, to: usize) -> Duration {
        if self.cfg.link_jitter.0.is_zero() {
            return Duration::ZERO;
        }
        let h = mix(self.seed ^ mix((from as u64) << 32 | to as u64));
        let frac = (h >> 11) as f64 / (1u64 << 53) as f64;
        self.cfg.link_jitter.0.mul_f64(frac)
    }

    /// Whether a partition in force at `now` cuts `from` → `to` (a loss burst does not).
    pub fn partitioned(&self, now: Time, from: usize, to: usize) -> bool {
        self.partitions
            .iter()
            .any(|p| p.loss >= 1.0 && p.crosses(now, from, to))
    }
}

/// splitmix64's finalizer.
pub fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{Burst, Dur};
    use rand::SeedableRng;

    fn model(cfg: Network) -> NetModel {
        NetModel::new(cfg, 4, 7, Vec::new()).unwrap()
    }

    #[test]
    fn uniform_loss_rate_is_respected() {
        let mut m = model(Network {
            loss: 0.1,
            ..Network::default()
        });
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        let lost = (0..100_000)
            .filter(|_| m.fate(&mut rng, Time::ZERO, 0, 1) == Fate::Dropped)
            .count();
        assert!((9_000..11_000).contains(&lost), "{lost}");
    }

    #[test]
    fn bursty_loss_matches_its_stationary_rate() {
        // Stationary bad fraction = p_gb / (p_gb + p_bg) = 0.01 / 0.11; loss there 0.5.
        let burst = Burst {
            p_good_to_bad: 0.01,
            p_bad_to_good: 0.1,
            loss_bad: 0.5,
        };
        let mut m = model(Network {
            burst: Some(burst),
            ..Network::default()
        });
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(2);
        let n = 200_000;
        let lost = (0..n)
            .filter(|_| m.fate(&mut rng, Time::ZERO, 0, 1) == Fate::Dropped)
            .count();
        let expected = 0.5 * 0.01 / 0.11;
        let rate = lost as f64 / n as f64;
        assert!((rate - expected).abs() < 0.01, "{rate} vs {expected}");
    }

    #[test]
    fn partitions_cut_and_heal_one_way_too() {
        let p = |one_way| ActivePartition {
            start: Time::from_secs(10),
            end: Time::from_secs(20),
            side: vec![true, true, false, false],
            one_way,
            loss: 1.0,
            link: None,
            flap: None,
        };
        let m = NetModel::new(Network::default(), 4, 1, vec![p(false)]).unwrap();
        assert!(!m.partitioned(Time::from_secs(5), 0, 2));
        assert!(m.partitioned(Time::from_secs(15), 0, 2));
        assert!(m.partitioned(Time::from_secs(15), 2, 0));
        assert!(!m.partitioned(Time::from_secs(15), 0, 1));
        assert!(!m.partitioned(Time::from_secs(20), 0, 2));
        let m = NetModel::new(Network::default(), 4, 1, vec![p(true)]).unwrap();
        assert!(m.partitioned(Time::from_secs(15), 0, 2));
        assert!(!m.partitioned(Time::from_secs(15), 2, 0));
    }

    #[test]
    fn a_link_cut_spares_every_other_link_and_a_flap_comes_and_goes() {
        let link = |one_way, flap| ActivePartition {
            start: Time::from_secs(10),
            end: Time::from_secs(20),
            side: vec![false; 4],
            one_way,
            loss: 1.0,
            link: Some((1, 3)),
            flap,
        };
        let m = NetModel::new(Network::default(), 4, 1, vec![link(false, None)]).unwrap();
        let at = Time::from_secs(15);
        assert!(m.partitioned(at, 1, 3) && m.partitioned(at, 3, 1));
        assert!(!m.partitioned(at, 1, 2) && !m.partitioned(at, 0, 3));
        let m = NetModel::new(Network::default(), 4, 1, vec![link(true, None)]).unwrap();
        assert!(m.partitioned(at, 1, 3) && !m.partitioned(at, 3, 1));
        // Cut 2 s, up 1 s, from 10 s: cut in [10, 12), up in [12, 13), cut in [13, 15).
        let flap = Some((Duration::from_secs(2), Duration::from_secs(1)));
        let m = NetModel::new(Network::default(), 4, 1, vec![link(false, flap)]).unwrap();
        let ms = Time::from_millis;
        assert!(m.partitioned(ms(10_500), 1, 3));
        assert!(!m.partitioned(ms(12_500), 1, 3));
        assert!(m.partitioned(ms(13_000), 1, 3));
        assert!(!m.partitioned(ms(20_000), 1, 3));
    }

    #[test]
    fn a_loss_burst_drops_its_share_across_the_cut_only() {
        let burst = ActivePartition {
            start: Time::from_secs(10),
            end: Time::from_secs(20),
            side: vec![true, false, false, false],
            one_way: false,
            loss: 0.4,
            link: None,
            flap: None,
        };
        let mut m = NetModel::new(Network::default(), 4, 1, vec![burst]).unwrap();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
        let mut dropped = |m: &mut NetModel, at: u64, from: usize, to: usize| {
            (0..10_000)
                .filter(|_| {
                    let f = m.fate(&mut rng, Time::from_secs(at), from, to);
                    assert_ne!(f, Fate::Partitioned, "a burst is not a cut");
                    f == Fate::Dropped
                })
                .count()
        };
        assert!((3_700..4_300).contains(&dropped(&mut m, 15, 0, 1)));
        assert!((3_700..4_300).contains(&dropped(&mut m, 15, 2, 0)));
        assert_eq!(
            dropped(&mut m, 15, 1, 2),
            0,
            "links off the side are spared"
        );
        assert_eq!(dropped(&mut m, 25, 0, 1), 0, "the burst ends");
        assert!(!m.partitioned(Time::from_secs(15), 0, 1));
    }

    #[test]
    fn latency_distributions_have_their_centre() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
        let cases = [
            (
                Latency::Constant {
                    value: Dur(Duration::from_millis(2)),
                },
                2.0,
            ),
            (
                Latency::Uniform {
                    min: Dur(Duration::from_millis(1)),
                    max: Dur(Duration::from_millis(3)),
                },
                2.0,
            ),
            (
                Latency::Normal {
                    mean: Dur(Duration::from_millis(2)),
                    std_dev: Dur(Duration::from_micros(200)),
                },
                2.0,
            ),
            (
                Latency::Lognormal {
                    median: Dur(Duration::from_millis(2)),
                    sigma: 0.5,
                },
                2.0,
            ),
        ];
        for (lat, median_ms) in cases {
            let m = model(Network {
                latency: lat.clone(),
                link_jitter: Dur(Duration::ZERO),
                ..Network::default()
            });
            let mut v: Vec<f64> = (0..10_001)
                .map(|_| m.delay(&mut rng, 0, 1).as_secs_f64() * 1e3)
                .collect();
            v.sort_by(f64::total_cmp);
            assert!(
                (v[5000] - median_ms).abs() < 0.1,
                "{lat:?}: median {}",
                v[5000]
            );
        }
    }
}
