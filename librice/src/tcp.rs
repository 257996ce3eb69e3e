//! TCP connections the agent asks for (STUN and TURN servers over TCP, and TURN over TLS):
//! one task per connection that connects (and does the TLS handshake), then reads frames
//! (STUN and ChannelData, RFC 8656 §12.5) into the agent and writes what the agent sends.

use std::net::SocketAddr;
use std::sync::Arc;

use futures::channel::mpsc;
use futures::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use futures::{FutureExt, StreamExt};
use librice_proto::stun::{FramingMode, StreamFramer};
use librice_proto::{Transmit, TransportType};

use crate::shared::Shared;

/// The largest read.
const READ_BUF: usize = 16 * 1024;

/// Connects from `local` to `remote` for the agent's request `id`, then carries the
/// connection until either end closes it or the agent does.
pub(crate) async fn run(
    shared: Arc<Shared>,
    id: u64,
    local: SocketAddr,
    remote: SocketAddr,
    tls: bool,
) {
    if tls && cfg!(not(feature = "tls")) {
        // Only a server given in a whole `AgentConfig` gets here: the builder refuses the
        // others (`Error::TlsUnavailable`).
        tracing::warn!(%remote, "TURN server over TLS skipped: librice was built without its `tls` feature");
        failed(&shared, id);
        return;
    }
    let runtime = Arc::clone(&shared.runtime);
    let connected = runtime.tcp_connect(local, remote).await;
    let (stream, local) = match connected.and_then(|s| {
        let addr = s.local_addr()?;
        Ok((s, addr))
    }) {
        Ok(ok) => ok,
        Err(e) => {
            tracing::debug!(%remote, error = %e, "TCP connection failed");
            failed(&shared, id);
            return;
        }
    };
    #[cfg(feature = "tls")]
    if tls {
        over_tls(shared, id, local, remote, stream).await;
        return;
    }
    carry(shared, id, local, remote, stream).await;
}

/// RFC 8656 §3.1: TLS over TCP to the server, named by its IP address.
#[cfg(feature = "tls")]
async fn over_tls(
    shared: Arc<Shared>,
    id: u64,
    local: SocketAddr,
    remote: SocketAddr,
    stream: Box<dyn crate::runtime::AsyncTcpStream>,
) {
    use futures_rustls::TlsConnector;
    use futures_rustls::rustls::pki_types::ServerName;

    let config = match crate::tls::client_config(shared.tls_insecure) {
        Ok(config) => config,
        Err(e) => {
            tracing::warn!(%remote, error = %e, "no TLS configuration for the TURN server");
            failed(&shared, id);
            return;
        }
    };
    let name = ServerName::IpAddress(remote.ip().into());
    match TlsConnector::from(config).connect(name, stream).await {
        Ok(tls_stream) => carry(shared, id, local, remote, tls_stream).await,
        Err(e) => {
            tracing::info!(%remote, error = %e, "TLS handshake with the TURN server failed");
            failed(&shared, id);
        }
    }
}

fn failed(shared: &Shared, id: u64) {
    let mut st = shared.lock();
    let now = shared.runtime.now();
    let _ = st.proto.handle_tcp_connect_failed(now, id);
    st.wake_driver();
}

/// Carries an open connection (plain or TLS) until either end closes it.
async fn carry<S: AsyncRead + AsyncWrite + Unpin>(
    shared: Arc<Shared>,
    id: u64,
    local: SocketAddr,
    remote: SocketAddr,
    stream: S,
) {
    let runtime = Arc::clone(&shared.runtime);
    let (tx, mut rx) = mpsc::unbounded::<Vec<u8>>();
    {
        let mut st = shared.lock();
        if st.closed {
            return;
        }
        st.registry.add_tcp(local, remote, tx);
        let now = runtime.now();
        let _ = st.proto.handle_tcp_connected(now, id, local);
        st.wake_driver();
    }
    let (mut reader, mut writer) = stream.split();
    let writing = async {
        while let Some(data) = rx.next().await {
            if let Err(e) = writer.write_all(&data).await {
                tracing::debug!(%remote, error = %e, "TCP write failed");
                break;
            }
        }
        let _ = writer.close().await;
    }
    .fuse();
    let reading = async {
        let mut framer = StreamFramer::new(FramingMode::StunAndChannelData);
        let mut buf = vec![0u8; READ_BUF];
        loop {
            let n = match reader.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            framer.push(&buf[..n]);
            let mut st = shared.lock();
            if st.closed {
                break;
            }
            let now = runtime.now();
            while let Some(frame) = framer.next_frame() {
                let Ok(frame) = frame else {
                    tracing::debug!(%remote, "TCP stream out of sync: closed");
                    return;
                };
                let t = Transmit {
                    transport: TransportType::Tcp,
                    from: remote,
                    to: local,
                    data: frame.bytes,
                };
                st.ingest_copy(now, t);
            }
            // The driver flushes what the core has to send and tell.
            st.wake_driver();
        }
    }
    .fuse();
    futures::pin_mut!(writing, reading);
    futures::select! {
        _ = writing => {},
        _ = reading => {},
    }
    shared.lock().registry.remove_tcp(local, remote);
}
