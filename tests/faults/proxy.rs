//! A TCP proxy the fault tests put between the service and RabbitMQ, so that they can drop
//! the broker connection at will: `cut` resets every open connection, `refuse` closes the
//! listening socket (new connections are refused) until `accept` opens it again.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;

/// A running proxy; it stops with the test's runtime.
pub struct Proxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    cuts: watch::Sender<u64>,
    refusing: watch::Sender<bool>,
    open: Arc<AtomicUsize>,
}

impl Proxy {
    /// Listens on a free local port and forwards every connection to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let (cuts, _) = watch::channel(0u64);
        let (refusing, _) = watch::channel(false);
        let open = Arc::new(AtomicUsize::new(0));
        tokio::spawn(accept_loop(
            listener,
            addr,
            upstream,
            cuts.clone(),
            refusing.subscribe(),
            open.clone(),
        ));
        Proxy {
            addr,
            cuts,
            refusing,
            open,
        }
    }

    /// An AMQP URL (guest/guest, default vhost) that goes through the proxy.
    pub fn amqp_url(&self) -> String {
        format!("amqp://guest:guest@{}/%2f", self.addr)
    }

    /// Connections open through the proxy now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }

    /// Resets every open connection (both sides); returns how many there were.
    pub fn cut(&self) -> usize {
        let open = self.open.load(Ordering::SeqCst);
        self.cuts.send_modify(|generation| *generation += 1);
        open
    }

    /// Cuts every open connection and refuses new ones until `accept`.
    pub fn refuse(&self) -> usize {
        self.refusing.send_replace(true);
        self.cut()
    }

    /// Accepts connections again after `refuse`.
    pub fn accept(&self) {
        self.refusing.send_replace(false);
    }
}

async fn accept_loop(
    first: TcpListener,
    addr: SocketAddr,
    upstream: SocketAddr,
    cuts: watch::Sender<u64>,
    mut refusing: watch::Receiver<bool>,
    open: Arc<AtomicUsize>,
) {
    let mut listener = Some(first);
    loop {
        let current = match listener.take() {
            Some(l) => l,
            None => rebind(addr).await,
        };
        loop {
            tokio::select! {
                accepted = current.accept() => {
                    let Ok((client, _)) = accepted else { continue };
                    tokio::spawn(pipe(client, upstream, cuts.subscribe(), open.clone()));
                }
                closed = refusing.wait_for(|r| *r) => {
                    if closed.is_err() {
                        return;
                    }
                    break;
                }
            }
        }
        // Closing the listening socket makes new connections fail with "connection refused".
        drop(current);
        if refusing.wait_for(|r| !*r).await.is_err() {
            return;
        }
    }
}

async fn rebind(addr: SocketAddr) -> TcpListener {
    for _ in 0..100 {
        let socket = TcpSocket::new_v4().expect("proxy socket");
        socket.set_reuseaddr(true).expect("SO_REUSEADDR");
        if socket.bind(addr).is_ok()
            && let Ok(listener) = socket.listen(1024)
        {
            return listener;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the proxy could not listen on {addr} again");
}

async fn pipe(
    mut client: TcpStream,
    upstream: SocketAddr,
    mut cuts: watch::Receiver<u64>,
    open: Arc<AtomicUsize>,
) {
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    // Closing with SO_LINGER 0 sends a reset: the peers see a dropped connection, not a goodbye.
    let _ = client.set_zero_linger();
    let _ = server.set_zero_linger();
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    open.fetch_add(1, Ordering::SeqCst);
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
        _ = cuts.changed() => {}
    }
    open.fetch_sub(1, Ordering::SeqCst);
}
