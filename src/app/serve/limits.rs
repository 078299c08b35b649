//! Connections and their limits: the connection cap, the header-read timeout, the lingering
//! close after an answer that closes the connection, and the per-connection part of a graceful
//! shutdown.
//!
//! - At most `max_connections` connections are open: the accept loop takes a permit before it
//!   accepts, so further clients wait in the kernel's backlog (no thread or task per waiting
//!   client).
//! - hyper's HTTP/1 header-read timeout (a total for the headers, not an idle timer) is armed
//!   with a tokio timer; a client that sent part of its headers by then gets a `408` and the
//!   connection closes.
//! - The body timeout and the 413 for a declared body over the limit are in
//!   [`super::routes`]; their answers carry `Connection: close`. When hyper is done with a
//!   connection, it is closed gracefully: the server's side is shut down (the client reads the
//!   whole answer), then at most [`LINGER_BYTES`] or [`LINGER`] of what the client still sends
//!   is read and discarded, so that closing does not reset the connection under the answer.
//! - At a shutdown, the accept loop takes every connection already waiting in the kernel's
//!   accept queue before the listener closes, and a connection that has not sent its first
//!   request yet gets [`FIRST_REQUEST_GRACE`] to send it: that request is answered (with
//!   `Connection: close`), so that no accepted connection is closed without an answer.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tower::ServiceExt;

/// The most a closing connection reads and discards of what its client still sends.
pub const LINGER_BYTES: usize = 8 << 20;
/// The longest a closing connection waits for its client to stop sending.
pub const LINGER: Duration = Duration::from_secs(1);
/// At a shutdown, how long a connection that has sent no request yet has to send its first.
pub const FIRST_REQUEST_GRACE: Duration = Duration::from_secs(1);

/// The limits a connection is served under.
#[derive(Clone, Debug)]
pub(crate) struct ConnLimits {
    pub header_timeout: Duration,
}

type BoxFuture = Pin<Box<dyn Future<Output = Result<axum::response::Response, Infallible>> + Send>>;

/// Accepts connections until `closing` turns true, at most `permits`' count at once; each is
/// served on its own task, which holds its permit until the connection is closed.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    router: Router,
    limits: ConnLimits,
    permits: Arc<Semaphore>,
    mut closing: watch::Receiver<bool>,
) {
    loop {
        if *closing.borrow() {
            // connections the kernel has accepted and queued are served, not reset: taken with
            // `accept` itself until the queue is empty (tokio's readiness may not have seen the
            // last ones yet), then the listener closes
            let Ok(listener) = listener.into_std() else {
                return;
            };
            refuse_new_connections(&listener);
            for stream in queued(&listener) {
                let Ok(stream) = TcpStream::from_std(stream) else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let permit = permits.clone().try_acquire_owned().ok();
                tokio::spawn(serve_connection(
                    stream,
                    router.clone(),
                    limits.clone(),
                    closing.clone(),
                    permit,
                ));
            }
            return;
        }
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
            _ = closing.changed() => continue,
        };
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, _)) => stream,
                Err(_) => {
                    // out of file descriptors or a connection reset before it was accepted:
                    // wait a little rather than spin
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            _ = closing.changed() => continue,
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(serve_connection(
            stream,
            router.clone(),
            limits.clone(),
            closing.clone(),
            Some(permit),
        ));
    }
}

