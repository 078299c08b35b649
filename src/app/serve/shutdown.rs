//! Graceful shutdown, in the order a load balancer needs:
//!
//! 1. a stop request ([`super::Server::stop`], or SIGTERM / Ctrl-C under
//!    [`super::Server::run_until_signal`]);
//! 2. `/readyz` answers 503 at once;
//! 3. the listener stays open for the drain delay, so that a load balancer sees the 503;
//! 4. the listener closes, and every open connection finishes the request it is answering
//!    (idle keep-alive connections close);
//! 5. all connections are closed, or the shutdown timeout has passed;
//! 6. the inference worker stops, and [`super::Server::run`] returns.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::{Semaphore, watch};

use super::Shared;

/// Waits for a stop request: `stop` turning true, or (with `signals`) SIGTERM or SIGINT.
pub(crate) async fn requested(mut stop: watch::Receiver<bool>, signals: bool) {
    let asked = async move {
        while !*stop.borrow_and_update() {
            if stop.changed().await.is_err() {
                // the server is gone: nobody can ask any more
                std::future::pending::<()>().await;
            }
        }
    };
    if !signals {
        return asked.await;
    }
    let term = async {
        #[cfg(unix)]
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
        #[cfg(not(unix))]
        std::future::pending::<()>().await
    };
    tokio::select! {
        _ = asked => {}
        _ = term => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// Steps 2–5 of the drain: not ready, wait `drain_delay`, close the listener and the
/// connections (`closing`), wait until every connection permit is back or `timeout`.
/// Whether every connection closed in time.
pub(crate) async fn drain(
    shared: &Shared,
    drain_delay: Duration,
    timeout: Duration,
    closing: &watch::Sender<bool>,
    permits: &Arc<Semaphore>,
    max_connections: usize,
) -> bool {
    shared.draining.store(true, Ordering::Release);
    tokio::time::sleep(drain_delay).await;
    closing.send_replace(true);
    let all = u32::try_from(max_connections).unwrap_or(u32::MAX);
    tokio::time::timeout(timeout, permits.acquire_many(all))
        .await
        .is_ok_and(|p| p.is_ok())
}
