//! HTTP health routes (feature `axum`).

use axum::Router;
use axum::extract::RawQuery;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::health::{Health, Probe};

impl Health {
    /// An axum [`Router`] serving the registry for Kubernetes probes:
    ///
    /// | path | check |
    /// |---|---|
    /// | `/livez` | [`liveness`](Health::liveness) |
    /// | `/readyz` | [`readiness`](Health::readiness) |
    /// | `/startupz` | [`startup`](Health::startup) |
    ///
    /// Each answers `200` with body `ok`, or `503` with the failing part as the body
    /// (`text/plain`, never cached). Kubernetes' healthz conventions:
    /// - `?verbose` lists every part (`[+]name ok: …` / `[-]name failed: …`, then
    ///   `readyz check passed|failed`);
    /// - `?exclude=NAME` skips a part, repeatable (`?exclude=db&exclude=cache`); a
    ///   name that matches nothing is reported in the verbose output and otherwise
    ///   ignored, as the apiserver does.
    ///
    /// Handlers read cached state only (atomics, the driver's last snapshot, each
    /// dependency check's last result): no check runs inside a request, so a probe
    /// answers in microseconds whatever the dependencies do.
    ///
    /// **Merge it outside any authentication layer**: the kubelet sends no
    /// credentials, and a probe that gets `401` fails (liveness then restarts a
    /// healthy pod). Build `Router::new().merge(health.router()).merge(api.layer(auth))`,
    /// not `api.merge(health.router()).layer(auth)`; the bodies say nothing secret.
    #[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
    pub fn router<S>(&self) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        let mut router = Router::new();
        for probe in Probe::ALL {
            let h = self.clone();
            router = router.route(
                &format!("/{}", probe.route_name()),
                get(move |q: RawQuery| async move { respond(&h, probe, q) }),
            );
        }
        router
    }
}

/// The answer to one probe request.
fn respond(health: &Health, probe: Probe, RawQuery(query): RawQuery) -> Response {
    let q = Query::parse(query.as_deref());
    let all = health.parts(probe);
    let unknown: Vec<&str> = q
        .exclude
        .iter()
        .map(String::as_str)
        .filter(|e| !all.iter().any(|p| p.name == *e))
        .collect();
    let exclude: Vec<&str> = q.exclude.iter().map(String::as_str).collect();
    // `check` applies the startup latch; evaluating again is cheap (cached state).
    let check = health.check(probe, &exclude);
    let status = if check.ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = if q.verbose {
        let mut out = String::new();
        for e in &q.exclude {
            if !unknown.contains(&e.as_str()) {
                out.push_str(&format!("[+]{e} excluded: ok\n"));
            }
        }
        if !unknown.is_empty() {
            out.push_str(&format!(
                "warn: some health checks cannot be excluded: no matches for {}\n",
                unknown
                    .iter()
                    .map(|u| format!("{u:?}"))
                    .collect::<Vec<_>>()
                    .join(",")
            ));
        }
        out.push_str(&check.verbose(probe.route_name()));
        out
    } else {
        format!("{}\n", check.reason)
    };
    let mut resp = (status, body).into_response();
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// `?verbose` and `?exclude=NAME` (repeatable; percent-decoding is not needed, part
/// names are `[A-Za-z0-9_.-]`).
#[derive(Debug, Default, PartialEq, Eq)]
struct Query {
    verbose: bool,
    exclude: Vec<String>,
}

impl Query {
    fn parse(query: Option<&str>) -> Query {
        let mut q = Query::default();
        for kv in query.unwrap_or_default().split('&') {
            let mut it = kv.splitn(2, '=');
            match (it.next(), it.next()) {
                // `?verbose`, `?verbose=1`, `?verbose=true` (not `0` or `false`).
                (Some("verbose"), v) => q.verbose = !matches!(v, Some("0" | "false")),
                (Some("exclude"), Some(name)) if !name.is_empty() => {
                    q.exclude.push(name.to_string());
                }
                _ => {}
            }
        }
        q
    }
}

#[cfg(test)]
mod tests {
    use super::Query;

    #[test]
    fn verbose_query() {
        let v = |q| Query::parse(q).verbose;
        assert!(v(Some("verbose")));
        assert!(v(Some("a=b&verbose=1")));
        assert!(!v(Some("verbose=false")));
        assert!(!v(Some("verbosity")));
        assert!(!v(None));
    }

    #[test]
    fn exclude_query() {
        let q = Query::parse(Some("exclude=db&verbose&exclude=cache&exclude="));
        assert!(q.verbose);
        assert_eq!(q.exclude, ["db", "cache"]);
    }
}
