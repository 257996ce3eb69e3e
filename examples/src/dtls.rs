//! DTLS over a connected librice [`Component`]: the handshake that WebRTC runs once ICE
//! has selected a pair (RFC 8842 for the SDP side, RFC 5763 for the fingerprints), here with
//! [dimpl](https://docs.rs/dimpl), a sans-IO DTLS 1.2/1.3 engine made for WebRTC.
//!
//! [`DtlsSession::handshake`] feeds the component's received datagrams into the DTLS state
//! machine and sends what it produces through the component's datagram handle (a
//! [`librice::DatagramSender`] of its own, from [`Component::datagram`]), re-arming one timer
//! (through [`librice::runtime::sleep_until`]) for its retransmissions. Only datagrams whose
//! first byte is 20 to 63 are DTLS records (RFC 7983 §7); everything else on the component
//! (STUN never gets here, but RTP or application bytes might) is ignored. The peer's leaf
//! certificate must hash (SHA-256) to the fingerprint signalled for it, or the handshake
//! stops with [`DtlsError::FingerprintMismatch`] before this side sends anything more. The
//! handshake is bounded by [`DtlsConfig::handshake_timeout`].
//!
//! Once connected, [`DtlsSession::send`] and [`DtlsSession::recv`] carry application data
//! encrypted, and keep answering the peer's retransmissions. One task owns a session
//! (`&mut self`): it sends and receives in turn.
//!
//! Left out: DTLS-SRTP key use (the profile is reported, the keys are not exported),
//! renegotiation and resumption (WebRTC restarts with a full handshake), and sending a fatal
//! alert when the fingerprint does not match (dimpl has no call for that; the session just
//! stops).
//!
//! ```no_run
//! # async fn demo(runtime: std::sync::Arc<dyn librice::Runtime>, component: librice::Component,
//! #     peer: &str) -> Result<(), librice_examples::dtls::DtlsError> {
//! use librice_examples::dtls::{Certificate, DtlsConfig, DtlsRole, DtlsSession, Fingerprint};
//!
//! let certificate = Certificate::generate()?;
//! // Signal `certificate.fingerprint().sdp()` to the peer, and read its own:
//! let peer = Fingerprint::parse(peer)?;
//! component.connected().await.map_err(librice_examples::dtls::DtlsError::Transport)?;
//! let config = DtlsConfig::new(DtlsRole::Client, certificate, peer);
//! let mut session = DtlsSession::connect(runtime, &component, config).await?;
//! println!("{}", session.info());
//! session.send(b"hello").await?;
//! let reply = session.recv().await?;
//! # Ok(()) }
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{FutureExt, Stream, StreamExt};
use librice::{Component, Runtime};

/// How long [`DtlsSession::handshake`] waits by default for the handshake to complete.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest datagram the session sends; dimpl fragments its flights to fit.
const MTU: usize = 1200;

/// Which side of the DTLS handshake this endpoint plays (RFC 8842 §5: `a=setup:active` is
/// the client, `a=setup:passive` the server).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtlsRole {
    /// Sends the ClientHello (`a=setup:active`).
    Client,
    /// Waits for the ClientHello (`a=setup:passive`).
    Server,
}

impl DtlsRole {
    /// The SDP `a=setup` value of this role: `active` or `passive`.
    pub fn setup(self) -> &'static str {
        match self {
            Self::Client => "active",
            Self::Server => "passive",
        }
    }

    /// The role that an `a=setup` value of the *peer* leaves to this side (`active` makes
    /// this side the server, `passive` the client); `None` for `actpass` or anything else,
    /// which leaves the choice to this side (RFC 8842 §5.3).
    pub fn opposite_of_setup(peer_setup: &str) -> Option<DtlsRole> {
        match peer_setup {
            "active" => Some(Self::Server),
            "passive" => Some(Self::Client),
            _ => None,
        }
    }
}

impl fmt::Display for DtlsRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Client => "client",
            Self::Server => "server",
        })
    }
}

