//! Seeds by address or by name: what a node joins through, resolved and re-resolved
//! off the driver, so a DNS miss at start delays a join instead of splitting the
//! cluster (see [`Seed`] and [`Resolve`]).

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use tokio::sync::{mpsc, oneshot};

use crate::runtime::handle::Command;
use crate::runtime::shared::{Shared, lock};

/// Where to look for existing members: an address, or a host name and port that DNS
/// resolves (a Kubernetes headless Service: one A record per pod).
///
/// Built from a [`SocketAddr`] or from text: `"10.0.0.2:7946"`, `"[::1]:7946"`,
/// `"rumor-headless.ns.svc.cluster.local:7946"`. Text that is neither an address nor
/// `host:port` is kept as given and refused by
/// [`RuntimeBuilder::start`](crate::RuntimeBuilder::start) with
/// [`StartError::Seed`](crate::StartError::Seed), so a builder chain needs no `?` per
/// seed; [`Seed::from_str`] refuses it at once.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Seed(Kind);

#[derive(Clone, PartialEq, Eq, Hash)]
enum Kind {
    Addr(SocketAddr),
    Name { host: String, port: u16 },
    Invalid { text: String, why: SeedError },
}

/// Why text is not a seed.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Error)]
#[non_exhaustive]
pub enum SeedError {
    /// No `:port` after the host.
    #[error("expected HOST:PORT or IP:PORT, with a port")]
    NoPort,
    /// The port is not a number from 1 to 65535.
    #[error("the port {0:?} is not a number from 1 to 65535")]
    BadPort(String),
    /// The host part is empty, too long for DNS (253 bytes), or holds characters no
    /// host name has.
    #[error("the host {0:?} is not a host name")]
    BadHost(String),
}

/// The longest host name DNS can carry (RFC 1035, in text form).
const MAX_HOST_LEN: usize = 253;

impl Seed {
    /// The seed's address, if it is one rather than a name.
    pub fn addr(&self) -> Option<SocketAddr> {
        match &self.0 {
            Kind::Addr(a) => Some(*a),
            _ => None,
        }
    }

    /// The host name and port, if the seed is a name.
    pub fn name(&self) -> Option<(&str, u16)> {
        match &self.0 {
            Kind::Name { host, port } => Some((host, *port)),
            _ => None,
        }
    }

    /// Why the text this seed was built from is not one, if it is not.
    pub(crate) fn invalid(&self) -> Option<(&str, &SeedError)> {
        match &self.0 {
            Kind::Invalid { text, why } => Some((text, why)),
            _ => None,
        }
    }

    fn parse(text: &str) -> Result<Seed, SeedError> {
        let text = text.trim();
        if let Ok(addr) = text.parse::<SocketAddr>() {
            return Ok(Seed(Kind::Addr(addr)));
        }
        let (host, port) = text.rsplit_once(':').ok_or(SeedError::NoPort)?;
        let port = match port.parse::<u16>() {
            Ok(p) if p != 0 => p,
            _ => return Err(SeedError::BadPort(port.to_string())),
        };
        let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_');
        if host.is_empty() || host.len() > MAX_HOST_LEN || !host.chars().all(valid) {
            return Err(SeedError::BadHost(host.to_string()));
        }
        Ok(Seed(Kind::Name {
            host: host.to_string(),
            port,
        }))
    }
}

impl FromStr for Seed {
    type Err = SeedError;
    fn from_str(s: &str) -> Result<Seed, SeedError> {
        Seed::parse(s)
    }
}

impl From<SocketAddr> for Seed {
    fn from(addr: SocketAddr) -> Seed {
        Seed(Kind::Addr(addr))
    }
}

impl From<&str> for Seed {
    fn from(text: &str) -> Seed {
        Seed::parse(text).unwrap_or_else(|why| {
            Seed(Kind::Invalid {
                text: text.to_string(),
                why,
            })
        })
    }
}

impl From<String> for Seed {
    fn from(text: String) -> Seed {
        Seed::from(text.as_str())
    }
}

impl From<&String> for Seed {
    fn from(text: &String) -> Seed {
        Seed::from(text.as_str())
    }
}

impl fmt::Display for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Kind::Addr(a) => write!(f, "{a}"),
            Kind::Name { host, port } => write!(f, "{host}:{port}"),
            Kind::Invalid { text, .. } => f.write_str(text),
        }
    }
}

impl fmt::Debug for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Seed({self})")
    }
}

/// What a name resolves to, as a boxed future (the trait stays object safe).
pub type ResolveFuture = Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send>>;

/// Turns a seed's host name into addresses. The runtime calls it from a task of its
/// own, never from the driver, with a deadline
/// ([`RuntimeBuilder::resolve_timeout`](crate::RuntimeBuilder::resolve_timeout)).
///
/// The default is [`SystemResolver`]. Plug in another to resolve through a different
/// DNS client, a service catalog or a test double.
pub trait Resolve: Send + Sync + 'static {
    /// The addresses of `host`, each with `port`.
    fn resolve(&self, host: &str, port: u16) -> ResolveFuture;
}

