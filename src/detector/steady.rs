//! What a [`Config`] means for conviction in steady state: the silence after which a
//! phi-accrual monitor convicts a member whose acks came at a steady rhythm.

use std::time::Duration;

use super::phi::{PhiDetector, PhiParams};
use crate::config::Config;
use crate::time::Time;

/// Seconds of silence after a member's last ack at which a monitor convicts it, for a
/// detector that has only seen a steady ack rhythm at `cfg.probe_interval`: a
/// [`PhiDetector`] built from `cfg` (`phi_window`, `min_std_dev`, `acceptable_pause`,
/// `probe_interval` as its first interval), fed `phi_window + 2` acks one probe
/// interval apart (the window clamped to `2..=`[`PhiDetector::MAX_WINDOW`]), then asked
/// [`silence_for`](PhiDetector::silence_for)`(phi_convict)` with the acceptable pause.
///
/// This is the phi-monitors strategy's silence to convict: about `probe_interval +
/// acceptable_pause + y · min_std_dev` (4.52 s on [`Config::lan`]), growing one for one
/// with `acceptable_pause`. A monitor whose detector learned a jittery rhythm convicts
/// later; swim and lifeguard convict on their suspicion timeout instead
/// ([`Config::suspicion_min_timeout`]). `rumor-sim tune` and `rumor-node doctor` compare
/// it with measured pauses.
pub fn steady_silence_to_convict(cfg: &Config) -> Duration {
    let mut d = PhiDetector::new(&PhiParams {
        window: cfg.phi_window,
        min_std_dev: cfg.min_std_dev,
        acceptable_pause: cfg.acceptable_pause,
        first_interval: cfg.probe_interval,
    });
    let mut t = Time::ZERO;
    for _ in 0..cfg.phi_window.clamp(2, PhiDetector::MAX_WINDOW) + 2 {
        d.heartbeat(t);
        t += cfg.probe_interval;
    }
    d.silence_for(cfg.phi_convict, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lan_preset_convicts_after_about_four_and_a_half_seconds() {
        // docs/chaos.md: "the silence to convict on lan is ≈ 4.52 s after the last ack".
        let s = steady_silence_to_convict(&Config::lan());
        assert!((s.as_secs_f64() - 4.52).abs() < 0.05, "{s:?}");
    }

    #[test]
    fn it_grows_one_for_one_with_the_acceptable_pause() {
        let mut cfg = Config::lan();
        let base = steady_silence_to_convict(&cfg);
        cfg.acceptable_pause += Duration::from_secs(2);
        let more = steady_silence_to_convict(&cfg);
        assert_eq!(more - base, Duration::from_secs(2));
        // Any window, even one past the detector's bound, is clamped, never a panic.
        for window in [0, 1, usize::MAX] {
            cfg.phi_window = window;
            assert!(steady_silence_to_convict(&cfg) > Duration::ZERO);
        }
    }
}
