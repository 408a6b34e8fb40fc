//! `synthscan siprec`: a SIPREC Session Recording Server (RFC 7866). A session border controller
//! or PBX forks a call to it: an INVITE whose multipart body holds an SDP offer with one
//! `sendonly` media line per recorded stream and `application/rs-metadata+xml` naming the
//! participants (RFC 7865). The server answers `recvonly` on ports of its own, decodes the RTP
//! of each stream as it arrives (leg.rs) and scores it as one live track named after its
//! participant, on the same scoring workers and with the same events as `serve`, plus
//! `call_id` and `leg`. Events go to standard output as JSON Lines and, optionally, to a
//! webhook (webhook.rs); with `--record DIR`, each leg's audio goes to a WAV file.
//!
//! SIP runs over UDP and TCP on the same port, and over TLS on a port of its own when a
//! certificate is given (rustls; the connection is the same framed byte stream as TCP). Media is
//! plain RTP, or SRTP with SDES keys (srtp.rs); a stream that cannot be decrypted is not
//! recorded, since its ciphertext would be scored as noise. All dialog state lives in one task (the
//! registry below), fed by the transports: one message at a time, so no call's state is ever
//! shared between threads. What the server answers:
//! - INVITE (new): 100 Trying, then 200 OK with the answer; over UDP the 200 is retransmitted
//!   until the ACK comes (RFC 3261 timer G). 503 beyond `--max-calls` or while draining, 488
//!   when no stream can be recorded.
//! - re-INVITE / UPDATE: new streams get ports, codec changes and holds are followed; a session
//!   refresh restarts the session timer (RFC 4028).
//! - BYE ends the call (its legs' summaries follow); CANCEL of an answered INVITE changes
//!   nothing (RFC 3261 9.2), OPTIONS answers 200 (keep-alives), other methods 405.
//! - A call whose streams stop sending RTP for `--idle-seconds`, or whose session timer runs
//!   out, or whose 200 is never acknowledged, is ended with a BYE.
//!
//! Only addresses in `--allow` may send SIP or RTP (loopback only when none is given, and the
//! server refuses to listen off loopback without it); anything else is dropped and counted.

mod cidr;
mod leg;
mod srtp;
mod webhook;

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinHandle;

pub use self::cidr::Cidr;
use super::engine::{Engine, Job, Reply};
use super::metrics::Metrics;
use crate::Detector;
use crate::detect::LivePolicy;
use crate::error::{Error, Result};
use crate::model::LoadedModel;
use crate::packet::metadata::{self, Metadata};
use crate::packet::rtp::Codec;
use crate::packet::sdp::{self, Direction};
use crate::packet::sip::{self, Message, SipError, StartLine};
use crate::service::media::MAX_TRACKS;

/// Settings of the recording server (the CLI fills them from flags).
#[derive(Debug, Clone)]
pub struct SiprecConfig {
    /// SIP, over UDP and TCP.
    pub listen: SocketAddr,
    /// `/healthz` and `/metrics`.
    pub http: Option<SocketAddr>,
    /// First and last RTP port (inclusive); each stream takes an even port of the range.
    pub rtp_ports: (u16, u16),
    /// The address put in answers' SDP and Contact; default: the listen address, or when that
    /// is a wildcard, the local address the system routes to the SIP peer from.
    pub media_address: Option<IpAddr>,
    /// Who may send SIP and RTP; empty: loopback only.
    pub allow: Vec<Cidr>,
    pub max_calls: usize,
    /// A call with no RTP on any stream for this long is ended.
    pub idle_timeout: Duration,
    pub drain_timeout: Duration,
    pub workers: usize,
    /// Decoded leg audio waiting to be scored, over all calls, in samples.
    pub max_buffered_samples: usize,
    pub webhook: Option<String>,
    /// `--record DIR`: each leg's audio in `DIR/<call-id>/<leg>.wav`; nothing is written
    /// without it.
    pub record: Option<std::path::PathBuf>,
    pub policy: LivePolicy,
    /// SIP over TLS as well, on its own port.
    pub tls: Option<TlsConfig>,
}

/// SIP over TLS (RFC 3261 26.2, the `sips`-less `transport=tls` form SBCs use): where to listen, and
/// the server's identity as PEM files.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    pub listen: SocketAddr,
    /// The certificate chain, leaf first.
    pub certificate: std::path::PathBuf,
    /// The private key of the leaf certificate (PKCS#8, PKCS#1 or SEC1).
    pub key: std::path::PathBuf,
}

/// Decoded audio one call may have waiting for its scorer (4 M samples: over 8 minutes of
/// 8 kHz audio, far more than a worker that keeps up ever holds).
const CALL_BUFFER_SAMPLES: usize = 1 << 22;
/// Most SIP-over-TCP connections at once.
const MAX_TCP_CONNECTIONS: usize = 1024;
/// A TCP connection with no message for this long is closed.
const TCP_IDLE: Duration = Duration::from_secs(600);
/// A TLS handshake that has not finished in this long is dropped.
const TLS_HANDSHAKE: Duration = Duration::from_secs(10);
/// RFC 3261 timers: T1 and T2 for retransmitting a 200 OK over UDP, 64*T1 to give up.
const T1: Duration = Duration::from_millis(500);
const T2: Duration = Duration::from_secs(4);
const ACK_WAIT: Duration = Duration::from_secs(32);
/// Shortest session interval accepted (RFC 4028 Min-SE).
const MIN_SESSION_EXPIRES_S: u64 = 90;
/// Messages waiting for the registry; beyond, new ones are dropped (a flood cannot queue
/// without bound).
const REGISTRY_QUEUE: usize = 4096;

const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE";
/// Option tags a request may require: SIPREC itself, session timers, and reliable provisional
/// responses (this server sends no provisional response but 100 Trying, which is never
/// reliable, so requiring them costs nothing).
const SUPPORTED: [&str; 3] = ["siprec", "timer", "100rel"];

/// What every task of the server shares.
struct Shared {
    engine: Engine,
    metrics: Arc<Metrics>,
    allow: Vec<Cidr>,
    /// The server-wide budget of decoded samples waiting for a scorer.
    buffer: Arc<Semaphore>,
    /// Stream time zero for `last_audio` stamps.
    epoch: Instant,
    /// Calls whose summaries have not all been written yet.
    summaries_pending: AtomicU64,
    /// Seconds of stream time between live updates (legs hand their audio over by then).
    update_interval_s: f64,
}

impl Shared {
    fn allowed(&self, ip: IpAddr) -> bool {
        if self.allow.is_empty() {
            ip.to_canonical().is_loopback()
        } else {
            self.allow.iter().any(|c| c.contains(ip))
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }
}

/// How to answer the peer a message came from.
#[derive(Clone)]
enum Transport {
    Udp(Arc<UdpSocket>),
    Tcp(mpsc::Sender<Vec<u8>>),
    Tls(mpsc::Sender<Vec<u8>>),
}

impl Transport {
    fn name(&self) -> &'static str {
        match self {
            Transport::Udp(_) => "UDP",
            Transport::Tcp(_) => "TCP",
            Transport::Tls(_) => "TLS",
        }
    }

