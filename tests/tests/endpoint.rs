//! Server mode through the facade, on both runtimes over loopback: one [`Endpoint`] on one
//! UDP port serves a lite agent per client; full clients (each an agent of its own, on its
//! own sockets) connect to it at once, and each client's data reaches only its own server
//! agent, which echoes it back. Meanwhile a stranger floods the port with data from an
//! unknown source and checks for unknown ufrags: dropped and counted, nothing else
//! changes. A server agent that closes is forgotten by the endpoint.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use librice::{Agent, Endpoint, Runtime};
use librice_tests::ice::{Peer, connected, gather_all, give};
use librice_tests::runtimes::{on_async_std, on_tokio, sleep, timeout};

const CLIENTS: usize = 20;
const DATAGRAMS: usize = 20;
const LIMIT: Duration = Duration::from_secs(15);

fn v4() -> IpAddr {
    IpAddr::from([127, 0, 0, 1])
}

/// A check (Binding request with USERNAME) for a ufrag no agent has, written by hand.
fn stray_check(n: u8) -> Vec<u8> {
    let username = b"nobody:stranger";
    let mut m = Vec::new();
    m.extend_from_slice(&0x0001u16.to_be_bytes());
    m.extend_from_slice(&(4 + 16u16).to_be_bytes());
    m.extend_from_slice(&0x2112_A442u32.to_be_bytes());
    m.extend_from_slice(&[n; 12]);
    m.extend_from_slice(&0x0006u16.to_be_bytes());
    m.extend_from_slice(&(username.len() as u16).to_be_bytes());
    m.extend_from_slice(username);
    m.push(0); // padding to 16 bytes
    m
}

/// Sends `count` numbered datagrams tagged with `tag` from `from` to `to`, and checks that
/// `to` receives exactly those, in a bounded time; then `to` echoes each and `from` checks
/// the echoes. Returns (received by `to`, echoes received by `from`).
async fn exchange_tagged(
    rt: &dyn Runtime,
    from: &librice::Component,
    to: &librice::Component,
    tag: &str,
) -> (usize, usize) {
    let mut rx = to.recv();
    let mut echoes = from.recv();
    let send = async {
        for k in 0..DATAGRAMS {
            from.send(format!("{tag} #{k}").as_bytes())
                .await
                .expect("send");
            sleep(rt, Duration::from_millis(2)).await;
        }
    };
    let serve = async {
        let mut got = 0;
        while got < DATAGRAMS {
            let Some(d) = rx.next().await else { break };
            let text = String::from_utf8(d.clone()).expect("text");
            assert!(
                text.starts_with(&format!("{tag} #")),
                "{tag}'s server agent got someone else's data: {text:?}"
            );
            to.send(&d).await.expect("echo");
            got += 1;
        }
        got
    };
    let collect = async {
        let mut got = 0;
        while got < DATAGRAMS {
            let Some(d) = echoes.next().await else { break };
            let text = String::from_utf8(d).expect("text");
            assert!(text.starts_with(&format!("{tag} #")), "{tag} got {text:?}");
            got += 1;
        }
        got
    };
    let (_, served, echoed) =
        futures::join!(send, timeout(rt, LIMIT, serve), timeout(rt, LIMIT, collect));
    (served.unwrap_or(0), echoed.unwrap_or(0))
}

