//! Per-source budgets for the work a datagram can make this node do for its sender:
//! ping-req relays (each costs a ping and an ack or nack), push-pull answers (each can
//! cost many datagrams of member entries) and answers to accusations (our Alive, up to a
//! full datagram with metadata, for a few bytes of Suspect: on a cluster without keys a
//! spoofed accuser could otherwise aim a stream of them at a member). A source over
//! budget within the current window is refused and counted; budgets reset every
//! `probe_interval`.
//!
//! Memory is bounded: at most [`MAX_SOURCES`] sources are tracked per window, and work
//! from sources beyond that is refused until the window rolls over (a flood of spoofed
//! addresses cannot grow the table, only spend its own window).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use crate::time::Time;

/// Sources tracked per window.
pub(crate) const MAX_SOURCES: usize = 4096;

/// Answers to accusations per source per window. An honest accuser is answered once
/// and then holds our refutation; a few more cover its datagrams already in flight.
pub(crate) const MAX_ANSWERS_PER_SOURCE: u32 = 4;

/// What is being spent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Work {
    Relay,
    Sync,
    Answer,
}

#[derive(Debug, Default)]
pub(crate) struct Budgets {
    window_start: Time,
    spent: BTreeMap<SocketAddr, [u32; 3]>,
}

impl Budgets {
    /// Spends one unit of `work` for `from` at `now` within a window of `window`; false
    /// (nothing spent) if `from` already spent `limit` in this window.
    pub fn spend(
        &mut self,
        now: Time,
        window: std::time::Duration,
        from: SocketAddr,
        work: Work,
        limit: u32,
    ) -> bool {
        if now.saturating_since(self.window_start) >= window {
            self.window_start = now;
            self.spent.clear();
        }
        if !self.spent.contains_key(&from) && self.spent.len() >= MAX_SOURCES {
            return false;
        }
        let e = self.spent.entry(from).or_default();
        let n = &mut e[work as usize];
        if *n >= limit {
            return false;
        }
        *n += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn a(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn each_source_gets_its_limit_per_window_per_kind() {
        let mut b = Budgets::default();
        let w = Duration::from_secs(1);
        let t = Time::from_millis(10);
        for _ in 0..3 {
            assert!(b.spend(t, w, a(1), Work::Relay, 3));
        }
        assert!(!b.spend(t, w, a(1), Work::Relay, 3));
        assert!(
            b.spend(t, w, a(1), Work::Sync, 3),
            "kinds are budgeted apart"
        );
        assert!(
            b.spend(t, w, a(2), Work::Relay, 3),
            "sources are budgeted apart"
        );
        assert!(
            b.spend(Time::from_millis(1010), w, a(1), Work::Relay, 3),
            "a new window"
        );
    }

    #[test]
    fn the_table_is_bounded() {
        let mut b = Budgets::default();
        let w = Duration::from_secs(1);
        let t = Time::from_millis(1);
        for p in 0..MAX_SOURCES as u16 {
            assert!(b.spend(t, w, a(p), Work::Sync, 1));
        }
        assert!(!b.spend(t, w, a(u16::MAX), Work::Sync, 1));
        assert_eq!(b.spent.len(), MAX_SOURCES);
    }
}