    fn send(&self, bytes: Vec<u8>, to: SocketAddr) {
        match self {
            Transport::Udp(socket) => {
                let _ = socket.try_send_to(&bytes, to);
            }
            Transport::Tcp(tx) | Transport::Tls(tx) => {
                let _ = tx.try_send(bytes);
            }
        }
    }
}

/// A message for the registry.
enum Input {
    Sip {
        message: Box<Message>,
        from: SocketAddr,
        transport: Transport,
    },
    Tick,
    Drain,
    /// End every call now.
    Shutdown,
}

/// One stream of a call.
struct LegState {
    /// Its media line in the offer.
    index: usize,
    label: Option<String>,
    name: String,
    participant: Option<String>,
    port: u16,
    codecs: watch::Sender<HashMap<u8, Codec>>,
    /// The SRTP keys of the stream as last offered (none for plain RTP).
    keys: watch::Sender<Option<srtp::Keys>>,
    task: JoinHandle<()>,
    /// The payload types answered: the speech codec, and telephone events when offered.
    answer: Vec<(u8, Codec)>,
    /// On hold (`a=inactive`, or port 0, in the last offer): no RTP is expected.
    held: bool,
}

/// Whether the offer puts media line `media` on hold.
fn holds(offer: &sdp::Session, media: &sdp::Media) -> bool {
    media.port == 0 || media.direction.or(offer.direction) == Some(Direction::Inactive)
}

struct Call {
    id: Arc<str>,
    conn: u64,
    local_tag: String,
    transport: Transport,
    peer: SocketAddr,
    /// Where in-dialog requests from this side go (the peer's Contact).
    remote_target: String,
    /// The peer's From (our To in requests we send) and the To we answered with (our From).
    their_from: String,
    our_to: String,
    legs: Vec<LegState>,
    /// Media lines of the last offer that were not recorded (answered with port 0).
    rejected: Vec<(usize, String)>,
    invite_cseq: u32,
    /// The last 200 to an INVITE, resent for a retransmitted INVITE (and over UDP until the
    /// ACK): bytes, next resend, interval, give-up time.
    last_answer: Vec<u8>,
    retransmit: Option<(Instant, Duration, Instant)>,
    session_expires: Option<Duration>,
    refreshed: Instant,
    last_audio: Arc<AtomicU64>,
    reply: mpsc::UnboundedSender<Reply>,
    buffer: Arc<Semaphore>,
    sdp_version: u64,
    local_cseq: u32,
    metadata: Metadata,
    /// The last offer taken: an offerless re-INVITE gets an offer built from it.
    last_offer: sdp::Session,
    /// Tells the legs to hand over what they hold and stop.
    stop: watch::Sender<bool>,
}

/// The even RTP ports of the range, handed out and taken back.
struct PortPool {
    first: u16,
    last: u16,
    next: u16,
    used: HashSet<u16>,
}

impl PortPool {
    fn new((first, last): (u16, u16)) -> Self {
        let first = first + first % 2;
        Self {
            first,
            last,
            next: first,
            used: HashSet::new(),
        }
    }

    /// Binds a UDP socket on the next free even port.
    fn bind(&mut self, ip: IpAddr) -> Option<(u16, UdpSocket)> {
        let count = (u32::from(self.last).saturating_sub(u32::from(self.first)) / 2 + 1) as usize;
        for _ in 0..count {
            let port = self.next;
            self.next = if u32::from(port) + 2 > u32::from(self.last) {
                self.first
            } else {
                port + 2
            };
            if self.used.contains(&port) {
                continue;
            }
            let Ok(std_socket) = std::net::UdpSocket::bind(SocketAddr::new(ip, port)) else {
                continue;
            };
            if std_socket.set_nonblocking(true).is_err() {
                continue;
            }
            if let Ok(socket) = UdpSocket::from_std(std_socket) {
                self.used.insert(port);
                return Some((port, socket));
            }
        }
        None
    }

    fn release(&mut self, port: u16) {
        self.used.remove(&port);
    }
}

/// A token unique within this process and unlikely to repeat across restarts, for tags and
/// branch parameters (uniqueness, not secrecy).
fn unique_token() -> String {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    format!("{:016x}", h.finish())
}

/// The URI inside a header value (`"Bob" <sip:bob@x>;tag=1` -> `sip:bob@x`).
fn uri_of(value: &str) -> String {
    match (value.find('<'), value.find('>')) {
        (Some(a), Some(b)) if a < b => value[a + 1..b].to_string(),
        _ => value.split(';').next().unwrap_or(value).trim().to_string(),
    }
}

/// A leg's name as events carry it: printable, at most 64 characters.
fn clean_name(name: &str) -> String {
    name.chars()
        .filter(|c| !c.is_control())
        .take(64)
        .collect::<String>()
        .trim()
        .to_string()
}

