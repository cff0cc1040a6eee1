//! A fake database whose latency and failures are set at run time (flags, the admin
//! route, or directly from a test), so the health checks meet every way a real
//! dependency misbehaves: slow, failing, hanging, or a client that panics.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// How the next pings behave, and how many there were.
#[derive(Debug, Default)]
pub struct FakeDb {
    latency_ms: AtomicU64,
    failing: AtomicBool,
    hanging: AtomicBool,
    panicking: AtomicBool,
    pings: AtomicU64,
}

impl FakeDb {
    /// Answers after `latency`, failing or not.
    pub fn new(latency: Duration, failing: bool) -> FakeDb {
        let db = FakeDb::default();
        db.set_latency(latency);
        db.set_failing(failing);
        db
    }

    pub fn set_latency(&self, latency: Duration) {
        self.latency_ms
            .store(latency.as_millis() as u64, Ordering::Relaxed);
    }

    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::Relaxed);
    }

    /// Never answers (a connection stuck in a half-open TCP session).
    pub fn set_hanging(&self, hanging: bool) {
        self.hanging.store(hanging, Ordering::Relaxed);
    }

    /// The client library panics (a bug in a driver).
    pub fn set_panicking(&self, panicking: bool) {
        self.panicking.store(panicking, Ordering::Relaxed);
    }

    /// Pings so far: what the health checks cost the database.
    pub fn pings(&self) -> u64 {
        self.pings.load(Ordering::Relaxed)
    }

    /// `SELECT 1`.
    pub async fn ping(&self) -> Result<(), String> {
        self.pings.fetch_add(1, Ordering::Relaxed);
        if self.panicking.load(Ordering::Relaxed) {
            panic!("fake db client: connection pool poisoned");
        }
        if self.hanging.load(Ordering::Relaxed) {
            std::future::pending::<()>().await;
        }
        let latency = self.latency_ms.load(Ordering::Relaxed);
        if latency > 0 {
            tokio::time::sleep(Duration::from_millis(latency)).await;
        }
        if self.failing.load(Ordering::Relaxed) {
            return Err("connection refused by fake db".to_string());
        }
        Ok(())
    }
}