/// A SHA-256 certificate fingerprint (RFC 8122 §5), as SDP signals it in `a=fingerprint`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The fingerprint of a DER-encoded certificate.
    pub fn of_der(der: &[u8]) -> Fingerprint {
        let digest = dimpl::certificate::calculate_fingerprint(der);
        let mut bytes = [0u8; 32];
        // SHA-256 is 32 bytes; a shorter answer would leave zeros, never panic.
        let n = digest.len().min(32);
        bytes[..n].copy_from_slice(&digest[..n]);
        Fingerprint(bytes)
    }

    /// Parses `sha-256 AB:CD:...` (the `a=fingerprint` value) or the bare `AB:CD:...`
    /// (32 colon-separated hex bytes, either case).
    ///
    /// # Errors
    ///
    /// [`DtlsError::BadFingerprint`] for another hash function or a malformed value.
    pub fn parse(text: &str) -> Result<Fingerprint, DtlsError> {
        let bad = || DtlsError::BadFingerprint(text.chars().take(160).collect());
        let text = text.trim();
        let hex = match text.split_once(char::is_whitespace) {
            Some((hash, rest)) if hash.eq_ignore_ascii_case("sha-256") => rest.trim(),
            Some(_) => return Err(bad()),
            None => text,
        };
        let mut bytes = [0u8; 32];
        let mut parts = hex.split(':');
        for b in bytes.iter_mut() {
            let part = parts.next().ok_or_else(bad)?;
            if part.len() != 2 {
                return Err(bad());
            }
            *b = u8::from_str_radix(part, 16).map_err(|_| bad())?;
        }
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(Fingerprint(bytes))
    }

    /// The `a=fingerprint` value: `sha-256 AB:CD:...`.
    pub fn sdp(&self) -> String {
        format!("sha-256 {self}")
    }

    /// The 32 bytes.
    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for Fingerprint {
    /// Upper-case hex bytes separated by colons (`AB:CD:...`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// A self-signed ECDSA P-256 certificate with its private key, as WebRTC endpoints use.
#[derive(Clone)]
pub struct Certificate(dimpl::DtlsCertificate);

impl Certificate {
    /// Generates a fresh one (random key and serial number, valid for a year).
    ///
    /// # Errors
    ///
    /// [`DtlsError::Certificate`] if the key or certificate cannot be made.
    pub fn generate() -> Result<Certificate, DtlsError> {
        dimpl::certificate::generate_self_signed_certificate()
            .map(Certificate)
            .map_err(|e| DtlsError::Certificate(e.to_string()))
    }

    /// Its SHA-256 fingerprint, to signal to the peer.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of_der(&self.0.certificate)
    }

    /// The certificate, DER-encoded.
    pub fn der(&self) -> &[u8] {
        &self.0.certificate
    }
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key.
        write!(f, "Certificate({})", self.fingerprint())
    }
}

/// What [`DtlsSession::handshake`] needs.
#[derive(Debug, Clone)]
pub struct DtlsConfig {
    /// Client or server.
    pub role: DtlsRole,
    /// This side's certificate.
    pub certificate: Certificate,
    /// The fingerprint the peer signalled for its certificate.
    pub peer_fingerprint: Fingerprint,
    /// The bound on the whole handshake ([`DEFAULT_HANDSHAKE_TIMEOUT`] by default).
    pub handshake_timeout: Duration,
}

impl DtlsConfig {
    /// A configuration with the default handshake timeout.
    pub fn new(role: DtlsRole, certificate: Certificate, peer_fingerprint: Fingerprint) -> Self {
        DtlsConfig {
            role,
            certificate,
            peer_fingerprint,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        }
    }

    /// Sets the bound on the whole handshake.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }
}

/// A TLS cipher suite by its IANA number.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CipherSuite(pub u16);

impl CipherSuite {
    /// Its IANA name, or `"unknown"`.
    pub fn name(self) -> &'static str {
        match self.0 {
            0xC02B => "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
            0xC02C => "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
            0xCCA9 => "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
            0xC02F => "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            0xC030 => "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
            0xC0A8 => "TLS_PSK_WITH_AES_128_CCM_8",
            0x1301 => "TLS_AES_128_GCM_SHA256",
            0x1302 => "TLS_AES_256_GCM_SHA384",
            0x1303 => "TLS_CHACHA20_POLY1305_SHA256",
            _ => "unknown",
        }
    }
}