/// Makes `listener` drop every packet that reaches it from now on (Linux: a socket filter
/// that accepts nothing), so that no connection joins its accept queue while the queue is
/// drained and the listener closed. A client whose SYN is dropped sends it again about a
/// second later and is refused then, never reset after its handshake. Elsewhere, and where
/// the filter is refused, nothing changes.
fn refuse_new_connections(listener: &std::net::TcpListener) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        /// `SO_ATTACH_FILTER` (26 on every Linux architecture).
        const SO_ATTACH_FILTER: libc::c_int = 26;
        // one classic BPF instruction: `ret #0`, keep 0 bytes of the packet (drop it)
        let mut drop_all = [libc::sock_filter {
            code: (libc::BPF_RET | libc::BPF_K) as u16,
            jt: 0,
            jf: 0,
            k: 0,
        }];
        let program = libc::sock_fprog {
            len: 1,
            filter: drop_all.as_mut_ptr(),
        };
        // SAFETY: the descriptor is the listener's, open for the whole call; `program` and the
        // instruction it points to live across the call, which copies them into the kernel and
        // reads only `size_of::<sock_fprog>()` bytes of `program`. A refused call returns -1
        // and changes nothing.
        unsafe {
            libc::setsockopt(
                listener.as_raw_fd(),
                libc::SOL_SOCKET,
                SO_ATTACH_FILTER,
                (&raw const program).cast::<libc::c_void>(),
                std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = listener;
}

/// Every connection waiting in `listener`'s accept queue (non-blocking), ready for tokio.
fn queued(listener: &std::net::TcpListener) -> Vec<std::net::TcpStream> {
    let mut out = Vec::new();
    if listener.set_nonblocking(true).is_err() {
        return out;
    }
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                if stream.set_nonblocking(true).is_ok() {
                    out.push(stream);
                }
            }
            // a signal, or a connection reset while it waited: the rest of the queue is next
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::Interrupted | std::io::ErrorKind::ConnectionAborted
                ) =>
            {
                continue;
            }
            // empty (`WouldBlock`), or an error that a retry would not mend
            Err(_) => return out,
        }
    }
}

async fn serve_connection(
    stream: TcpStream,
    router: Router,
    limits: ConnLimits,
    mut closing: watch::Receiver<bool>,
    _permit: Option<OwnedSemaphorePermit>,
) {
    // notified when a request's headers have arrived; the permit it stores stays until the
    // shutdown waits for it, so a connection that has had a request never waits
    let started = Arc::new(tokio::sync::Notify::new());
    let started_svc = started.clone();
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let router = router.clone();
        started_svc.notify_one();
        Box::pin(async move { router.oneshot(req).await }) as BoxFuture
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let mut conn = builder.serve_connection(TokioIo::new(stream), service);
    let mut draining = false;
    // at a shutdown: until when the first request may still come
    let mut grace: Option<tokio::time::Instant> = None;
    let result = loop {
        if !draining && grace.is_none() && *closing.borrow() {
            grace = Some(tokio::time::Instant::now() + FIRST_REQUEST_GRACE);
        }
        let waiting = !draining && grace.is_some();
        let until = grace.unwrap_or_else(tokio::time::Instant::now);
        tokio::select! {
            r = std::future::poll_fn(|cx| conn.poll_without_shutdown(cx)) => break r,
            changed = closing.changed(), if !draining && grace.is_none() => {
                if changed.is_err() {
                    draining = true;
                    Pin::new(&mut conn).graceful_shutdown();
                }
            }
            _ = started.notified(), if waiting => {
                // a request has come (at once if one came before the shutdown): it is
                // answered, then the connection closes
                draining = true;
                Pin::new(&mut conn).graceful_shutdown();
            }
            _ = tokio::time::sleep_until(until), if waiting => {
                draining = true;
                Pin::new(&mut conn).graceful_shutdown();
            }
        }
    };
    let timed_out = result.as_ref().err().is_some_and(hyper::Error::is_timeout);
    let parts = conn.into_parts();
    let mut stream = parts.io.into_inner();
    if timed_out && !parts.read_buf.is_empty() {
        // part of a request's headers came, the rest not in time
        let _ = stream
            .write_all(
                b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
            )
            .await;
    }
    linger(stream).await;
}

/// Closes `stream` gracefully: shuts down the sending side, then discards what the client
/// still sends, at most [`LINGER_BYTES`] for at most [`LINGER`].
async fn linger(mut stream: TcpStream) {
    let _ = stream.shutdown().await;
    let until = tokio::time::Instant::now() + LINGER;
    let mut buf = vec![0u8; 16 << 10];
    let mut read = 0;
    while read < LINGER_BYTES {
        match tokio::time::timeout_at(until, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => read += n,
            _ => break,
        }
    }
}
