//! Just enough SIP and SDP to tie RTP streams to calls in a capture: a message's Call-ID and,
//! in its SDP body, the address and port each audio stream is received on and the payload
//! types they carry. Whatever does not parse is not signalling.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use super::rtp::Codec;

/// What one SIP message with an SDP body announces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    pub call_id: String,
    /// Where the sender of this SDP receives audio.
    pub media: Vec<SocketAddr>,
    /// Payload type -> codec, from `a=rtpmap`.
    pub rtpmap: HashMap<u8, Codec>,
}

/// Reads a SIP message (request or response) with an SDP body; `None` for anything else.
pub fn parse(datagram: &[u8]) -> Option<Offer> {
    let text = std::str::from_utf8(datagram).ok()?;
    let first = text.lines().next()?;
    let is_sip = first.starts_with("SIP/2.0 ") || first.ends_with(" SIP/2.0");
    if !is_sip {
        return None;
    }
    let (head, body) = text.split_once("\r\n\r\n").or_else(|| text.split_once("\n\n"))?;
    let mut call_id = None;
    for line in head.lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name.eq_ignore_ascii_case("Call-ID") || name == "i" {
            call_id = Some(value.trim().chars().take(256).collect::<String>());
        }
    }
    let call_id = call_id?;
    let mut session_addr: Option<IpAddr> = None;
    let mut audio_ports: Vec<(u16, Option<IpAddr>)> = Vec::new();
    let mut in_audio = false;
    let mut rtpmap = HashMap::new();
    for line in body.lines() {
        let line = line.trim_end();
        if let Some(c) = line.strip_prefix("c=") {
            // c=IN IP4 192.0.2.1
            let addr = c
                .split_whitespace()
                .nth(2)
                .and_then(|a| a.split('/').next()?.parse().ok());
            // before any m= line it is the session's; after an audio m= line, that stream's
            match audio_ports.last_mut() {
                Some(last) if in_audio => last.1 = addr,
                None if !in_audio => session_addr = addr,
                _ => {}
            }
        } else if let Some(m) = line.strip_prefix("m=") {
            // m=audio 49170 RTP/AVP 0 8 101
            let mut parts = m.split_whitespace();
            in_audio = parts.next() == Some("audio");
            if in_audio && let Some(port) = parts.next().and_then(|p| p.parse::<u16>().ok()) {
                audio_ports.push((port, None));
            }
        } else if let Some(map) = line.strip_prefix("a=rtpmap:") {
            // a=rtpmap:101 telephone-event/8000
            let mut parts = map.split_whitespace();
            let pt = parts.next().and_then(|p| p.parse::<u8>().ok());
            let name = parts.next().and_then(|n| n.split('/').next());
            if let (Some(pt), Some(name)) = (pt, name) {
                rtpmap.insert(pt, Codec::from_name(name));
            }
        }
    }
    let media = audio_ports
        .into_iter()
        .filter(|(port, _)| *port != 0)
        .filter_map(|(port, addr)| Some(SocketAddr::new(addr.or(session_addr)?, port)))
        .collect();
    Some(Offer { call_id, media, rtpmap })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invite_with_sdp_names_its_call_media_address_and_codecs() {
        let msg = "INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060\r\n\
                   Call-ID: a84b4c76e66710@pc33\r\nContent-Type: application/sdp\r\n\r\n\
                   v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
                   m=audio 49170 RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n";
        let o = parse(msg.as_bytes()).expect("an offer");
        assert_eq!(o.call_id, "a84b4c76e66710@pc33");
        assert_eq!(o.media, vec!["10.0.0.1:49170".parse().unwrap()]);
        assert_eq!(o.rtpmap[&8], Codec::Pcma);
        assert_eq!(o.rtpmap[&101], Codec::TelephoneEvent);
        assert!(parse(b"GET / HTTP/1.1\r\n\r\n").is_none());
        assert!(parse(b"SIP/2.0 200 OK\r\nCall-ID: x\r\n\r\n").is_some_and(|o| o.media.is_empty()));
    }
}