impl fmt::Display for CipherSuite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Debug for CipherSuite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (0x{:04X})", self.name(), self.0)
    }
}

/// What the handshake negotiated.
#[derive(Debug, Clone)]
pub struct HandshakeInfo {
    /// The role this side played.
    pub role: DtlsRole,
    /// `"DTLS 1.2"` or `"DTLS 1.3"`.
    pub version: &'static str,
    /// The cipher suite, read from the ServerHello that crossed the component (`None` if
    /// it could not be seen, which should not happen).
    pub cipher_suite: Option<CipherSuite>,
    /// The DTLS-SRTP protection profile (RFC 5764 `use_srtp`), if the peer negotiated one.
    pub srtp_profile: Option<&'static str>,
    /// The peer's (verified) certificate fingerprint.
    pub peer_fingerprint: Fingerprint,
    /// From the start of the handshake to its completion.
    pub elapsed: Duration,
}

impl fmt::Display for HandshakeInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} as {}, SRTP {}, in {:.1?}",
            self.version,
            self.cipher_suite
                .map_or("unknown cipher", CipherSuite::name),
            self.role,
            self.srtp_profile.unwrap_or("none"),
            self.elapsed
        )
    }
}

/// Why a DTLS session could not be made or went down.
#[derive(Debug)]
#[non_exhaustive]
pub enum DtlsError {
    /// A fingerprint text that is not `sha-256` followed by 32 hex bytes.
    BadFingerprint(String),
    /// A certificate could not be generated.
    Certificate(String),
    /// The peer's certificate does not hash to the fingerprint signalled for it: the
    /// handshake stopped (an attacker on the path, or the wrong signalling).
    FingerprintMismatch {
        /// The fingerprint signalled for the peer.
        expected: Fingerprint,
        /// The fingerprint of the certificate it presented.
        actual: Fingerprint,
    },
    /// The handshake completed without the peer presenting a certificate.
    NoPeerCertificate,
    /// The handshake did not complete within the bound.
    Timeout(Duration),
    /// The DTLS engine gave up (a fatal alert, a protocol violation, its retries ran out).
    Dtls(dimpl::Error),
    /// Sending on the component failed (not connected, ICE failed, the agent closed).
    Transport(librice::Error),
    /// The component's receive stream ended (the agent closed).
    Closed,
    /// The peer closed the session (`close_notify`).
    PeerClosed,
}

impl fmt::Display for DtlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadFingerprint(t) => write!(f, "not a sha-256 fingerprint: {t:?}"),
            Self::Certificate(e) => write!(f, "cannot generate a certificate: {e}"),
            Self::FingerprintMismatch { expected, actual } => write!(
                f,
                "the peer's certificate has fingerprint {actual}, but {expected} was signalled"
            ),
            Self::NoPeerCertificate => write!(f, "the peer presented no certificate"),
            Self::Timeout(d) => write!(f, "the DTLS handshake did not complete in {d:?}"),
            Self::Dtls(e) => write!(f, "DTLS failed: {e}"),
            Self::Transport(e) => write!(f, "cannot send on the component: {e}"),
            Self::Closed => write!(f, "the component closed"),
            Self::PeerClosed => write!(f, "the peer closed the DTLS session"),
        }
    }
}

impl std::error::Error for DtlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Dtls(e) => Some(e),
            Self::Transport(e) => Some(e),
            _ => None,
        }
    }
}

impl DtlsError {
    /// A short code for logs and JSON lines: `fingerprint_mismatch`, `timeout`, `dtls`, ...
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadFingerprint(_) => "bad_fingerprint",
            Self::Certificate(_) => "certificate",
            Self::FingerprintMismatch { .. } => "fingerprint_mismatch",
            Self::NoPeerCertificate => "no_peer_certificate",
            Self::Timeout(_) => "timeout",
            Self::Dtls(_) => "dtls",
            Self::Transport(_) => "transport",
            Self::Closed => "closed",
            Self::PeerClosed => "peer_closed",
        }
    }
}

