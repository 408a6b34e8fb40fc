//! SDP (RFC 8866), the part a recorder needs: the session's connection address and, per media
//! line, its kind, port, payload types, codecs, direction and SIPREC label (RFC 4574).

use std::collections::HashMap;
use std::net::IpAddr;

use super::rtp::Codec;

/// Media lines at most in one description; a SIPREC call has one per recorded stream.
pub const MAX_MEDIA: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }
}

/// One `m=` line and its attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    pub kind: String,
    /// 0 for a stream that is rejected or removed.
    pub port: u16,
    pub protocol: String,
    /// Payload types in the offer's order of preference.
    pub formats: Vec<u8>,
    pub connection: Option<IpAddr>,
    /// Payload type -> codec, from `a=rtpmap` (static types need none).
    pub rtpmap: HashMap<u8, Codec>,
    pub direction: Option<Direction>,
    /// `a=label:`, which SIPREC metadata refers to.
    pub label: Option<String>,
    /// The values of `a=crypto:` (SDES keys of an SRTP stream, RFC 4568), in the offer's order;
    /// at most 8.
    pub crypto: Vec<String>,
}

impl Media {
    /// The codec of a payload type: the rtpmap's, else the static assignment.
    pub fn codec(&self, pt: u8) -> Codec {
        self.rtpmap.get(&pt).cloned().unwrap_or_else(|| Codec::from_static(pt))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Session {
    pub connection: Option<IpAddr>,
    pub direction: Option<Direction>,
    pub media: Vec<Media>,
}

fn connection(value: &str) -> Option<IpAddr> {
    // c=IN IP4 192.0.2.1[/ttl]
    value.split_whitespace().nth(2)?.split('/').next()?.parse().ok()
}

fn direction(attribute: &str) -> Option<Direction> {
    match attribute {
        "sendrecv" => Some(Direction::SendRecv),
        "sendonly" => Some(Direction::SendOnly),
        "recvonly" => Some(Direction::RecvOnly),
        "inactive" => Some(Direction::Inactive),
        _ => None,
    }
}

/// Parses a session description; `None` when it has no `v=` line or too many media lines.
/// Lines it does not need are skipped.
pub fn parse(text: &str) -> Option<Session> {
    let mut session = Session::default();
    let mut seen_version = false;
    for line in text.lines() {
        let line = line.trim_end();
        let Some((kind, value)) = line.split_once('=') else {
            continue;
        };
        match kind {
            "v" => seen_version = true,
            "c" => match session.media.last_mut() {
                Some(m) => m.connection = connection(value),
                None => session.connection = connection(value),
            },
            "m" => {
                if session.media.len() == MAX_MEDIA {
                    return None;
                }
                let mut parts = value.split_whitespace();
                let kind = parts.next().unwrap_or_default().to_string();
                let port = parts
                    .next()
                    .and_then(|p| p.split('/').next()?.parse().ok())
                    .unwrap_or(0);
                let protocol = parts.next().unwrap_or_default().to_string();
                let formats = parts.filter_map(|f| f.parse().ok()).take(64).collect();
                session.media.push(Media {
                    kind,
                    port,
                    protocol,
                    formats,
                    connection: None,
                    rtpmap: HashMap::new(),
                    direction: None,
                    label: None,
                    crypto: Vec::new(),
                });
            }
            "a" => {
                let (name, arg) = value.split_once(':').unwrap_or((value, ""));
                match (name, session.media.last_mut()) {
                    ("rtpmap", Some(m)) => {
                        // a=rtpmap:101 telephone-event/8000
                        let mut parts = arg.split_whitespace();
                        let pt = parts.next().and_then(|p| p.parse::<u8>().ok());
                        let name = parts.next().and_then(|n| n.split('/').next());
                        if let (Some(pt), Some(name)) = (pt, name)
                            && m.rtpmap.len() < 64
                        {
                            m.rtpmap.insert(pt, Codec::from_name(name));
                        }
                    }
                    ("label", Some(m)) => m.label = Some(arg.trim().chars().take(64).collect()),
                    ("crypto", Some(m)) if m.crypto.len() < 8 => m.crypto.push(arg.trim().chars().take(256).collect()),
                    (other, Some(m)) if direction(other).is_some() => m.direction = direction(other),
                    (other, None) if direction(other).is_some() => session.direction = direction(other),
                    _ => {}
                }
            }
            _ => {}
        }
    }
    seen_version.then_some(session)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_siprec_offer_has_a_labelled_sendonly_stream_per_participant() {
        let sdp = "v=0\r\no=SRC 1 1 IN IP4 198.51.100.1\r\ns=-\r\nc=IN IP4 198.51.100.1\r\nt=0 0\r\n\
                   m=audio 10000 RTP/AVP 0 9 101\r\na=rtpmap:101 telephone-event/8000\r\na=label:1\r\na=sendonly\r\n\
                   m=audio 10002 RTP/AVP 8\r\nc=IN IP4 198.51.100.2\r\na=label:2\r\na=sendonly\r\n\
                   m=video 0 RTP/AVP 96\r\n";
        let s = parse(sdp).unwrap();
        assert_eq!(s.media.len(), 3);
        let (a, b) = (&s.media[0], &s.media[1]);
        assert_eq!(
            (a.port, a.label.as_deref(), a.direction),
            (10000, Some("1"), Some(Direction::SendOnly))
        );
        assert_eq!(a.formats, vec![0, 9, 101]);
        assert_eq!(
            (a.codec(0), a.codec(9), a.codec(101)),
            (Codec::Pcmu, Codec::G722, Codec::TelephoneEvent)
        );
        assert_eq!(a.connection, None);
        assert_eq!(s.connection, "198.51.100.1".parse().ok());
        assert_eq!(b.connection, "198.51.100.2".parse().ok());
        assert_eq!(s.media[2].port, 0);
        assert!(parse("no sdp here").is_none());
    }
}