/// A response to `request`.
fn response(
    request: &Message,
    code: u16,
    reason: &str,
    to_tag: Option<&str>,
    extra: &[(&str, String)],
    body: Option<(&str, &str)>,
) -> Vec<u8> {
    let mut out = format!("SIP/2.0 {code} {reason}\r\n");
    for via in request.headers_named("Via") {
        out.push_str(&format!("Via: {via}\r\n"));
    }
    let to = request.header("To").unwrap_or_default();
    let to = match to_tag {
        Some(tag) if sip::header_param(to, "tag").is_none() => format!("{to};tag={tag}"),
        _ => to.to_string(),
    };
    out.push_str(&format!(
        "From: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {}\r\n",
        request.header("From").unwrap_or_default(),
        request.call_id(),
        request.header("CSeq").unwrap_or_default()
    ));
    for (name, value) in extra {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str(concat!("Server: synthscan/", env!("CARGO_PKG_VERSION"), "\r\n"));
    match body {
        Some((kind, text)) => out.push_str(&format!(
            "Content-Type: {kind}\r\nContent-Length: {}\r\n\r\n{text}",
            text.len()
        )),
        None => out.push_str("Content-Length: 0\r\n\r\n"),
    }
    out.into_bytes()
}

/// How a media line's packets are protected, when they can be received here: plain RTP
/// (`RTP/AVP`, `RTP/AVPF`: `None`), or SRTP (`RTP/SAVP`, `RTP/SAVPF`) with the first usable key
/// of the offer's `a=crypto` lines (its tag and keys). Otherwise, why not: DTLS-SRTP, or SRTP
/// without a key this server can use. Ciphertext decoded as speech would be scored as noise,
/// so such a stream is not recorded.
fn protection(media: &sdp::Media) -> std::result::Result<Option<(u32, srtp::Keys)>, String> {
    let p = media.protocol.as_str();
    if p.is_empty() || p.eq_ignore_ascii_case("RTP/AVP") || p.eq_ignore_ascii_case("RTP/AVPF") {
        return Ok(None);
    }
    if !(p.eq_ignore_ascii_case("RTP/SAVP") || p.eq_ignore_ascii_case("RTP/SAVPF")) {
        return Err(format!(
            "{p} media is not received here (SRTP needs SDES keys in a=crypto)"
        ));
    }
    let mut why = format!("{p} media without an a=crypto key");
    for line in &media.crypto {
        match srtp::Keys::from_crypto(line) {
            Ok(keys) => return Ok(Some(keys)),
            Err(e) => why = e,
        }
    }
    Err(why)
}

/// The SRTP keys a leg receives with, if its stream is SRTP.
fn leg_keys(media: &sdp::Media) -> Option<srtp::Keys> {
    protection(media).ok().flatten().map(|(_, keys)| keys)
}

/// The codec answered for a media line: the first of its formats decoded here.
fn choose_codec(media: &sdp::Media) -> Option<(u8, Codec)> {
    media
        .formats
        .iter()
        .map(|&pt| (pt, media.codec(pt)))
        .find(|(_, c)| matches!(c, Codec::Pcmu | Codec::Pcma | Codec::G722))
}

/// The payload types answered for a media line: the speech codec chosen, and telephone
/// events when offered (so that DTMF is counted, not mistaken for speech).
fn answer_formats(media: &sdp::Media, chosen: (u8, Codec)) -> Vec<(u8, Codec)> {
    let mut answer = vec![chosen];
    if let Some(pt) = media
        .formats
        .iter()
        .copied()
        .find(|&pt| media.codec(pt) == Codec::TelephoneEvent)
    {
        answer.push((pt, Codec::TelephoneEvent));
    }
    answer
}

fn rtpmap_line(pt: u8, codec: &Codec) -> String {
    match codec {
        Codec::Pcmu => format!("a=rtpmap:{pt} PCMU/8000\r\n"),
        Codec::Pcma => format!("a=rtpmap:{pt} PCMA/8000\r\n"),
        Codec::G722 => format!("a=rtpmap:{pt} G722/8000\r\n"),
        Codec::TelephoneEvent => format!("a=rtpmap:{pt} telephone-event/8000\r\n"),
        other => format!("a=rtpmap:{pt} {}/8000\r\n", other.name()),
    }
}

struct Registry {
    shared: Arc<Shared>,
    config: SiprecConfig,
    sip_port: u16,
    /// The port of SIP over TLS, when it is served.
    tls_port: Option<u16>,
    calls: HashMap<String, Call>,
    ports: PortPool,
    output: std::sync::mpsc::Sender<String>,
    /// Set once the server is told to drain: new calls get 503, and the registry stops when
    /// every call has ended or this time has come.
    drain_until: Option<Instant>,
    /// The engine key of the last call opened.
    next_conn: u64,
}

impl Registry {
    /// The port a peer reaches this server on over `transport` (for Contact and Via).
    fn port_for(&self, transport: &Transport) -> u16 {
        match (transport, self.tls_port) {
            (Transport::Tls(_), Some(port)) => port,
            _ => self.sip_port,
        }
    }

    fn local_ip(&self, peer: SocketAddr) -> IpAddr {
        if let Some(ip) = self.config.media_address {
            return ip;
        }
        if !self.config.listen.ip().is_unspecified() {
            return self.config.listen.ip();
        }
        // the address the system would send to the peer from
        let unspecified: IpAddr = if peer.is_ipv4() {
            [0, 0, 0, 0].into()
        } else {
            std::net::Ipv6Addr::UNSPECIFIED.into()
        };
        std::net::UdpSocket::bind(SocketAddr::new(unspecified, 0))
            .and_then(|s| {
                s.connect(peer)?;
                s.local_addr()
            })
            .map_or(self.config.listen.ip(), |a| a.ip())
    }

    /// The folder of a call's recordings, made on first use; `None` without `--record` (or
    /// when it cannot be made: the call is scored all the same).
    fn record_dir(&self, call_id: &str) -> Option<std::path::PathBuf> {
        let dir = self.config.record.as_ref()?.join(leg::file_name(call_id));
        match std::fs::create_dir_all(&dir) {
            Ok(()) => Some(dir),
            Err(e) => {
                eprintln!("synthscan: cannot record to {}: {e}", dir.display());
                None
            }
        }
    }

    fn emit(&self, value: serde_json::Value) {
        let _ = self.output.send(value.to_string());
    }

    fn handle(&mut self, message: Message, from: SocketAddr, transport: Transport) {
        let StartLine::Request { method, .. } = &message.start else {
            return; // responses to our BYEs need nothing
        };
        let method = method.clone();
        if let Err(e) = message.check_required_headers() {
            Metrics::inc(&self.shared.metrics.sip_malformed);
            transport.send(
                response(&message, 400, &format!("Bad Request ({e})"), None, &[], None),
                from,
            );
            return;
        }
        let send = |bytes: Vec<u8>| transport.send(bytes, from);
        // an extension the request requires and this server lacks: 420 (RFC 3261 8.2.2.3);
        // ACK and CANCEL are never refused so
        let unsupported: Vec<&str> = message
            .headers_named("Require")
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|tag| !tag.is_empty() && !SUPPORTED.contains(&tag.to_ascii_lowercase().as_str()))
            .collect();
        if !unsupported.is_empty() && method != "ACK" && method != "CANCEL" {
            send(response(
                &message,
                420,
                "Bad Extension",
                None,
                &[("Unsupported", unsupported.join(", "))],
                None,
            ));
            return;
        }
        let known = self.calls.contains_key(message.call_id());
        match method.as_str() {
            "INVITE" if !known && message.header_param("To", "tag").is_none() => self.invite(message, from, transport),
            "INVITE" | "UPDATE" if known => self.reinvite(&method, message, from, transport),
            "ACK" => {
                if let Some(call) = self.calls.get_mut(message.call_id()) {
                    call.retransmit = None;
                }
            }
            "BYE" if known => {
                send(response(&message, 200, "OK", None, &[], None));
                self.end(message.call_id().to_string(), "bye", false);
            }
            // the INVITE was answered at once, so a CANCEL finds nothing left to cancel
            "CANCEL" if known => send(response(&message, 200, "OK", None, &[], None)),
            "OPTIONS" => send(response(
                &message,
                200,
                "OK",
                Some(&unique_token()),
                &[
                    ("Allow", ALLOW.into()),
                    (
                        "Accept",
                        "application/sdp, application/rs-metadata+xml, multipart/mixed".into(),
                    ),
                    ("Supported", "timer".into()),
                ],
                None,
            )),
            "INVITE" | "UPDATE" | "BYE" | "CANCEL" => {
                send(response(
                    &message,
                    481,
                    "Call/Transaction Does Not Exist",
                    None,
                    &[],
                    None,
                ));
            }
            _ => send(response(
                &message,
                405,
                "Method Not Allowed",
                None,
                &[("Allow", ALLOW.into())],
                None,
            )),
        }
    }

    /// Plans the legs of an offer: for media line `i`, the leg that records it (existing or
    /// new), or why not.
    fn offer_legs(&self, offer: &sdp::Session) -> Vec<Option<(u8, Codec)>> {
        offer
            .media
            .iter()
            .map(|m| {
                let recordable = m.kind == "audio"
                    && m.port != 0
                    && m.direction != Some(Direction::RecvOnly)
                    && protection(m).is_ok();
                if recordable { choose_codec(m) } else { None }
            })
            .collect()
    }

    fn answer_sdp(&self, call: &Call, offer: &sdp::Session, ip: IpAddr) -> String {
        let family = if ip.is_ipv4() { "IP4" } else { "IP6" };
        let mut sdp = format!(
            "v=0\r\no=synthscan {} {} IN {family} {ip}\r\ns=synthscan\r\nc=IN {family} {ip}\r\nt=0 0\r\n",
            call.conn, call.sdp_version
        );
        for (i, m) in offer.media.iter().enumerate() {
            let protocol = if m.protocol.is_empty() { "RTP/AVP" } else { &m.protocol };
            match call.legs.iter().find(|l| l.index == i) {
                Some(leg) if choose_codec(m).is_some() && protection(m).is_ok() => {
                    let formats: Vec<String> = leg.answer.iter().map(|(pt, _)| pt.to_string()).collect();
                    sdp.push_str(&format!("m=audio {} {protocol} {}\r\n", leg.port, formats.join(" ")));
                    // SDES (RFC 4568 5.1.2): the answer takes the offer's tag and suite, with a key
                    // of its own for the direction it never sends in
                    if let Ok(Some((tag, keys))) = protection(m)
                        && let Some(inline) = srtp::Keys::random_inline()
                    {
                        sdp.push_str(&format!("a=crypto:{tag} {} inline:{inline}\r\n", keys.suite.name()));
                    }
                    for (pt, codec) in &leg.answer {
                        sdp.push_str(&rtpmap_line(*pt, codec));
                    }
                    if let Some(label) = &leg.label {
                        sdp.push_str(&format!("a=label:{label}\r\n"));
                    }
                    let direction = if m.port == 0 || m.direction == Some(Direction::Inactive) {
                        "inactive"
                    } else {
                        "recvonly"
                    };
                    sdp.push_str(&format!("a={direction}\r\n"));
                }
                _ => {
                    let formats: Vec<String> = m.formats.iter().map(u8::to_string).collect();
                    let formats = if formats.is_empty() {
                        "0".to_string()
                    } else {
                        formats.join(" ")
                    };
                    sdp.push_str(&format!(
                        "m={} 0 {protocol} {formats}\r\n",
                        if m.kind.is_empty() { "audio" } else { &m.kind }
                    ));
                }
            }
        }
        sdp
    }

    /// Opens a leg for media line `index` of an offer, answered with `chosen`.
    fn open_leg(&mut self, call_id: &str, index: usize, media: &sdp::Media, chosen: (u8, Codec)) -> Option<LegState> {
        let call = self.calls.get(call_id)?;
        let listen_ip = self.config.listen.ip();
        let (port, socket) = self.ports.bind(listen_ip)?;
        let answer = answer_formats(media, chosen);
        let participant = media.label.as_deref().and_then(|l| call.metadata.sender_of(l));
        let base = participant
            .and_then(|p| p.label())
            .map(clean_name)
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| match &media.label {
                Some(label) => format!("label-{}", clean_name(label)),
                None => format!("stream-{index}"),
            });
        let mut name = base.clone();
        let mut k = 1;
        while call.legs.iter().any(|l| l.name == name) {
            k += 1;
            name = format!("{base} ({k})");
        }
        let rate_hz = if answer[0].1 == Codec::G722 { 16_000 } else { 8_000 };
        let codecs: HashMap<u8, Codec> = answer.iter().cloned().collect();
        let (codec_tx, codec_rx) = watch::channel(codecs);
        let (keys_tx, keys_rx) = watch::channel(leg_keys(media));
        let task = tokio::spawn(leg::receive(leg::Leg {
            socket,
            call_id: Arc::clone(&call.id),
            conn: call.conn,
            name: name.clone(),
            codecs: codec_rx,
            keys: keys_rx,
            rate_hz,
            reply: call.reply.clone(),
            last_audio: Arc::clone(&call.last_audio),
            call_buffer: Arc::clone(&call.buffer),
            shared: Arc::clone(&self.shared),
            record: self.record_dir(&call.id),
            stop: call.stop.subscribe(),
        }));
        Some(LegState {
            index,
            label: media.label.clone(),
            name,
            participant: participant.and_then(|p| p.aor.clone()),
            port,
            codecs: codec_tx,
            keys: keys_tx,
            task,
            answer,
            held: false,
        })
    }

    /// The SDP offer and metadata of a request's body.
    fn read_body(message: &Message) -> (Option<sdp::Session>, Option<Metadata>) {
        let mut offer = None;
        let mut meta = None;
        for (kind, bytes) in message.parts() {
            match kind.as_str() {
                "application/sdp" => offer = sdp::parse(&String::from_utf8_lossy(&bytes)),
                "application/rs-metadata+xml" => meta = metadata::parse(&bytes),
                _ => {}
            }
        }
        (offer, meta)
    }

    fn session_expires(message: &Message) -> Option<Duration> {
        let value = message.header("Session-Expires")?;
        let seconds: u64 = value.split(';').next()?.trim().parse().ok()?;
        Some(Duration::from_secs(seconds.max(MIN_SESSION_EXPIRES_S)))
    }

    fn invite(&mut self, message: Message, from: SocketAddr, transport: Transport) {
        let metrics = Arc::clone(&self.shared.metrics);
        let send = |bytes: Vec<u8>| transport.send(bytes, from);
        if self.drain_until.is_some() || self.calls.len() >= self.config.max_calls {
            Metrics::inc(&metrics.calls_rejected);
            send(response(
                &message,
                503,
                "Service Unavailable",
                Some(&unique_token()),
                &[("Retry-After", "5".into())],
                None,
            ));
            return;
        }
        if matches!(transport, Transport::Udp(_)) {
            send(response(&message, 100, "Trying", None, &[], None));
        }
        let (offer, meta) = Self::read_body(&message);
        let Some(offer) = offer else {
            Metrics::inc(&metrics.calls_rejected);
            send(response(
                &message,
                488,
                "Not Acceptable Here (no SDP offer)",
                Some(&unique_token()),
                &[],
                None,
            ));
            return;
        };
        let plan = self.offer_legs(&offer);
        if plan.iter().all(Option::is_none) {
            Metrics::inc(&metrics.calls_rejected);
            let why = match offer.media.iter().find_map(|m| protection(m).err()) {
                Some(reason) => format!("Not Acceptable Here ({reason})"),
                None => "Not Acceptable Here (no stream in PCMU, PCMA or G.722)".to_string(),
            };
            send(response(&message, 488, &why, Some(&unique_token()), &[], None));
            return;
        }
        let id: Arc<str> = Arc::from(message.call_id());
        // every call is one engine "connection", so its legs share a worker
        self.next_conn += 1;
        let conn = self.next_conn;
        let (reply_tx, reply_rx) = mpsc::unbounded_channel();
        let output = self.output.clone();
        let forwarding = Arc::clone(&self.shared);
        forwarding.summaries_pending.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(async move {
            forward(reply_rx, output).await;
            forwarding.summaries_pending.fetch_sub(1, Ordering::SeqCst);
        });
        let ip = self.local_ip(from);
        let call = Call {
            id: Arc::clone(&id),
            conn,
            local_tag: unique_token(),
            transport: transport.clone(),
            peer: from,
            remote_target: message
                .header("Contact")
                .map_or_else(|| uri_of(message.header("From").unwrap_or_default()), uri_of),
            their_from: message.header("From").unwrap_or_default().to_string(),
            our_to: String::new(),
            legs: Vec::new(),
            rejected: Vec::new(),
            invite_cseq: message.cseq().map_or(0, |c| c.0),
            last_answer: Vec::new(),
            retransmit: None,
            session_expires: Self::session_expires(&message),
            refreshed: Instant::now(),
            last_audio: Arc::new(AtomicU64::new(self.shared.now_ms())),
            reply: reply_tx,
            buffer: Arc::new(Semaphore::new(CALL_BUFFER_SAMPLES)),
            sdp_version: 1,
            local_cseq: 1,
            metadata: meta.unwrap_or_default(),
            last_offer: offer.clone(),
            stop: watch::channel(false).0,
        };
        self.calls.insert(id.to_string(), call);
        self.apply_offer(&id, &offer, &plan);
        if self.calls.get(&*id).is_some_and(|c| c.legs.is_empty()) {
            // no port was free: the call never was, so no event and no BYE (a 503 instead)
            Metrics::inc(&metrics.calls_rejected);
            if let Some(call) = self.calls.remove(&*id) {
                // the worker's Done ends the call's event forwarder
                let finish = Job::Finish {
                    conn: call.conn,
                    label: call.id.to_string(),
                    reply: call.reply.clone(),
                };
                self.shared.engine.send(call.conn, finish);
            }

            send(response(
                &message,
                503,
                "Service Unavailable (no RTP port free)",
                Some(&unique_token()),
                &[],
                None,
            ));
            return;
        }
        Metrics::inc(&metrics.calls_total);
        metrics.calls_open.store(self.calls.len() as u64, Ordering::Relaxed);
        self.answer(&id, &message, &offer, from, ip);
        self.emit_call(&id, "started", None);
    }

    /// Opens legs for the recordable media lines that have none, and updates the codecs of
    /// those that have.
    fn apply_offer(&mut self, id: &str, offer: &sdp::Session, plan: &[Option<(u8, Codec)>]) {
        let mut rejected = Vec::new();
        for (i, (media, chosen)) in offer.media.iter().zip(plan).enumerate() {
            let Some(call) = self.calls.get(id) else {
                return;
            };
            let existing = call.legs.iter().position(|l| l.index == i);
            match (existing, chosen) {
                (Some(at), Some(chosen)) => {
                    let Some(call) = self.calls.get_mut(id) else {
                        return;
                    };
                    let leg = &mut call.legs[at];
                    let answer = answer_formats(media, chosen.clone());
                    leg.codecs.send_replace(answer.iter().cloned().collect());
                    let keys = leg_keys(media);
                    leg.keys.send_if_modified(|now| {
                        let changed = *now != keys;
                        *now = keys;
                        changed
                    });
                    leg.answer = answer;
                    leg.held = holds(offer, media);
                }
                (Some(at), None) => {
                    // held or removed: the leg stays, silent
                    if let Some(call) = self.calls.get_mut(id) {
                        call.legs[at].held = true;
                    }
                }
                (None, Some(chosen)) if call.legs.len() < MAX_TRACKS => {
                    match self.open_leg(id, i, media, chosen.clone()) {
                        Some(mut leg) => {
                            leg.held = holds(offer, media);
                            if let Some(call) = self.calls.get_mut(id) {
                                call.legs.push(leg);
                            }
                        }
                        None => rejected.push((i, "no RTP port free".to_string())),
                    }
                }
                (None, Some(_)) => rejected.push((i, format!("more than {MAX_TRACKS} streams"))),
                (None, None) => rejected.push((
                    i,
                    match protection(media) {
                        Err(why) if media.kind == "audio" && media.port != 0 => why,
                        _ => "not an audio stream sent in PCMU, PCMA or G.722".to_string(),
                    },
                )),
            }
        }
        if let Some(call) = self.calls.get_mut(id) {
            call.rejected = rejected;
        }
    }

    fn answer(&mut self, id: &str, request: &Message, offer: &sdp::Session, from: SocketAddr, ip: IpAddr) {
        let Some(call) = self.calls.get(id) else {
            return;
        };
        let sip_port = self.port_for(&call.transport);
        let sdp = self.answer_sdp(call, offer, ip);
        let host = if ip.is_ipv6() {
            format!("[{ip}]")
        } else {
            ip.to_string()
        };
        let transport_param = call.transport.name().to_ascii_lowercase();
        let mut extra = vec![
            // RFC 7866 6.1.1: a recording server says so in its Contact
            (
                "Contact",
                format!("<sip:synthscan@{host}:{sip_port};transport={transport_param}>;+sip.srs"),
            ),
            ("Allow", ALLOW.to_string()),
            ("Supported", "timer".to_string()),
        ];
        if let Some(expires) = call.session_expires {
            extra.push(("Session-Expires", format!("{};refresher=uac", expires.as_secs())));
            if request
                .headers_named("Supported")
                .any(|s| s.split(',').any(|t| t.trim() == "timer"))
            {
                extra.push(("Require", "timer".to_string()));
            }
        }
        let bytes = response(
            request,
            200,
            "OK",
            Some(&call.local_tag),
            &extra,
            Some(("application/sdp", &sdp)),
        );
        let our_to = {
            let to = request.header("To").unwrap_or_default();
            if sip::header_param(to, "tag").is_some() {
                to.to_string()
            } else {
                format!("{to};tag={}", call.local_tag)
            }
        };
        let is_udp = matches!(call.transport, Transport::Udp(_));
        call.transport.send(bytes.clone(), from);
        if let Some(call) = self.calls.get_mut(id) {
            call.our_to = our_to;
            call.last_answer = bytes;
            if is_udp && request.method() == Some("INVITE") {
                let now = Instant::now();
                call.retransmit = Some((now + T1, T1, now + ACK_WAIT));
            }
        }
    }

    fn reinvite(&mut self, method: &str, message: Message, from: SocketAddr, transport: Transport) {
        let id = message.call_id().to_string();
        let cseq = message.cseq().map_or(0, |c| c.0);
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if method == "INVITE" && cseq == call.invite_cseq {
            // a retransmission: the same answer again
            transport.send(call.last_answer.clone(), from);
            return;
        }
        call.refreshed = Instant::now();
        if let Some(expires) = Self::session_expires(&message) {
            call.session_expires = Some(expires);
        }
        if method == "INVITE" {
            call.invite_cseq = cseq;
        }
        let (offer, meta) = Self::read_body(&message);
        if let Some(meta) = meta {
            call.metadata = meta;
        }
        let Some(offer) = offer else {
            if method == "INVITE" {
                // an offerless re-INVITE: the 200 carries our offer, made of the streams as they
                // are (the answer in the ACK changes nothing here)
                call.sdp_version += 1;
                let last = call.last_offer.clone();
                let ip = self.local_ip(from);
                self.answer(&id, &message, &last, from, ip);
                return;
            }
            // an UPDATE without an offer: a session refresh
            let bytes = response(
                &message,
                200,
                "OK",
                Some(&call.local_tag),
                &[("Supported", "timer".into())],
                None,
            );
            transport.send(bytes, from);
            return;
        };
        call.sdp_version += 1;
        call.last_offer = offer.clone();
        let ip = self.local_ip(from);
        let plan = self.offer_legs(&offer);
        self.apply_offer(&id, &offer, &plan);
        self.answer(&id, &message, &offer, from, ip);
        self.emit_call(&id, "updated", None);
    }

    fn emit_call(&self, id: &str, state: &str, reason: Option<&str>) {
        let Some(call) = self.calls.get(id) else {
            return;
        };
        let legs: Vec<serde_json::Value> = call
            .legs
            .iter()
            .map(|l| {
                json!({
                    "leg": l.name,
                    "label": l.label,
                    "participant": l.participant,
                    "port": l.port,
                    "codec": l.answer.first().map(|(_, c)| c.name()),
                    "held": l.held,
                })
            })
            .collect();
        let rejected: Vec<serde_json::Value> = call
            .rejected
            .iter()
            .map(|(i, why)| json!({"media": i, "reason": why}))
            .collect();
        let mut event = json!({
            "event": "call",
            "state": state,
            "call_id": &*call.id,
            "peer": call.peer.to_string(),
            "transport": call.transport.name(),
            "legs": legs,
        });
        if !rejected.is_empty() {
            event["not_recorded"] = json!(rejected);
        }
        if let Some(reason) = reason {
            event["reason"] = json!(reason);
        }
        self.emit(event);
    }

    /// Ends a call: its legs stop, their summaries follow, and with `send_bye` the peer is
    /// told (the call did not end by its BYE).
    fn end(&mut self, id: String, reason: &str, send_bye: bool) {
        self.emit_call(&id, "ended", Some(reason));
        let Some(mut call) = self.calls.remove(&id) else {
            return;
        };
        // the legs hand over the audio they hold, then the summaries are asked for: the finish
        // must reach the worker after the last audio
        let _ = call.stop.send(true);
        let tasks: Vec<JoinHandle<()>> = call
            .legs
            .drain(..)
            .map(|leg| {
                self.ports.release(leg.port);
                leg.task
            })
            .collect();
        if send_bye {
            call.local_cseq += 1;
            let ip = self.local_ip(call.peer);
            let host = if ip.is_ipv6() {
                format!("[{ip}]")
            } else {
                ip.to_string()
            };
            let bye = format!(
                "BYE {} SIP/2.0\r\nVia: SIP/2.0/{} {host}:{};branch=z9hG4bK{}\r\nMax-Forwards: 70\r\nFrom: {}\r\nTo: {}\r\n\
                 Call-ID: {}\r\nCSeq: {} BYE\r\nReason: SIP;text=\"{reason}\"\r\nContent-Length: 0\r\n\r\n",
                call.remote_target,
                call.transport.name(),
                self.port_for(&call.transport),
                unique_token(),
                call.our_to,
                call.their_from,
                call.id,
                call.local_cseq
            );
            call.transport.send(bye.into_bytes(), call.peer);
        }
        let finish = Job::Finish {
            conn: call.conn,
            label: call.id.to_string(),
            reply: call.reply.clone(),
        };
        let shared = Arc::clone(&self.shared);
        let conn = call.conn;
        tokio::spawn(async move {
            for mut task in tasks {
                // a leg stuck for a second is cut; its audio so far is scored all the same
                if tokio::time::timeout(Duration::from_secs(1), &mut task).await.is_err() {
                    task.abort();
                }
            }
            shared.engine.send(conn, finish);
        });
        self.shared
            .metrics
            .calls_open
            .store(self.calls.len() as u64, Ordering::Relaxed);
    }

    fn tick(&mut self) {
        let now = Instant::now();
        let now_ms = self.shared.now_ms();
        let idle_ms = self.config.idle_timeout.as_millis() as u64;
        let mut ending: Vec<(String, &'static str)> = Vec::new();
        for (id, call) in &mut self.calls {
            if let Some((next, interval, give_up)) = call.retransmit {
                if now >= give_up {
                    ending.push((id.clone(), "no ACK for the 200 OK"));
                    continue;
                }
                if now >= next {
                    call.transport.send(call.last_answer.clone(), call.peer);
                    let interval = (interval * 2).min(T2);
                    call.retransmit = Some((now + interval, interval, give_up));
                }
            }
            if !call.legs.is_empty() && call.legs.iter().all(|l| l.held) {
                // a call on hold sends no RTP by design: the idle time counts from its resumption
                call.last_audio.store(now_ms, Ordering::Relaxed);
            } else if now_ms.saturating_sub(call.last_audio.load(Ordering::Relaxed)) > idle_ms {
                ending.push((id.clone(), "no RTP for --idle-seconds"));
            } else if call
                .session_expires
                .is_some_and(|e| now.duration_since(call.refreshed) > e)
            {
                ending.push((id.clone(), "session timer expired"));
            }
        }
        for (id, reason) in ending {
            self.end(id, reason, true);
        }
    }
}