/// Whether a datagram is a DTLS record by the demultiplexing rule of RFC 7983 §7 (first
/// byte 20 to 63; STUN is 0 to 3, ZRTP 16 to 19, TURN channels 64 to 79, RTP/RTCP 128 to
/// 191).
pub fn is_dtls(datagram: &[u8]) -> bool {
    matches!(datagram.first(), Some(20..=63))
}

/// A DTLS session over a component: made by [`DtlsSession::handshake`] (or
/// [`DtlsSession::connect`]), it carries encrypted application data with
/// [`send`](Self::send) and [`recv`](Self::recv). `S` is where its datagrams come from:
/// the component's datagram handle ([`DatagramPayloads`]), its [`librice::Recv`], or any
/// stream the caller feeds them into.
pub struct DtlsSession<S> {
    runtime: Arc<dyn Runtime>,
    component: librice::ComponentId,
    sender: librice::DatagramSender,
    input: S,
    dtls: Box<dimpl::Dtls>,
    out: Vec<u8>,
    next_timeout: Option<Instant>,
    received: VecDeque<Vec<u8>>,
    peer_closed: bool,
    info: HandshakeInfo,
}

impl<S> fmt::Debug for DtlsSession<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DtlsSession")
            .field("component", &self.component)
            .field("dtls", &self.dtls)
            .field("info", &self.info)
            .finish()
    }
}

/// The payloads of a component's [`librice::Datagram`] handle, as [`DtlsSession::connect`]
/// reads them.
pub type DatagramPayloads =
    futures::stream::Map<librice::Datagram, fn((Vec<u8>, librice::RecvMeta)) -> Vec<u8>>;

impl DtlsSession<DatagramPayloads> {
    /// [`handshake`](Self::handshake) over the component's own datagram handle
    /// ([`Component::datagram`]): it receives through the handle's stream and sends
    /// through its sender (so no other reader may take the component's datagrams
    /// meanwhile).
    ///
    /// # Errors
    ///
    /// As [`handshake`](Self::handshake).
    pub async fn connect(
        runtime: Arc<dyn Runtime>,
        component: &Component,
        config: DtlsConfig,
    ) -> Result<Self, DtlsError> {
        let payload: fn((Vec<u8>, librice::RecvMeta)) -> Vec<u8> = |(data, _)| data;
        let input = component.datagram().map(payload);
        Self::handshake(runtime, component.clone(), input, config).await
    }
}

impl<S: Stream<Item = Vec<u8>> + Unpin> DtlsSession<S> {
    /// Runs the DTLS handshake on `component` (which should be connected: sends fail
    /// before a pair is selected), with the datagrams it receives coming from `input`
    /// (non-DTLS ones are ignored). Returns once the handshake is complete and the peer's
    /// certificate matched `config.peer_fingerprint`.
    ///
    /// # Errors
    ///
    /// [`DtlsError::FingerprintMismatch`] as soon as the peer presents another
    /// certificate; [`DtlsError::Timeout`] after `config.handshake_timeout`;
    /// [`DtlsError::Dtls`] if the engine fails; [`DtlsError::Transport`] if a send fails;
    /// [`DtlsError::Closed`] if `input` ends.
    pub async fn handshake(
        runtime: Arc<dyn Runtime>,
        component: Component,
        input: S,
        config: DtlsConfig,
    ) -> Result<Self, DtlsError> {
        // Boxed: the engine and the loop's state would make every caller's future large.
        Box::pin(Self::run_handshake(runtime, component, input, config)).await
    }

