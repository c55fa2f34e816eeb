//! The server's `/metrics` and `/health` (served by [`crate::metrics_http`]).

use crate::metrics_http::{Cached, Handler, Request, Response};
use crate::{conn, Shared};
use ferrokv_metrics::server::ServerSnapshot;
use ferrokv_metrics::Format;
use std::sync::Arc;
use std::time::Duration;

/// However often it is scraped, the engine lock is taken for a snapshot at most once per
/// this period; scrapes in between get the same figures.
const SNAPSHOT_MAX_AGE: Duration = Duration::from_millis(50);

/// How long `/health` waits for the engine lock before answering 503.
const HEALTH_LOCK_WAIT: Duration = Duration::from_secs(2);

pub struct ServerMetrics {
    shared: Arc<Shared>,
    snapshot: Cached<Arc<ServerSnapshot>>,
}

impl ServerMetrics {
    pub fn new(shared: Arc<Shared>) -> Self {
        ServerMetrics { shared, snapshot: Cached::new(SNAPSHOT_MAX_AGE) }
    }

    fn take_snapshot(&self) -> Arc<ServerSnapshot> {
        let now = conn::now_ms();
        // Only numbers are copied under the lock; encoding happens after it is released.
        let mut snap = self.shared.engine.lock().metrics_snapshot(now);
        snap.aof_fsync = self.shared.persist.aof().map(|aof| aof.fsync_latency.snapshot());
        Arc::new(snap)
    }
}

impl Handler for ServerMetrics {
    fn handle(&self, req: &Request) -> Response {
        match req.path.as_str() {
            "/metrics" => {
                let format = Format::from_accept(req.accept.as_deref());
                let snap = self.snapshot.get_or(|| self.take_snapshot());
                Response::new(200, format.content_type(), snap.render(format))
            }
            "/health" => match self.shared.engine.try_lock_for(HEALTH_LOCK_WAIT) {
                Some(e) if e.persist.loading.is_some() => Response::text(503, "loading\n"),
                Some(_) => Response::text(200, "ok\n"),
                None => Response::text(503, "busy\n"),
            },
            _ => Response::text(404, "Not Found: try /metrics or /health\n"),
        }
    }
}