/// Hands a call's events from its scoring worker to the output, until its summaries are done.
async fn forward(mut replies: mpsc::UnboundedReceiver<Reply>, output: std::sync::mpsc::Sender<String>) {
    while let Some(reply) = replies.recv().await {
        match reply {
            Reply::Event(text) => {
                let _ = output.send(text);
            }
            Reply::Done => return,
        }
    }
}

async fn udp_loop(socket: Arc<UdpSocket>, shared: Arc<Shared>, registry: mpsc::Sender<Input>) {
    let mut buf = vec![0u8; 65_536];
    loop {
        let Ok((n, from)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        deliver(&buf[..n], from, Transport::Udp(Arc::clone(&socket)), &shared, &registry);
    }
}

/// Parses one message and queues it for the registry; malformed or refused ones are counted.
fn deliver(bytes: &[u8], from: SocketAddr, transport: Transport, shared: &Shared, registry: &mpsc::Sender<Input>) {
    if !shared.allowed(from.ip()) {
        Metrics::inc(&shared.metrics.sip_refused);
        return;
    }
    if bytes.iter().all(|&b| b == b'\r' || b == b'\n') {
        return; // a keep-alive
    }
    match Message::parse(bytes) {
        Ok(message) => {
            Metrics::inc(&shared.metrics.sip_messages);
            let input = Input::Sip {
                message: Box::new(message),
                from,
                transport,
            };
            if registry.try_send(input).is_err() {
                Metrics::inc(&shared.metrics.sip_refused);
            }
        }
        Err(_) => Metrics::inc(&shared.metrics.sip_malformed),
    }
}

/// Accepts SIP over TCP, or over TLS when `tls` is given (the handshake bounded by
/// [`TLS_HANDSHAKE`]); both share one cap of connections, [`MAX_TCP_CONNECTIONS`] each listener.
async fn tcp_loop(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shared: Arc<Shared>,
    registry: mpsc::Sender<Input>,
) {
    let slots = Arc::new(Semaphore::new(MAX_TCP_CONNECTIONS));
    loop {
        let Ok((stream, from)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        if !shared.allowed(from.ip()) {
            Metrics::inc(&shared.metrics.sip_refused);
            continue;
        }
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            Metrics::inc(&shared.metrics.sip_refused);
            continue;
        };
        let shared = Arc::clone(&shared);
        let registry = registry.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let _slot = slot;
            match tls {
                None => stream_connection(stream, from, Transport::Tcp, shared, registry).await,
                Some(acceptor) => match tokio::time::timeout(TLS_HANDSHAKE, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => stream_connection(stream, from, Transport::Tls, shared, registry).await,
                    // not TLS, a certificate the client refused, or too slow: nothing to answer
                    _ => Metrics::inc(&shared.metrics.sip_malformed),
                },
            }
        });
    }
}