    async fn run_handshake(
        runtime: Arc<dyn Runtime>,
        component: Component,
        input: S,
        config: DtlsConfig,
    ) -> Result<Self, DtlsError> {
        let start = runtime.now();
        let deadline = start + config.handshake_timeout;
        let dimpl_config = dimpl::Config::builder()
            .mtu(MTU)
            // The overall bound is ours; let the engine retry until then.
            .handshake_timeout(config.handshake_timeout + Duration::from_secs(1))
            .build()
            .map_err(DtlsError::Dtls)?;
        let mut dtls = Box::new(dimpl::Dtls::new_auto(
            Arc::new(dimpl_config),
            config.certificate.0,
            start,
        ));
        dtls.set_active(config.role == DtlsRole::Client);
        let mut session = DtlsSession {
            runtime,
            component: component.id(),
            sender: component.datagram().sender(),
            input,
            dtls,
            out: vec![0u8; 2 * MTU],
            next_timeout: None,
            received: VecDeque::new(),
            peer_closed: false,
            info: HandshakeInfo {
                role: config.role,
                version: "DTLS 1.2",
                cipher_suite: None,
                srtp_profile: None,
                peer_fingerprint: config.peer_fingerprint,
                elapsed: Duration::ZERO,
            },
        };
        // The first timeout starts the client's ClientHello.
        session
            .dtls
            .handle_timeout(start)
            .map_err(DtlsError::Dtls)?;
        let mut state = Handshake::default();
        loop {
            session.drain(Some(&mut state)).await?;
            if let Some(err) = state.failure.take() {
                return Err(err);
            }
            if state.connected {
                if !state.verified {
                    return Err(DtlsError::NoPeerCertificate);
                }
                session.info.elapsed = session.runtime.now().saturating_duration_since(start);
                if session.dtls.protocol_version() == Some(dimpl::ProtocolVersion::DTLS1_3) {
                    session.info.version = "DTLS 1.3";
                }
                session.info.cipher_suite = state.cipher_suite;
                session.info.srtp_profile = state.srtp_profile;
                return Ok(session);
            }
            if !session.wait(Some(deadline), &mut state).await? {
                return Err(DtlsError::Timeout(config.handshake_timeout));
            }
        }
    }

    /// What the handshake negotiated.
    pub fn info(&self) -> &HandshakeInfo {
        &self.info
    }

    /// Encrypts `data` as one record and sends it on the component.
    ///
    /// # Errors
    ///
    /// [`DtlsError::Dtls`] if the session is no longer usable, [`DtlsError::Transport`] if
    /// the send fails.
    pub async fn send(&mut self, data: &[u8]) -> Result<(), DtlsError> {
        self.dtls
            .send_application_data(data)
            .map_err(DtlsError::Dtls)?;
        self.drain(None).await
    }

    /// The next datagram of application data from the peer, decrypted. Meanwhile it
    /// answers the peer's handshake retransmissions and runs the engine's timers.
    ///
    /// # Errors
    ///
    /// [`DtlsError::PeerClosed`] after the peer's `close_notify`, [`DtlsError::Closed`]
    /// when the component's datagrams end, [`DtlsError::Dtls`] if the engine fails.
    pub async fn recv(&mut self) -> Result<Vec<u8>, DtlsError> {
        loop {
            if let Some(d) = self.received.pop_front() {
                return Ok(d);
            }
            if self.peer_closed {
                return Err(DtlsError::PeerClosed);
            }
            self.wait(None, &mut Handshake::default()).await?;
            self.drain(None).await?;
        }
    }

    /// Sends `close_notify` (best effort) and ends the session.
    pub async fn close(mut self) {
        if self.dtls.close().is_ok() {
            let _ = self.drain(None).await;
        }
    }