impl<F> Resolve for F
where
    F: Fn(&str, u16) -> ResolveFuture + Send + Sync + 'static,
{
    fn resolve(&self, host: &str, port: u16) -> ResolveFuture {
        self(host, port)
    }
}

/// The system's resolver, through tokio's `lookup_host` (`getaddrinfo` on tokio's
/// blocking pool).
///
/// Chosen over a DNS client library such as hickory-resolver because it resolves
/// exactly as every other program in the container does: `/etc/hosts`, `nsswitch.conf`
/// and `resolv.conf`'s `search` and `ndots` (so the short `rumor-headless` works inside
/// a Kubernetes namespace), with no dependency added. What it lacks is record TTLs,
/// which the runtime does not need: it re-resolves on its own schedule
/// ([`RuntimeBuilder::seed_refresh`](crate::RuntimeBuilder::seed_refresh)), and a
/// blocking `getaddrinfo` that outlives the runtime's deadline occupies a
/// blocking-pool thread, not the driver, until the system's own timeout ends it.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve(&self, host: &str, port: u16) -> ResolveFuture {
        let target = format!("{host}:{port}");
        Box::pin(async move { Ok(tokio::net::lookup_host(target).await?.collect()) })
    }
}

/// What the last attempt at one seed found, for the startup and readiness reasons.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SeedReport {
    pub seed: String,
    /// The addresses of the last successful attempt (a literal seed: itself).
    pub addrs: Vec<SocketAddr>,
    /// The last attempt's error, if it failed.
    pub error: Option<String>,
    /// Attempts so far.
    pub attempts: u32,
}

impl SeedReport {
    pub fn describe(&self) -> String {
        match &self.error {
            Some(e) => format!("{} → {} (attempt {})", self.seed, e, self.attempts),
            None if self.addrs.is_empty() => {
                format!("{} → no address (attempt {})", self.seed, self.attempts)
            }
            None => {
                let list: Vec<String> = self.addrs.iter().map(ToString::to_string).collect();
                format!("{} → {}", self.seed, list.join(", "))
            }
        }
    }
}

/// Resolves every seed once, the names concurrently, each with its own deadline
/// (one name that never answers delays the others by nothing), and updates `reports`
/// (one per seed, in order). Returns every address found, sorted and without
/// duplicates.
pub(crate) async fn resolve_all(
    seeds: &[Seed],
    resolver: &Arc<dyn Resolve>,
    timeout: Duration,
    reports: &mut Vec<SeedReport>,
) -> Vec<SocketAddr> {
    if reports.len() != seeds.len() {
        *reports = seeds
            .iter()
            .map(|s| SeedReport {
                seed: s.to_string(),
                addrs: Vec::new(),
                error: None,
                attempts: 0,
            })
            .collect();
    }
    let mut lookups = tokio::task::JoinSet::new();
    let mut results: Vec<Option<Result<Vec<SocketAddr>, String>>> = vec![None; seeds.len()];
    for (i, seed) in seeds.iter().enumerate() {
        match &seed.0 {
            Kind::Addr(a) => results[i] = Some(Ok(vec![*a])),
            Kind::Invalid { why, .. } => results[i] = Some(Err(why.to_string())),
            Kind::Name { host, port } => {
                let lookup = resolver.resolve(host, *port);
                lookups.spawn(async move {
                    let r = match tokio::time::timeout(timeout, lookup).await {
                        Ok(r) => r.map_err(|e| format!("lookup failed: {e}")),
                        Err(_) => Err(format!("lookup timed out after {} ms", timeout.as_millis())),
                    };
                    (i, r)
                });
            }
        }
    }
    while let Some(done) = lookups.join_next().await {
        match done {
            Ok((i, r)) => results[i] = Some(r),
            // A resolver that panicked: its seed keeps no answer this round.
            Err(e) => tracing::warn!(error = %e, "a seed lookup failed to complete"),
        }
    }
    let mut all = Vec::new();
    for (report, result) in reports.iter_mut().zip(results) {
        report.attempts = report.attempts.saturating_add(1);
        match result.unwrap_or_else(|| Err("the lookup did not complete".to_string())) {
            Ok(mut addrs) => {
                addrs.sort();
                addrs.dedup();
                all.extend_from_slice(&addrs);
                report.addrs = addrs;
                report.error = None;
            }
            Err(e) => report.error = Some(e),
        }
    }
    all.sort();
    all.dedup();
    all
}

/// How often the seed task resolves.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Schedule {
    /// While this node knows no live peer (or has not joined).
    pub retry: Duration,
    /// Once it does: seeds that no live member holds are synced with, to merge clusters
    /// that formed apart.
    pub refresh: Duration,
}