/// One SIP connection over a byte stream (TCP, or TLS over TCP): messages framed by their
/// Content-Length go to the registry with the transport `kind` makes of the writer's sender.
async fn stream_connection<S>(
    stream: S,
    from: SocketAddr,
    kind: fn(mpsc::Sender<Vec<u8>>) -> Transport,
    shared: Arc<Shared>,
    registry: mpsc::Sender<Input>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(64);
    let transport = kind(tx);
    let (mut read, mut write) = tokio::io::split(stream);
    let writer = tokio::spawn(async move {
        while let Some(bytes) = rx.recv().await {
            if write.write_all(&bytes).await.is_err() {
                return;
            }
        }
    });
    let mut buf: Vec<u8> = Vec::with_capacity(8192);
    let mut chunk = vec![0u8; 16_384];
    loop {
        match sip::frame_length(&buf) {
            Ok(Some(n)) => {
                let message: Vec<u8> = buf.drain(..n).collect();
                deliver(&message, from, transport.clone(), &shared, &registry);
                continue;
            }
            Ok(None) => {}
            Err(SipError::TooLarge) | Err(SipError::Malformed(_)) => {
                // the stream cannot be framed any more: answer what can be, and close
                Metrics::inc(&shared.metrics.sip_malformed);
                transport.send(
                    b"SIP/2.0 513 Message Too Large\r\nContent-Length: 0\r\n\r\n".to_vec(),
                    from,
                );
                break;
            }
        }
        match tokio::time::timeout(TCP_IDLE, read.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => break,
        }
    }
    drop(transport);
    let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
}