    /// Drains the engine: sends its records, notes its events, stops at its timeout.
    async fn drain(&mut self, mut hs: Option<&mut Handshake>) -> Result<(), DtlsError> {
        loop {
            let mut packet = None;
            match self.dtls.poll_output(&mut self.out) {
                dimpl::Output::Packet(p) => packet = Some(p.to_vec()),
                dimpl::Output::BufferTooSmall { needed } => self.out.resize(needed, 0),
                dimpl::Output::Timeout(t) => {
                    self.next_timeout = Some(t);
                    return Ok(());
                }
                dimpl::Output::Connected => {
                    if let Some(hs) = hs.as_deref_mut() {
                        hs.connected = true;
                    }
                }
                dimpl::Output::PeerCert(der) => {
                    let actual = Fingerprint::of_der(der);
                    let expected = self.info.peer_fingerprint;
                    if actual != expected {
                        // Stop here: nothing more goes out (the engine queues its next
                        // flight behind this event).
                        let err = DtlsError::FingerprintMismatch { expected, actual };
                        match hs.as_deref_mut() {
                            Some(hs) => {
                                hs.failure = Some(err);
                                return Ok(());
                            }
                            None => return Err(err),
                        }
                    }
                    if let Some(hs) = hs.as_deref_mut() {
                        hs.verified = true;
                    }
                }
                dimpl::Output::KeyingMaterial(_, profile) => {
                    if let Some(hs) = hs.as_deref_mut() {
                        hs.srtp_profile = Some(srtp_name(profile));
                    }
                }
                dimpl::Output::ApplicationData(d) => self.received.push_back(d.to_vec()),
                dimpl::Output::CloseNotify => self.peer_closed = true,
                _ => {}
            }
            if let Some(p) = packet {
                if let Some(hs) = hs.as_deref_mut() {
                    hs.sniff(&p);
                }
                self.sender.send(&p).await.map_err(DtlsError::Transport)?;
            }
        }
    }

    /// Waits for the next DTLS datagram or the engine's timer and feeds it in. Returns
    /// false if `deadline` passed first.
    async fn wait(
        &mut self,
        deadline: Option<Instant>,
        hs: &mut Handshake,
    ) -> Result<bool, DtlsError> {
        let wake = match (self.next_timeout, deadline) {
            (Some(t), Some(d)) => Some(t.min(d)),
            (t, d) => t.or(d),
        };
        let runtime = Arc::clone(&self.runtime);
        let timer = async {
            match wake {
                Some(w) => librice::runtime::sleep_until(runtime.as_ref(), w).await,
                None => futures::future::pending().await,
            }
        }
        .fuse();
        futures::pin_mut!(timer);
        loop {
            let next = self.input.next().fuse();
            futures::pin_mut!(next);
            futures::select! {
                d = next => {
                    let Some(d) = d else { return Err(DtlsError::Closed) };
                    if !is_dtls(&d) {
                        continue;
                    }
                    hs.sniff(&d);
                    let now = self.runtime.now();
                    self.dtls.handle_timeout(now).map_err(DtlsError::Dtls)?;
                    self.dtls.handle_packet(&d).map_err(DtlsError::Dtls)?;
                    return Ok(true);
                }
                _ = timer => {
                    let now = self.runtime.now();
                    if deadline.is_some_and(|d| now >= d) {
                        return Ok(false);
                    }
                    self.dtls.handle_timeout(now).map_err(DtlsError::Dtls)?;
                    return Ok(true);
                }
            }
        }
    }
}

/// What the handshake loop has seen so far.
#[derive(Debug, Default)]
struct Handshake {
    connected: bool,
    verified: bool,
    failure: Option<DtlsError>,
    cipher_suite: Option<CipherSuite>,
    srtp_profile: Option<&'static str>,
}

impl Handshake {
    /// Notes the cipher suite of a plaintext ServerHello in a datagram, whichever way it
    /// goes (dimpl does not report it).
    fn sniff(&mut self, datagram: &[u8]) {
        if self.cipher_suite.is_none() {
            self.cipher_suite = server_hello_cipher(datagram).map(CipherSuite);
        }
    }
}

