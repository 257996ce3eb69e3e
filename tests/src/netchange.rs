//! A runtime around another one whose interface addresses the test sets: the facade's
//! network watcher sees addresses come and go as on a machine whose network changes, while
//! the sockets are real (loopback).

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use futures::channel::mpsc::{UnboundedSender, unbounded};
use librice::interfaces::InterfaceAddress;
use librice::runtime::InterfaceChanges;
use librice::{BoxFuture, Runtime};

/// The runtime: everything from `inner`, except the interface addresses.
#[derive(Debug)]
pub struct ChangingInterfaces {
    inner: Arc<dyn Runtime>,
    addresses: Mutex<Vec<InterfaceAddress>>,
    watchers: Mutex<Vec<UnboundedSender<()>>>,
}

impl ChangingInterfaces {
    /// `inner` with the interface addresses `ips` (on an interface named `test0`).
    pub fn new(inner: Arc<dyn Runtime>, ips: &[IpAddr]) -> Arc<Self> {
        Arc::new(Self {
            inner,
            addresses: Mutex::new(listing(ips)),
            watchers: Mutex::new(Vec::new()),
        })
    }

    /// The interface addresses are `ips` from now on; the watchers are told.
    pub fn set(&self, ips: &[IpAddr]) {
        *self.addresses.lock().expect("lock") = listing(ips);
        self.watchers
            .lock()
            .expect("lock")
            .retain(|w| w.unbounded_send(()).is_ok());
    }
}

fn listing(ips: &[IpAddr]) -> Vec<InterfaceAddress> {
    ips.iter()
        .map(|&ip| InterfaceAddress {
            interface: "test0".into(),
            index: Some(1),
            ip,
        })
        .collect()
}

impl Runtime for ChangingInterfaces {
    fn spawn(&self, future: BoxFuture<()>) {
        self.inner.spawn(future)
    }

    fn now(&self) -> std::time::Instant {
        self.inner.now()
    }

    fn new_timer(
        &self,
        deadline: std::time::Instant,
    ) -> std::pin::Pin<Box<dyn librice::AsyncTimer>> {
        self.inner.new_timer(deadline)
    }

    fn wrap_udp_socket(
        &self,
        socket: std::net::UdpSocket,
    ) -> std::io::Result<Arc<dyn librice::AsyncUdpSocket>> {
        self.inner.wrap_udp_socket(socket)
    }

    fn tcp_connect(
        &self,
        local: std::net::SocketAddr,
        remote: std::net::SocketAddr,
    ) -> BoxFuture<std::io::Result<Box<dyn librice::AsyncTcpStream>>> {
        self.inner.tcp_connect(local, remote)
    }

    fn wrap_tcp_listener(
        &self,
        listener: std::net::TcpListener,
    ) -> std::io::Result<Box<dyn librice::runtime::AsyncTcpListener>> {
        self.inner.wrap_tcp_listener(listener)
    }

    fn interface_addresses(&self) -> std::io::Result<Vec<InterfaceAddress>> {
        Ok(self.addresses.lock().expect("lock").clone())
    }

    fn interface_changes(&self) -> Option<InterfaceChanges> {
        let (tx, rx) = unbounded();
        self.watchers.lock().expect("lock").push(tx);
        Some(Box::pin(rx))
    }
}