/// Runs the registry until it is told to shut down and every call has ended.
async fn registry_loop(mut registry: Registry, mut inputs: mpsc::Receiver<Input>) {
    while let Some(input) = inputs.recv().await {
        match input {
            Input::Sip {
                message,
                from,
                transport,
            } => registry.handle(*message, from, transport),
            Input::Tick => {
                registry.tick();
                if registry
                    .drain_until
                    .is_some_and(|t| Instant::now() >= t || registry.calls.is_empty())
                {
                    break;
                }
            }
            Input::Drain => {
                registry.drain_until = Some(Instant::now() + registry.config.drain_timeout);
            }
            Input::Shutdown => break,
        }
    }
    let ids: Vec<String> = registry.calls.keys().cloned().collect();
    for id in ids {
        registry.end(id, "the recording server is shutting down", true);
    }
}

/// `/healthz` and `/metrics`, to allowed addresses only.
fn http_router(shared: Arc<Shared>, model: Arc<LoadedModel>) -> axum::Router {
    use axum::extract::{ConnectInfo, State};
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;
    use axum::routing::get;
    type Ctx = (Arc<Shared>, Arc<LoadedModel>);
    fn refused(shared: &Shared, from: SocketAddr) -> Option<axum::response::Response> {
        (!shared.allowed(from.ip()))
            .then(|| super::error_response(StatusCode::FORBIDDEN, "this address is not allowed"))
    }
    async fn healthz(
        State((shared, model)): State<Ctx>,
        ConnectInfo(from): ConnectInfo<SocketAddr>,
    ) -> axum::response::Response {
        if let Some(refusal) = refused(&shared, from) {
            return refusal;
        }
        let m = &model.manifest;
        axum::Json(json!({
            "status": "ok",
            "model": {"name": m.name, "version": m.version, "sha256": m.sha256.to_lowercase()},
            "calls_open": shared.metrics.calls_open.load(Ordering::Relaxed),
        }))
        .into_response()
    }
    async fn metrics(
        State((shared, _)): State<Ctx>,
        ConnectInfo(from): ConnectInfo<SocketAddr>,
    ) -> axum::response::Response {
        if let Some(refusal) = refused(&shared, from) {
            return refusal;
        }
        (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            shared.metrics.render_siprec(),
        )
            .into_response()
    }
    axum::Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state((shared, model))
}