/// The cipher suite of the first ServerHello (handshake type 2, epoch 0, first fragment)
/// among the DTLS records of a datagram: RFC 6347 §4.1 record header (13 bytes), §4.2.2
/// handshake header (12 bytes), then version (2), random (32), session id (1 + n) and the
/// suite (2). DTLS 1.3 (RFC 9147 §5) keeps this layout for its ServerHello. Bounds-checked
/// throughout: hostile input yields `None`.
fn server_hello_cipher(mut datagram: &[u8]) -> Option<u16> {
    while datagram.len() >= 13 {
        let content_type = datagram[0];
        let epoch = u16::from_be_bytes([datagram[3], datagram[4]]);
        let len = usize::from(u16::from_be_bytes([datagram[11], datagram[12]]));
        let body = datagram.get(13..13 + len)?;
        datagram = &datagram[13 + len..];
        if content_type != 22 || epoch != 0 || body.len() < 12 || body[0] != 2 {
            continue;
        }
        let offset = u32::from_be_bytes([0, body[6], body[7], body[8]]);
        if offset != 0 {
            continue;
        }
        let hello = &body[12..];
        let sid_len = usize::from(*hello.get(34)?);
        let at = 35 + sid_len;
        let suite = hello.get(at..at + 2)?;
        return Some(u16::from_be_bytes([suite[0], suite[1]]));
    }
    None
}

fn srtp_name(profile: dimpl::SrtpProfile) -> &'static str {
    match profile {
        dimpl::SrtpProfile::AES128_CM_SHA1_80 => "SRTP_AES128_CM_HMAC_SHA1_80",
        dimpl::SrtpProfile::AEAD_AES_128_GCM => "SRTP_AEAD_AES_128_GCM",
        dimpl::SrtpProfile::AEAD_AES_256_GCM => "SRTP_AEAD_AES_256_GCM",
        #[allow(unreachable_patterns)]
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_round_trip() {
        let cert = Certificate::generate().unwrap();
        let fp = cert.fingerprint();
        assert_eq!(Fingerprint::parse(&fp.sdp()).unwrap(), fp);
        assert_eq!(Fingerprint::parse(&fp.to_string()).unwrap(), fp);
        assert_eq!(
            Fingerprint::parse(&fp.sdp().to_lowercase().replace("sha-256", "SHA-256")).unwrap(),
            fp
        );
        assert_eq!(fp.to_string().len(), 32 * 3 - 1);
    }

    #[test]
    fn bad_fingerprints_are_refused() {
        let good = ["AB"; 32].join(":");
        for bad in [
            String::new(),
            "sha-1 AB:CD".into(),
            format!("sha-1 {good}"),
            good[3..].to_string(),
            format!("{good}:AB"),
            good.replace("AB:AB", "ABAB:"),
            good.replace('B', "G"),
            format!("sha-256 {}", good.replace(':', "")),
        ] {
            assert!(
                matches!(Fingerprint::parse(&bad), Err(DtlsError::BadFingerprint(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn demultiplexing_rfc_7983() {
        assert!(!is_dtls(&[]));
        assert!(!is_dtls(&[0, 1]));
        assert!(!is_dtls(&[19]));
        assert!(is_dtls(&[20]));
        assert!(is_dtls(&[22, 0xfe, 0xfd]));
        assert!(is_dtls(&[63]));
        assert!(!is_dtls(&[64]));
        assert!(!is_dtls(&[0x80]));
    }

    #[test]
    fn server_hello_sniffing() {
        // A record with a ServerHello fragment: session id of 3 bytes, suite 0xC02B.
        let mut hello = vec![0xfe, 0xfd];
        hello.extend([7u8; 32]);
        hello.extend([3, 1, 2, 3, 0xC0, 0x2B, 0]);
        let mut hs = vec![
            2,
            0,
            0,
            hello.len() as u8,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            hello.len() as u8,
        ];
        hs.extend(&hello);
        let mut record = vec![22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, hs.len() as u8];
        record.extend(&hs);
        // After another record in the same datagram.
        let mut datagram = vec![21, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 1, 0];
        datagram.extend(&record);
        assert_eq!(server_hello_cipher(&datagram), Some(0xC02B));
        // Truncated anywhere: no answer, no panic.
        for n in 0..datagram.len() {
            assert_eq!(server_hello_cipher(&datagram[..n]), None, "{n}");
        }
        // A ClientHello is not a ServerHello.
        let mut client = datagram.clone();
        client[15 + 13] = 1;
        assert_eq!(server_hello_cipher(&client), None);
    }
}
