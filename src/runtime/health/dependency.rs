//! Readiness dependency checks: each runs in a background task of its own, cut at a
//! hard timeout, its panics caught, its last result cached for the probes.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::time::Instant;
use tracing::{error, warn};

use super::{CheckPart, ms};
use crate::runtime::shared::lock;

type BoxFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;
type CheckFn = Arc<dyn Fn() -> BoxFuture + Send + Sync>;

/// The shortest [`CheckOptions::timeout`].
const MIN_TIMEOUT: Duration = Duration::from_millis(1);
/// The shortest [`CheckOptions::ttl`]: the dependency sees at most ten checks a
/// second per pod.
const MIN_TTL: Duration = Duration::from_millis(100);
/// The longest timeout and TTL: a readiness check refreshed less often says nothing
/// about now, and longer durations overflow the schedule's arithmetic.
const MAX_DURATION: Duration = Duration::from_secs(3600);

/// How a readiness dependency check runs: its hard timeout and how long its result
/// is reused.
///
/// The fields are public like [`HealthConfig`](crate::HealthConfig)'s; a value out of
/// a field's range, set through the field or the setter, is brought into it when the
/// check is registered ([`Health::readiness_check`](crate::Health::readiness_check)).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckOptions {
    /// A run that has not answered after this long is cut (its future dropped) and
    /// counts as failed: a dependency that hangs fails readiness instead of holding
    /// it at its last good answer.
    ///
    /// Unit: time. Default 500 ms. Range: 1 ms to 1 h (a value outside is raised or
    /// lowered to it at registration; zero would cut any run that does not answer at
    /// once). Well under the `ttl`, and under what the dependency's own clients wait
    /// in the request path, so that a pod whose requests would time out is not ready.
    pub timeout: Duration,
    /// How long a result stands: a run starts every `ttl` (measured from the start of
    /// the previous one, or from its end when it took longer), so the dependency sees
    /// one check per `ttl` per pod however often it is probed.
    ///
    /// Unit: time. Default 1 s (the guidance's 1–2 s). Range: 100 ms to 1 h (a value
    /// outside is raised or lowered to it at registration; zero would run the check
    /// back to back, hammering the dependency). Lower notices an outage (and a
    /// recovery) sooner at more load on the dependency; keep it under the readiness
    /// probe's `periodSeconds`, so every probe sees a fresh result.
    pub ttl: Duration,
}

impl Default for CheckOptions {
    fn default() -> CheckOptions {
        CheckOptions {
            timeout: Duration::from_millis(500),
            ttl: Duration::from_secs(1),
        }
    }
}

impl CheckOptions {
    /// The defaults: 500 ms timeout, 1 s TTL.
    pub fn new() -> CheckOptions {
        CheckOptions::default()
    }

    /// Sets [`timeout`](CheckOptions::timeout), brought into 1 ms to 1 h.
    pub fn timeout(mut self, timeout: Duration) -> CheckOptions {
        self.timeout = timeout.clamp(MIN_TIMEOUT, MAX_DURATION);
        self
    }

    /// Sets [`ttl`](CheckOptions::ttl), brought into 100 ms to 1 h.
    pub fn ttl(mut self, ttl: Duration) -> CheckOptions {
        self.ttl = ttl.clamp(MIN_TTL, MAX_DURATION);
        self
    }

    /// Both fields within their ranges, whatever was written to them.
    fn clamped(self) -> CheckOptions {
        let (timeout, ttl) = (self.timeout, self.ttl);
        self.timeout(timeout).ttl(ttl)
    }

    /// A result older than this was not refreshed in time (the runtime is starved or
    /// gone): it no longer counts as passing.
    fn stale_after(&self) -> Duration {
        self.ttl * 2 + self.timeout + Duration::from_secs(1)
    }
}

/// How one run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Ok,
    Failed(String),
    TimedOut,
    Panicked(String),
}