async fn many_clients_one_port(rt: Arc<dyn Runtime>) {
    let endpoint = Endpoint::builder()
        .runtime(Arc::clone(&rt))
        .bind(SocketAddr::new(v4(), 0))
        .build()
        .expect("the endpoint binds");
    let shared = endpoint.local_addrs()[0];

    let mut pairs = Vec::new();
    for _ in 0..CLIENTS {
        let server = Peer::from_builder(Agent::builder().endpoint(&endpoint).lite(true), &[1]);
        let client = Peer::new(Arc::clone(&rt), true, v4(), &[1], None);
        client.streams[0].set_remote_lite(true);
        pairs.push((client, server));
    }
    assert_eq!(endpoint.agent_count(), CLIENTS);

    // A stranger floods the port while the clients connect.
    let stranger = UdpSocket::bind((v4(), 0)).expect("a socket");
    for n in 0..200u8 {
        stranger.send_to(b"not for anyone", shared).expect("send");
        stranger.send_to(&stray_check(n), shared).expect("send");
    }

    for (client, server) in &pairs {
        let cs = gather_all(server).await;
        assert!(
            cs[0].iter().all(|c| c
                .to_string()
                .contains(&shared.to_string().replace(':', " "))),
            "every server agent's candidate is the endpoint's address: {cs:?}"
        );
        let cc = gather_all(client).await;
        give(client, server, &cc);
        give(server, client, &cs);
    }
    for (i, (client, server)) in pairs.iter().enumerate() {
        let pc = connected(rt.as_ref(), client, LIMIT).await;
        let ps = connected(rt.as_ref(), server, LIMIT).await;
        assert_eq!(
            ps[0].local_base, shared,
            "server agent {i} is on the shared port"
        );
        assert_eq!(pc[0].remote.address(), shared);
        assert_eq!(ps[0].remote.address(), pc[0].local_base);
    }

    // Every client at once; each server agent must see only its own client's data.
    let runs = pairs.iter().enumerate().map(|(i, (client, server))| {
        let rt = Arc::clone(&rt);
        async move {
            exchange_tagged(
                rt.as_ref(),
                &client.components[0][0],
                &server.components[0][0],
                &format!("client {i}"),
            )
            .await
        }
    });
    let results = futures::future::join_all(runs).await;
    for (i, (served, echoed)) in results.iter().enumerate() {
        assert_eq!(
            (*served, *echoed),
            (DATAGRAMS, DATAGRAMS),
            "client {i}: {served} datagrams reached its agent, {echoed} echoes came back"
        );
    }
    let stats = endpoint.stats();
    println!(
        "{CLIENTS} clients, one port: {DATAGRAMS} datagrams each way each; endpoint {stats:?}"
    );
    assert!(stats.dropped_unknown_source >= 200, "{stats:?}");
    assert!(stats.dropped_unknown_ufrag >= 200, "{stats:?}");
    assert!(stats.routed_by_ufrag >= CLIENTS as u64, "{stats:?}");
    assert!(
        stats.routed_by_tuple >= (CLIENTS * DATAGRAMS) as u64,
        "{stats:?}"
    );

    // A client that restarts ICE (RFC 8445 §9) keeps its server agent: the server agent
    // restarts too, with a new ufrag the endpoint learns, and data flows on.
    {
        let (client, server) = &pairs[0];
        let (cs, ss) = (&client.streams[0], &server.streams[0]);
        let old_ufrag = ss.local_credentials().ufrag().to_owned();
        let by_ufrag = endpoint.stats().routed_by_ufrag;
        let client_round: Vec<_> = cs.restart().expect("restart").collect().await;
        ss.set_remote_credentials(cs.local_credentials());
        assert!(ss.restarting(), "the server agent restarts with its client");
        let server_round: Vec<_> = ss.gather_candidates().expect("gather").collect().await;
        let new_ufrag = ss.local_credentials().ufrag().to_owned();
        assert_ne!(old_ufrag, new_ufrag);
        cs.set_remote_credentials(ss.local_credentials());
        for c in server_round {
            cs.add_remote_candidate(c).expect("candidate");
        }
        cs.end_of_remote_candidates();
        for c in client_round {
            ss.add_remote_candidate(c).expect("candidate");
        }
        ss.end_of_remote_candidates();
        let done = timeout(rt.as_ref(), LIMIT, async {
            while cs.restarting() || ss.restarting() {
                sleep(rt.as_ref(), Duration::from_millis(10)).await;
            }
        })
        .await;
        assert!(done.is_some(), "the restart completes");
        // The restart's checks come on a 5-tuple the endpoint knows: only the new ufrag
        // being registered routes them by ufrag (ufrag first, RFC 8445 §7.3).
        assert!(
            endpoint.stats().routed_by_ufrag > by_ufrag,
            "the restart's checks reached the agent by its new ufrag"
        );
        let (served, echoed) = exchange_tagged(
            rt.as_ref(),
            &client.components[0][0],
            &server.components[0][0],
            "client 0 after its restart",
        )
        .await;
        assert_eq!((served, echoed), (DATAGRAMS, DATAGRAMS));
        assert_eq!(endpoint.agent_count(), CLIENTS, "the client kept its agent");
    }

    // A server agent that closes is forgotten: its client's data is then dropped.
    let (client, server) = pairs.pop().expect("a pair");
    server.agent.close();
    drop(server);
    let forgotten = timeout(rt.as_ref(), Duration::from_secs(5), async {
        while endpoint.agent_count() != CLIENTS - 1 {
            sleep(rt.as_ref(), Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(forgotten.is_some(), "the closed agent is forgotten");
    let before = endpoint.stats().dropped_unknown_source;
    client.components[0][0]
        .send(b"anyone there?")
        .await
        .expect("send");
    let dropped = timeout(rt.as_ref(), Duration::from_secs(5), async {
        while endpoint.stats().dropped_unknown_source == before {
            sleep(rt.as_ref(), Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(
        dropped.is_some(),
        "data for a removed agent is dropped and counted"
    );

    for (client, server) in &pairs {
        client.agent.close();
        server.agent.close();
    }
    endpoint.close();
}

#[test]
fn many_clients_on_one_port_tokio() {
    on_tokio(many_clients_one_port);
}

#[test]
fn many_clients_on_one_port_async_std() {
    on_async_std(many_clients_one_port);
}

/// ICE-TCP through the endpoint: its one listener serves every agent; clients with active
/// TCP candidates only connect, each connection reaching the agent its first check names.
async fn tcp_clients_one_listener(rt: Arc<dyn Runtime>) {
    const N: usize = 5;
    let endpoint = Endpoint::builder()
        .runtime(Arc::clone(&rt))
        .bind(SocketAddr::new(v4(), 0))
        .ice_tcp(true)
        .build()
        .expect("the endpoint binds");
    let listener = endpoint.tcp_addrs()[0];
    let mut pairs = Vec::new();
    for _ in 0..N {
        let server = Peer::from_builder(
            Agent::builder()
                .endpoint(&endpoint)
                .lite(true)
                .transports(librice::Transports::Tcp),
            &[1],
        );
        let client = Peer::from_builder(
            Agent::builder()
                .runtime(Arc::clone(&rt))
                .controlling(true)
                .address(v4())
                .transports(librice::Transports::Tcp),
            &[1],
        );
        client.streams[0].set_remote_lite(true);
        pairs.push((client, server));
    }
    // A stranger opens 1,000 connections: a third silent, a third with garbage, a third
    // with half a frame. They are closed (the silent ones, beyond the 256 that may wait,
    // oldest first); the clients connect all the same.
    let mut strangers = Vec::new();
    for k in 0..1000 {
        use std::io::Write;
        let mut s = std::net::TcpStream::connect(listener).expect("connects");
        let _ = match k % 3 {
            0 => Ok(()),
            1 => s.write_all(b"\x00\x05hello"),
            _ => s.write_all(b"\x00\x40\x00\x01"),
        };
        strangers.push(s);
    }
    for (client, server) in &pairs {
        let cs = gather_all(server).await;
        assert!(
            cs[0]
                .iter()
                .any(|c| c.to_string().contains("tcptype passive")
                    && c.to_string().contains(&listener.port().to_string())),
            "the server agent's passive candidate is the endpoint's listener: {cs:?}"
        );
        let cc = gather_all(client).await;
        give(client, server, &cc);
        give(server, client, &cs);
    }
    let runs = pairs.iter().enumerate().map(|(i, (client, server))| {
        let rt = Arc::clone(&rt);
        async move {
            let pc = connected(rt.as_ref(), client, LIMIT).await;
            connected(rt.as_ref(), server, LIMIT).await;
            assert_eq!(
                pc[0].remote.address(),
                listener,
                "client {i} is on the listener"
            );
            exchange_tagged(
                rt.as_ref(),
                &client.components[0][0],
                &server.components[0][0],
                &format!("tcp client {i}"),
            )
            .await
        }
    });
    for (i, (served, echoed)) in futures::future::join_all(runs).await.iter().enumerate() {
        assert_eq!((*served, *echoed), (DATAGRAMS, DATAGRAMS), "tcp client {i}");
    }
    drop(strangers);
    for (client, server) in &pairs {
        client.agent.close();
        server.agent.close();
    }
    endpoint.close();
}

#[test]
fn tcp_clients_on_one_listener_tokio() {
    on_tokio(tcp_clients_one_listener);
}

#[test]
fn tcp_clients_on_one_listener_async_std() {
    on_async_std(tcp_clients_one_listener);
}

#[test]
fn endpoint_refuses_what_it_cannot_serve() {
    on_tokio(|rt: Arc<dyn Runtime>| async move {
        let unspecified = Endpoint::builder()
            .runtime(Arc::clone(&rt))
            .bind("0.0.0.0:0".parse().expect("an address"))
            .build();
        assert!(
            matches!(
                unspecified,
                Err(librice::Error::Endpoint(
                    librice::endpoint::EndpointError::UnspecifiedAddress(_)
                ))
            ),
            "{unspecified:?}"
        );
        // More addresses than the router keeps 5-tuples for (127.0.0.1 to 127.0.0.33, with
        // their listeners: 66 local addresses): refused before anything is bound.
        let mut many = Endpoint::builder().runtime(Arc::clone(&rt)).ice_tcp(true);
        for last in 1..=33u8 {
            many = many.bind(SocketAddr::from(([127, 0, 0, last], 0)));
        }
        let many = many.build();
        assert!(
            matches!(
                many,
                Err(librice::Error::Endpoint(
                    librice::endpoint::EndpointError::TooManyAddresses { asked: 33, max: 32 }
                ))
            ),
            "{many:?}"
        );
        let none = Endpoint::builder().runtime(Arc::clone(&rt)).build();
        assert!(matches!(
            none,
            Err(librice::Error::Endpoint(
                librice::endpoint::EndpointError::NoAddress
            ))
        ));
        let endpoint = Endpoint::builder()
            .runtime(Arc::clone(&rt))
            .bind(SocketAddr::new(v4(), 0))
            .build()
            .expect("binds");
        let tcp = Agent::builder()
            .endpoint(&endpoint)
            .transports(librice::Transports::Both)
            .build();
        assert!(matches!(
            tcp,
            Err(librice::Error::Endpoint(
                librice::endpoint::EndpointError::TcpUnsupported
            ))
        ));
        endpoint.close();
        let late = Agent::builder().endpoint(&endpoint).build();
        assert!(matches!(late, Err(librice::Error::Closed)));
    });
}