/// The seed task: resolves the seeds while this node is alone, and every
/// `schedule.refresh` after, and hands the addresses to the driver. Never runs inside
/// the driver, so a slow DNS server cannot stall the protocol. Ends when the driver
/// stops or the node starts to leave.
pub(crate) async fn run(
    shared: Arc<Shared>,
    cmds: mpsc::Sender<Command>,
    seeds: Vec<Seed>,
    schedule: Schedule,
) {
    let mut reports = Vec::new();
    let mut last: Option<tokio::time::Instant> = None;
    // Consecutive attempts made alone: the wait doubles up to 8 × `retry`, so a pod
    // that starts before its Service answers finds it within seconds, and a lone
    // bootstrap node does not query DNS every `retry` forever.
    let mut alone_attempts: u32 = 0;
    loop {
        if shared.is_draining() || shared.stopped.is_cancelled() {
            return;
        }
        let alone = {
            let st = shared.status();
            !st.joined || st.live_peers == 0
        };
        let due = last.is_none_or(|t| t.elapsed() >= schedule.refresh);
        if alone || due {
            let addrs = resolve_all(
                &seeds,
                &shared.resolver,
                shared.resolve_timeout,
                &mut reports,
            )
            .await;
            *lock(&shared.seed_reports) = reports.clone();
            last = Some(tokio::time::Instant::now());
            alone_attempts = if alone {
                alone_attempts.saturating_add(1)
            } else {
                0
            };
            if !addrs.is_empty() {
                let (reply, _) = oneshot::channel();
                let cmd = Command::Seeds {
                    addrs,
                    replace: true,
                    reply,
                };
                if cmds.send(cmd).await.is_err() {
                    return;
                }
            }
        }
        let wait = schedule
            .retry
            .saturating_mul(1 << alone_attempts.saturating_sub(1).min(3));
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = shared.stopped.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_addresses_names_and_refuses_the_rest() {
        let a: Seed = "10.0.0.2:7946".parse().unwrap();
        assert_eq!(a.addr(), Some("10.0.0.2:7946".parse().unwrap()));
        let v6: Seed = "[::1]:7946".parse().unwrap();
        assert!(v6.addr().is_some());
        let n: Seed = "rumor-headless.ns.svc.cluster.local:7946".parse().unwrap();
        assert_eq!(
            n.name(),
            Some(("rumor-headless.ns.svc.cluster.local", 7946))
        );
        assert_eq!("rumor".parse::<Seed>(), Err(SeedError::NoPort));
        assert_eq!(
            "rumor:0".parse::<Seed>(),
            Err(SeedError::BadPort("0".into()))
        );
        assert_eq!(
            "rumor:http".parse::<Seed>(),
            Err(SeedError::BadPort("http".into()))
        );
        assert_eq!(":7946".parse::<Seed>(), Err(SeedError::BadHost("".into())));
        assert_eq!(
            "a b:7946".parse::<Seed>(),
            Err(SeedError::BadHost("a b".into()))
        );
        let long = format!("{}:1", "a".repeat(254));
        assert!(matches!(long.parse::<Seed>(), Err(SeedError::BadHost(_))));
        // From text never fails; the error waits for `start`.
        let bad = Seed::from("nope");
        assert_eq!(bad.invalid().map(|(t, _)| t), Some("nope"));
        assert_eq!(bad.to_string(), "nope");
    }

    #[tokio::test]
    async fn reports_what_each_seed_resolved_to() {
        let resolver: Arc<dyn Resolve> = Arc::new(|host: &str, port: u16| -> ResolveFuture {
            let host = host.to_string();
            Box::pin(async move {
                match host.as_str() {
                    "two" => Ok(vec![
                        SocketAddr::from(([10, 0, 0, 2], port)),
                        SocketAddr::from(([10, 0, 0, 1], port)),
                    ]),
                    "slow" => {
                        tokio::time::sleep(Duration::from_secs(60)).await;
                        Ok(Vec::new())
                    }
                    _ => Err(io::Error::other("no such host")),
                }
            })
        });
        let seeds: Vec<Seed> = ["two:7946", "10.0.0.1:7946", "missing:7946", "slow:1"]
            .into_iter()
            .map(Seed::from)
            .collect();
        let mut reports = Vec::new();
        let addrs = resolve_all(&seeds, &resolver, Duration::from_millis(50), &mut reports).await;
        assert_eq!(
            addrs,
            vec![
                SocketAddr::from(([10, 0, 0, 1], 7946)),
                SocketAddr::from(([10, 0, 0, 2], 7946)),
            ]
        );
        assert_eq!(
            reports[0].describe(),
            "two:7946 → 10.0.0.1:7946, 10.0.0.2:7946"
        );
        assert_eq!(
            reports[2].describe(),
            "missing:7946 → lookup failed: no such host (attempt 1)"
        );
        assert_eq!(
            reports[3].describe(),
            "slow:1 → lookup timed out after 50 ms (attempt 1)"
        );
    }
}
