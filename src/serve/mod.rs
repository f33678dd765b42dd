//! The live view: `sluice serve` and `sluice run --ui` serve a page that draws the running
//! workflow as a graph, with its states, counts and memory, and lets a person cancel the run,
//! run it again and preview captured edges. The server is axum on a small tokio runtime of
//! its own; the run does not wait for it (events go through a bounded broadcast that lags
//! slow pages instead of blocking).

mod api;
mod layout;
mod session;

use std::net::{IpAddr, SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub use session::{RunSettings, Session, StartError};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The address could not be bound (in use, not local, no permission).
    #[error("cannot listen on {addr}: {reason}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why, in words.
        reason: String,
    },
    /// The server's threads could not start.
    #[error("starting the server: {0}")]
    Start(#[from] std::io::Error),
}

/// A server going on; dropping it stops it.
pub struct Server {
    runtime: Option<tokio::runtime::Runtime>,
    url: String,
    streams: Arc<AtomicUsize>,
}

impl Server {
    /// Binds `bind:port` (port 0: a free one) and serves `session` on threads of its own.
    pub fn start(session: Arc<Session>, bind: IpAddr, port: u16) -> Result<Server, ServeError> {
        let addr = SocketAddr::new(bind, port);
        let listener = TcpListener::bind(addr).map_err(|e| ServeError::Bind {
            addr,
            reason: match e.kind() {
                std::io::ErrorKind::AddrInUse => format!("port {port} is in use"),
                std::io::ErrorKind::AddrNotAvailable => {
                    format!("{bind} is not an address of this machine")
                }
                std::io::ErrorKind::PermissionDenied => {
                    format!("no permission to use port {port}")
                }
                _ => e.to_string(),
            },
        })?;
        listener.set_nonblocking(true)?;
        let local = listener.local_addr()?;
        let host = match local.ip() {
            IpAddr::V6(ip) => format!("[{ip}]:{}", local.port()),
            IpAddr::V4(ip) => format!("{ip}:{}", local.port()),
        };
        // On loopback only this server's own names are accepted as Host.
        let hosts = bind.is_loopback().then(|| {
            let p = local.port();
            Arc::from(vec![
                host.clone(),
                format!("localhost:{p}"),
                format!("127.0.0.1:{p}"),
                format!("[::1]:{p}"),
            ])
        });
        let streams = Arc::new(AtomicUsize::new(0));
        let api = api::Api {
            session,
            token: new_token().into(),
            hosts,
            streams: streams.clone(),
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("sluice-serve")
            .enable_io()
            .enable_time()
            .build()?;
        let listener = {
            let _entered = runtime.enter();
            tokio::net::TcpListener::from_std(listener)?
        };
        runtime.spawn(async move {
            let _ = axum::serve(listener, api::router(api)).await;
        });
        Ok(Server {
            runtime: Some(runtime),
            url: format!("http://{host}/"),
            streams,
        })
    }

    /// The page's address (`http://127.0.0.1:PORT/`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Waits up to `at_most` for the pages to stop listening (a page closes its stream when
    /// it has the end of a run whose server ends with it), so they get the last events.
    pub fn linger(&self, at_most: Duration) {
        let until = Instant::now() + at_most;
        let (_never, tick) = crossbeam_channel::bounded::<()>(0);
        while self.streams.load(Ordering::SeqCst) > 0 && Instant::now() < until {
            let _ = tick.recv_timeout(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// 128 random bits as hex, from the standard library's per-process random hash keys.
fn new_token() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut s = String::with_capacity(32);
    for i in 0..2u64 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(i);
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        s.push_str(&format!("{:016x}", h.finish()));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_and_differ() {
        let (a, b) = (new_token(), new_token());
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
