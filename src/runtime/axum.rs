//! HTTP health routes (feature `axum`).

use axum::Router;
use axum::extract::RawQuery;
use axum::http::StatusCode;
use axum::routing::get;

use super::health::{Check, Health};

impl Health {
    /// An axum [`Router`] serving the checks for Kubernetes probes:
    ///
    /// | path | check |
    /// |---|---|
    /// | `/livez` | [`liveness`](Health::liveness) |
    /// | `/readyz` | [`readiness`](Health::readiness) |
    /// | `/startupz` | [`startup`](Health::startup) |
    ///
    /// Each answers `200` with body `ok`, or `503` with the failing condition as the
    /// body. `?verbose` lists every condition (`[+]name ok: …` / `[-]name failed: …`).
    /// Merge it into your own router (`app.merge(health.router())`) or serve it alone.
    #[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
    pub fn router<S>(&self) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        let (l, r, s) = (self.clone(), self.clone(), self.clone());
        Router::new()
            .route(
                "/livez",
                get(move |q: RawQuery| async move { respond("livez", &l.liveness(), q) }),
            )
            .route(
                "/readyz",
                get(move |q: RawQuery| async move { respond("readyz", &r.readiness(), q) }),
            )
            .route(
                "/startupz",
                get(move |q: RawQuery| async move { respond("startupz", &s.startup(), q) }),
            )
    }
}

fn respond(name: &str, check: &Check, RawQuery(query): RawQuery) -> (StatusCode, String) {
    let status = if check.ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = if wants_verbose(query.as_deref()) {
        check.verbose(name)
    } else {
        format!("{}\n", check.reason)
    };
    (status, body)
}

/// `?verbose`, `?verbose=1`, `?verbose=true` (and not `verbose=0` or `verbose=false`).
fn wants_verbose(query: Option<&str>) -> bool {
    query.is_some_and(|q| {
        q.split('&').any(|kv| {
            let mut it = kv.splitn(2, '=');
            it.next() == Some("verbose") && !matches!(it.next(), Some("0" | "false"))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::wants_verbose;

    #[test]
    fn verbose_query() {
        assert!(wants_verbose(Some("verbose")));
        assert!(wants_verbose(Some("a=b&verbose=1")));
        assert!(!wants_verbose(Some("verbose=false")));
        assert!(!wants_verbose(Some("verbosity")));
        assert!(!wants_verbose(None));
    }
}
