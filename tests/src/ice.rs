//! Two librice agents in one process, signalled directly: set-up, candidate exchange
//! (all at once or trickled), connection and data checks shared by the facade tests.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use librice::{Agent, Component, IceCandidate, Runtime, SelectedPair, Stream};

use crate::runtimes::{sleep, timeout};

/// One agent with its streams and components.
#[derive(Debug, Clone)]
pub struct Peer {
    /// The agent.
    pub agent: Agent,
    /// Its streams.
    pub streams: Vec<Stream>,
    /// The components of each stream.
    pub components: Vec<Vec<Component>>,
}

impl Peer {
    /// An agent gathering only on `ip`, with `layout[i]` components in stream `i`.
    pub fn new(
        runtime: Arc<dyn Runtime>,
        controlling: bool,
        ip: IpAddr,
        layout: &[u16],
        stun: Option<SocketAddr>,
    ) -> Peer {
        let mut builder = Agent::builder()
            .runtime(runtime)
            .controlling(controlling)
            .address(ip);
        if let Some(stun) = stun {
            builder = builder.stun_server(stun);
        }
        Peer::from_builder(builder, layout)
    }

    /// An agent from a configured `builder`, with `layout[i]` components in stream `i`.
    pub fn from_builder(builder: librice::AgentBuilder, layout: &[u16]) -> Peer {
        let agent = builder.build().expect("agent starts");
        let mut streams = Vec::new();
        let mut components = Vec::new();
        for &n in layout {
            let s = agent.add_stream();
            components.push(
                (0..n)
                    .map(|_| s.add_component().expect("component"))
                    .collect(),
            );
            streams.push(s);
        }
        Peer {
            agent,
            streams,
            components,
        }
    }

    /// Every component, in order.
    pub fn all_components(&self) -> Vec<Component> {
        self.components.iter().flatten().cloned().collect()
    }
}

/// Gathers every stream of `p` to completion.
pub async fn gather_all(p: &Peer) -> Vec<Vec<IceCandidate>> {
    let mut all = Vec::new();
    for s in &p.streams {
        let g = s.gather_candidates().expect("gathering starts");
        all.push(g.collect::<Vec<_>>().await);
    }
    all
}

/// Gives `to` the credentials, `candidates` and end-of-candidates of `from`.
pub fn give(from: &Peer, to: &Peer, candidates: &[Vec<IceCandidate>]) {
    for (i, s) in to.streams.iter().enumerate() {
        s.set_remote_credentials(from.streams[i].local_credentials());
        for c in &candidates[i] {
            s.add_remote_candidate(c.clone())
                .expect("candidate accepted");
        }
        s.end_of_remote_candidates();
    }
}

/// Gathers both sides completely, then exchanges everything at once.
pub async fn exchange(a: &Peer, b: &Peer) {
    let ca = gather_all(a).await;
    let cb = gather_all(b).await;
    give(a, b, &ca);
    give(b, a, &cb);
}

/// Trickles: credentials first, then each candidate as gathering yields it, with `gap`
/// between them, then end-of-candidates; both directions at once.
pub async fn trickle(runtime: &dyn Runtime, a: &Peer, b: &Peer, gap: Duration) {
    for (from, to) in [(a, b), (b, a)] {
        for (i, s) in to.streams.iter().enumerate() {
            s.set_remote_credentials(from.streams[i].local_credentials());
        }
    }
    let mut gathers = Vec::new();
    for (from, to) in [(a, b), (b, a)] {
        for (i, s) in from.streams.iter().enumerate() {
            gathers.push((
                s.gather_candidates().expect("gathering"),
                to.streams[i].clone(),
            ));
        }
    }
    for (mut g, remote) in gathers {
        while let Some(c) = g.next().await {
            sleep(runtime, gap).await;
            remote.add_remote_candidate(c).expect("candidate accepted");
        }
        remote.end_of_remote_candidates();
    }
}

/// Waits (at most `limit`) for every component of `p` to connect; returns the pairs.
pub async fn connected(runtime: &dyn Runtime, p: &Peer, limit: Duration) -> Vec<SelectedPair> {
    let mut pairs = Vec::new();
    for c in p.all_components() {
        let pair = timeout(runtime, limit, c.connected())
            .await
            .unwrap_or_else(|| panic!("component {} did not connect in {limit:?}", c.id()))
            .unwrap_or_else(|e| panic!("component {} failed: {e}", c.id()));
        pairs.push(pair);
    }
    pairs
}

/// Sends `count` numbered datagrams on `from` (pausing 1 ms every `burst`) while `to`
/// receives them; returns how many arrived within `limit`.
pub async fn pump(
    runtime: &dyn Runtime,
    from: &Component,
    to: &Component,
    count: usize,
    burst: usize,
    limit: Duration,
) -> usize {
    let mut rx = to.recv();
    let sender = async {
        for i in 0..count {
            let payload = format!("datagram {i} of {count}");
            from.send(payload.as_bytes()).await.expect("send");
            if (i + 1) % burst == 0 {
                sleep(runtime, Duration::from_millis(1)).await;
            }
        }
    };
    let receiver = async {
        let mut got = 0usize;
        while got < count {
            match rx.next().await {
                Some(d) => {
                    let text = String::from_utf8_lossy(&d);
                    assert!(text.starts_with("datagram "), "unexpected data {text:?}");
                    got += 1;
                }
                None => break,
            }
        }
        got
    };
    let both = futures::future::join(sender, timeout(runtime, limit, receiver));
    both.await.1.unwrap_or(0)
}