/// Where the server listens, once it does.
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    pub sip: SocketAddr,
    /// SIP over TLS, when served.
    pub tls: Option<SocketAddr>,
    pub http: Option<SocketAddr>,
}

/// The TLS server side from the configured PEM files, or a sentence saying what is wrong
/// with them.
fn tls_acceptor(tls: &TlsConfig) -> Result<tokio_rustls::TlsAcceptor> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    use tokio_rustls::rustls;
    let unreadable = |what: &str, path: &std::path::Path, e: &dyn std::fmt::Display| {
        Error::Config(format!("cannot read the TLS {what} {}: {e}", path.display()))
    };
    let chain = CertificateDer::pem_file_iter(&tls.certificate)
        .map_err(|e| unreadable("certificate", &tls.certificate, &e))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| unreadable("certificate", &tls.certificate, &e))?;
    if chain.is_empty() {
        return Err(Error::Config(format!(
            "the TLS certificate file {} holds no PEM certificate",
            tls.certificate.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(&tls.key).map_err(|e| unreadable("private key", &tls.key, &e))?;
    // ring, not aws-lc-rs: no C toolchain beyond cc at build time. rustls marks ring's provider
    // deprecated for lacking post-quantum key exchange; SBCs offer classical ECDHE for SIP today.
    #[allow(deprecated)]
    let provider = rustls::crypto::ring::default_provider();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("TLS: {e}")))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| {
            Error::Config(format!(
                "the TLS certificate {} and key {} do not make a server identity: {e}",
                tls.certificate.display(),
                tls.key.display()
            ))
        })?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// Runs the recording server until Ctrl-C or SIGTERM; `on_ready` gets the bound addresses.
pub fn run(config: SiprecConfig, model: LoadedModel, detector: Detector, on_ready: impl FnOnce(Bound)) -> Result<()> {
    for listen in std::iter::once(config.listen).chain(config.tls.as_ref().map(|t| t.listen)) {
        if config.allow.is_empty() && !listen.ip().is_loopback() {
            return Err(Error::Config(format!(
                "listening on {listen} takes SIP from the network: name who may send it (--allow CIDR)"
            )));
        }
    }
    let acceptor = config.tls.as_ref().map(tls_acceptor).transpose()?;
    let (first, last) = config.rtp_ports;
    if first == 0 || last < first.saturating_add(1) {
        return Err(Error::Config(format!(
            "the RTP port range {first}-{last} must hold at least one even port above 0"
        )));
    }
    if config.max_calls == 0 {
        return Err(Error::Config("at least one call must be allowed".into()));
    }
    if let Some(dir) = &config.record
        && !dir.is_dir()
    {
        return Err(Error::Config(format!(
            "the recording folder {} is not a folder",
            dir.display()
        )));
    }
    let workers = config.workers.clamp(1, 256);
    // at least two threads: the SIP and RTP sockets must not wait behind one another
    let runtime = super::async_runtime(workers.clamp(2, 4))?;
    let model = Arc::new(model);
    let metrics = Arc::new(Metrics::default());
    let engine = Engine::start(&model, &detector, &config.policy, workers, &metrics)?;
    let shared = Arc::new(Shared {
        engine,
        metrics: Arc::clone(&metrics),
        allow: config.allow.clone(),
        buffer: Arc::new(Semaphore::new(
            config
                .max_buffered_samples
                .clamp(CALL_BUFFER_SAMPLES, Semaphore::MAX_PERMITS),
        )),
        epoch: Instant::now(),
        summaries_pending: AtomicU64::new(0),
        update_interval_s: config.policy.update_interval_s,
    });
    // events: one writer thread for standard output, and the webhook's queue
    let (output, lines) = std::sync::mpsc::channel::<String>();
    let webhook = config
        .webhook
        .as_deref()
        .map(|url| webhook::Webhook::start(url, Arc::clone(&metrics)))
        .transpose()?;
    let writer = std::thread::Builder::new()
        .name("synthscan-events".into())
        .spawn(move || {
            use std::io::Write;
            let stdout = std::io::stdout();
            for line in lines {
                let mut out = stdout.lock();
                if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
                    // a closed standard output: the webhook may still want the events
                }
                if let Some(hook) = &webhook {
                    hook.offer(line);
                }
            }
        })
        .map_err(|e| Error::Runtime(format!("cannot start the event writer: {e}")))?;
    let served: Result<()> = runtime.block_on(async {
        let udp = UdpSocket::bind(config.listen)
            .await
            .map_err(|e| Error::Config(format!("cannot listen for SIP on UDP {}: {e}", config.listen)))?;
        let sip = udp
            .local_addr()
            .map_err(|e| Error::Runtime(format!("cannot read the bound address: {e}")))?;
        let tcp = TcpListener::bind(sip)
            .await
            .map_err(|e| Error::Config(format!("cannot listen for SIP on TCP {sip}: {e}")))?;
        let tls = match &config.tls {
            Some(tls) => Some(
                TcpListener::bind(tls.listen)
                    .await
                    .map_err(|e| Error::Config(format!("cannot listen for SIP over TLS on {}: {e}", tls.listen)))?,
            ),
            None => None,
        };
        let tls_addr = tls.as_ref().and_then(|l| l.local_addr().ok());
        let http = match config.http {
            Some(addr) => Some(
                tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|e| Error::Config(format!("cannot listen for HTTP on {addr}: {e}")))?,
            ),
            None => None,
        };
        let http_addr = http.as_ref().and_then(|l| l.local_addr().ok());
        let (inputs_tx, inputs_rx) = mpsc::channel(REGISTRY_QUEUE);
        let registry = Registry {
            shared: Arc::clone(&shared),
            config: config.clone(),
            sip_port: sip.port(),
            tls_port: tls_addr.map(|a| a.port()),
            calls: HashMap::new(),
            ports: PortPool::new(config.rtp_ports),
            output: output.clone(),
            drain_until: None,
            next_conn: 0,
        };
        let udp = Arc::new(udp);
        tokio::spawn(udp_loop(Arc::clone(&udp), Arc::clone(&shared), inputs_tx.clone()));
        tokio::spawn(tcp_loop(tcp, None, Arc::clone(&shared), inputs_tx.clone()));
        if let (Some(listener), Some(acceptor)) = (tls, acceptor) {
            tokio::spawn(tcp_loop(
                listener,
                Some(acceptor),
                Arc::clone(&shared),
                inputs_tx.clone(),
            ));
        }
        if let Some(listener) = http {
            let router = http_router(Arc::clone(&shared), Arc::clone(&model));
            tokio::spawn(async move {
                let _ = axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>()).await;
            });
        }
        let ticker = inputs_tx.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_millis(100));
            loop {
                every.tick().await;
                if ticker.send(Input::Tick).await.is_err() {
                    return;
                }
            }
        });
        let signals = inputs_tx.clone();
        tokio::spawn(async move {
            super::shutdown_signal().await;
            eprintln!("synthscan: shutting down: no new calls; waiting for open calls");
            let _ = signals.send(Input::Drain).await;
            super::shutdown_signal().await;
            let _ = signals.send(Input::Shutdown).await;
        });
        on_ready(Bound {
            sip,
            tls: tls_addr,
            http: http_addr,
        });
        registry_loop(registry, inputs_rx).await;
        // the summaries of the last calls: wait until the workers have sent them
        let deadline = Instant::now() + Duration::from_secs(10);
        while shared.summaries_pending.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    });
    runtime.shutdown_timeout(Duration::from_millis(500));
    drop(output);
    let _ = writer.join();
    served
}