impl Outcome {
    /// The `outcome` label of `rumor_health_check_runs_total`.
    fn label(&self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Failed(_) => "failed",
            Outcome::TimedOut => "timeout",
            Outcome::Panicked(_) => "panic",
        }
    }
}

struct Result_ {
    outcome: Outcome,
    latency: Duration,
    at: Instant,
}

pub(crate) struct DependencyState {
    pub name: String,
    options: CheckOptions,
    check: CheckFn,
    /// Its refresher was spawned.
    pub spawned: AtomicBool,
    last: Mutex<Option<Result_>>,
}

impl DependencyState {
    pub fn new<F, Fut, E>(name: String, options: CheckOptions, check: F) -> DependencyState
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: std::fmt::Display + 'static,
    {
        let check: CheckFn = Arc::new(move || {
            let fut = check();
            Box::pin(async move { fut.await.map_err(|e| e.to_string()) })
        });
        DependencyState {
            name,
            options: options.clamped(),
            check,
            spawned: AtomicBool::new(false),
            last: Mutex::new(None),
        }
    }

    /// The cached result as a part: never runs the check.
    pub fn part(&self, now: Instant) -> CheckPart {
        let last = lock(&self.last);
        let Some(r) = last.as_ref() else {
            return CheckPart::new(self.name.clone(), false, "not checked yet");
        };
        let age = now.saturating_duration_since(r.at);
        if age > self.options.stale_after() {
            return CheckPart::new(
                self.name.clone(),
                false,
                format!("last result is {} old: the check is not being run", ms(age)),
            );
        }
        let (ok, what) = match &r.outcome {
            Outcome::Ok => (true, format!("ok in {}", ms(r.latency))),
            Outcome::Failed(e) => (false, format!("{e} (after {})", ms(r.latency))),
            Outcome::TimedOut => (
                false,
                format!("no answer within the {} timeout", ms(self.options.timeout)),
            ),
            Outcome::Panicked(m) => (false, format!("the check panicked: {m}")),
        };
        CheckPart::new(self.name.clone(), ok, format!("{what}, {} ago", ms(age)))
    }

    /// One run: in a task of its own (so a panic, in the call or in the future, is a
    /// `JoinError` and not this task's death), cut at the timeout.
    async fn run_once(&self) -> Result_ {
        let start = Instant::now();
        let f = self.check.clone();
        let mut task = tokio::spawn(async move { f().await });
        let outcome = match tokio::time::timeout(self.options.timeout, &mut task).await {
            Ok(Ok(Ok(()))) => Outcome::Ok,
            Ok(Ok(Err(e))) => Outcome::Failed(e),
            Ok(Err(join)) if join.is_panic() => {
                let payload = join.into_panic();
                let msg = payload
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a non-string panic".to_string());
                error!(check = %self.name, panic = %msg, "health check panicked");
                Outcome::Panicked(msg)
            }
            Ok(Err(_)) => Outcome::Failed("the check's task was cancelled".to_string()),
            Err(_) => {
                task.abort();
                warn!(check = %self.name, timeout_ms = self.options.timeout.as_millis() as u64, "health check timed out");
                Outcome::TimedOut
            }
        };
        let end = Instant::now();
        Result_ {
            outcome,
            latency: end.saturating_duration_since(start),
            at: end,
        }
    }
}

/// The refresher of one check: runs it every TTL until the registry is dropped.
pub(crate) async fn refresh(state: Weak<DependencyState>) {
    loop {
        let Some(s) = state.upgrade() else { return };
        let started = Instant::now();
        let r = s.run_once().await;
        let check = s.name.clone();
        metrics::histogram!("rumor_health_check_seconds", "check" => check.clone())
            .record(r.latency.as_secs_f64());
        metrics::counter!(
            "rumor_health_check_runs_total",
            "check" => check,
            "outcome" => r.outcome.label()
        )
        .increment(1);
        *lock(&s.last) = Some(r);
        let next = started + s.options.ttl;
        // Do not hold the registry alive while sleeping.
        drop(s);
        tokio::time::sleep_until(next).await;
    }
}
