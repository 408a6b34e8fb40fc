//! SIP messages (RFC 3261): the start line, the headers (compact forms and folded lines
//! included) and the body, parsed without trusting a byte of them; the framing of a TCP stream
//! by Content-Length; multipart bodies (RFC 2046) as SIPREC sends them; and the offer a capture
//! reads from a message's SDP to tie RTP streams to calls.
//!
//! Written here rather than taken from a crate: the one SIP parser on crates.io (rsip 0.4) has
//! had no release since 2022 and states no licence in its metadata, and the server needs only
//! this subset, fuzzed with the other parsers (FUZZING.md).

use std::collections::HashMap;
use std::net::SocketAddr;

use super::rtp::Codec;
use super::sdp;

/// Largest SIP message accepted (head and body): a SIPREC INVITE with its metadata is a few
/// kilobytes; a UDP datagram cannot exceed 64 KiB anyway.
pub const MAX_MESSAGE_BYTES: usize = 65_535;
/// Most header lines in one message.
const MAX_HEADERS: usize = 128;

/// Why bytes are not a SIP message this server can take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SipError {
    #[error("the message is over {MAX_MESSAGE_BYTES} bytes")]
    TooLarge,
    #[error("the message is not SIP: {0}")]
    Malformed(String),
}

fn malformed(what: impl Into<String>) -> SipError {
    SipError::Malformed(what.into())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    Request { method: String, uri: String },
    Response { code: u16, reason: String },
}

/// One SIP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub start: StartLine,
    /// Header names in their long form, as sent (case kept); values trimmed, folded lines
    /// joined.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// The long form of a compact header name (RFC 3261 7.3.3, RFC 4028 for `x`).
fn long_name(name: &str) -> &str {
    match name {
        "i" | "I" => "Call-ID",
        "f" | "F" => "From",
        "t" | "T" => "To",
        "v" | "V" => "Via",
        "m" | "M" => "Contact",
        "l" | "L" => "Content-Length",
        "c" | "C" => "Content-Type",
        "k" | "K" => "Supported",
        "x" | "X" => "Session-Expires",
        "s" | "S" => "Subject",
        "e" | "E" => "Content-Encoding",
        _ => name,
    }
}

/// Where the head ends: the index after the blank line, or `None` when it has not arrived.
fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

/// The Content-Length of a head, if it states one.
fn content_length(head: &str) -> Result<Option<usize>, SipError> {
    for line in head.split("\r\n").skip(1) {
        if let Some((name, value)) = line.split_once(':')
            && long_name(name.trim()).eq_ignore_ascii_case("Content-Length")
        {
            return value
                .trim()
                .parse::<usize>()
                .map(Some)
                .map_err(|_| malformed("Content-Length is not a number"));
        }
    }
    Ok(None)
}

/// On a stream transport (TCP), the length of the first whole message in `buf`: `Ok(None)`
/// until it has all arrived. Keep-alive CRLFs before a message are part of it. A stream
/// message must state its Content-Length (RFC 3261 18.3).
pub fn frame_length(buf: &[u8]) -> Result<Option<usize>, SipError> {
    let skip = buf.iter().take_while(|&&b| b == b'\r' || b == b'\n').count();
    let rest = &buf[skip..];
    let Some(end) = head_end(rest) else {
        return if rest.len() > MAX_MESSAGE_BYTES {
            Err(SipError::TooLarge)
        } else {
            Ok(None)
        };
    };
    let head = std::str::from_utf8(&rest[..end]).map_err(|_| malformed("the head is not UTF-8"))?;
    let length = content_length(head)?.ok_or_else(|| malformed("a message on TCP without Content-Length"))?;
    let total = end.checked_add(length).ok_or(SipError::TooLarge)?;
    if total > MAX_MESSAGE_BYTES {
        return Err(SipError::TooLarge);
    }
    Ok((rest.len() >= total).then_some(skip + total))
}

impl Message {
    /// Parses one whole message (a UDP datagram, or a frame cut by [`frame_length`]). The body
    /// is what Content-Length says (the rest of the datagram when it says nothing).
    pub fn parse(bytes: &[u8]) -> Result<Message, SipError> {
        if bytes.len() > MAX_MESSAGE_BYTES {
            return Err(SipError::TooLarge);
        }
        let skip = bytes.iter().take_while(|&&b| b == b'\r' || b == b'\n').count();
        let bytes = &bytes[skip..];
        let end = head_end(bytes).ok_or_else(|| malformed("no blank line after the headers"))?;
        let head = std::str::from_utf8(&bytes[..end - 4]).map_err(|_| malformed("the head is not UTF-8"))?;
        let mut lines = head.split("\r\n");
        let first = lines.next().unwrap_or_default();
        let start = if let Some(rest) = first.strip_prefix("SIP/2.0 ") {
            let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
            let code = code
                .parse::<u16>()
                .ok()
                .filter(|c| (100..700).contains(c))
                .ok_or_else(|| malformed("a status line without a status code"))?;
            StartLine::Response {
                code,
                reason: reason.to_string(),
            }
        } else {
            let mut parts = first.split(' ');
            let (Some(method), Some(uri), Some("SIP/2.0"), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return Err(malformed("the first line is neither a request nor a status line"));
            };
            if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase() || b == b'-') || uri.is_empty() {
                return Err(malformed("a request line with a bad method or URI"));
            }
            StartLine::Request {
                method: method.to_string(),
                uri: uri.to_string(),
            }
        };
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in lines {
            if line.starts_with(' ') || line.starts_with('\t') {
                // a folded line continues the header before it
                let last = headers.last_mut().ok_or_else(|| malformed("a folded first header"))?;
                last.1.push(' ');
                last.1.push_str(line.trim());
                continue;
            }
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| malformed("a header line without a colon"))?;
            let name = name.trim();
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(malformed("a header with a bad name"));
            }
            if headers.len() == MAX_HEADERS {
                return Err(malformed(format!("more than {MAX_HEADERS} headers")));
            }
            headers.push((long_name(name).to_string(), value.trim().to_string()));
        }
        let rest = &bytes[end..];
        let body = match content_length(head)? {
            Some(n) if n > rest.len() => return Err(malformed("the body is shorter than Content-Length")),
            Some(n) => rest[..n].to_vec(),
            None => rest.to_vec(),
        };
        let message = Message { start, headers, body };
        if message.header("Call-ID").is_none() {
            return Err(malformed("no Call-ID header"));
        }
        Ok(message)
    }

    /// Whether the message has every header a server needs to answer it (RFC 3261 8.1.1); a
    /// capture reads messages without them, a server refuses them.
    pub fn check_required_headers(&self) -> Result<(), SipError> {
        for required in ["CSeq", "From", "To", "Via"] {
            if self.header(required).is_none() {
                return Err(malformed(format!("no {required} header")));
            }
        }
        if self.cseq().is_none() {
            return Err(malformed("a CSeq without a number and a method"));
        }
        Ok(())
    }

    /// The first value of a header (long or compact name, any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = long_name(name);
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a header, in order.
    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        let name = long_name(name);
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn method(&self) -> Option<&str> {
        match &self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    pub fn call_id(&self) -> &str {
        self.header("Call-ID").unwrap_or_default()
    }

    /// The CSeq number and method.
    pub fn cseq(&self) -> Option<(u32, &str)> {
        let mut parts = self.header("CSeq")?.split_whitespace();
        Some((parts.next()?.parse().ok()?, parts.next()?))
    }

    /// A parameter of a header's value (`;tag=...` of From and To).
    pub fn header_param(&self, name: &str, param: &str) -> Option<String> {
        header_param(self.header(name)?, param)
    }

    /// The body parts by content type: the whole body for a single type, each part of a
    /// multipart body.
    pub fn parts(&self) -> Vec<(String, Vec<u8>)> {
        let content_type = self.header("Content-Type").unwrap_or("application/sdp");
        multipart(content_type, &self.body).unwrap_or_else(|| vec![(media_type(content_type), self.body.clone())])
    }
}

/// `;param=value` of a header value (outside angle brackets), unquoted.
pub fn header_param(value: &str, param: &str) -> Option<String> {
    let outside = value.rsplit_once('>').map_or(value, |(_, rest)| rest);
    outside.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        k.trim()
            .eq_ignore_ascii_case(param)
            .then(|| v.trim().trim_matches('"').to_string())
    })
}

/// The media type of a Content-Type, lowercased, without parameters.
fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// The parts of a `multipart/*` body as (media type, bytes); `None` when it is not multipart.
pub fn multipart(content_type: &str, body: &[u8]) -> Option<Vec<(String, Vec<u8>)>> {
    if !media_type(content_type).starts_with("multipart/") {
        return None;
    }
    let boundary = header_param(&format!("x{content_type}"), "boundary")?;
    if boundary.is_empty() || boundary.len() > 70 {
        return None;
    }
    let delimiter = format!("--{boundary}");
    let text = String::from_utf8_lossy(body);
    let mut parts = Vec::new();
    for chunk in text.split(delimiter.as_str()).skip(1) {
        if chunk.starts_with("--") {
            break;
        }
        // bodies are CRLF by the book; bare LF is read too (some stacks build bodies by hand)
        let chunk = chunk
            .strip_prefix("\r\n")
            .or_else(|| chunk.strip_prefix('\n'))
            .unwrap_or(chunk);
        let (head, content) = chunk
            .split_once("\r\n\r\n")
            .or_else(|| chunk.split_once("\n\n"))
            .unwrap_or(("", chunk));
        let kind = head
            .lines()
            .find_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.trim().eq_ignore_ascii_case("Content-Type").then(|| media_type(v))
            })
            .unwrap_or_else(|| "text/plain".into());
        let content = content
            .strip_suffix("\r\n")
            .or_else(|| content.strip_suffix('\n'))
            .unwrap_or(content);
        parts.push((kind, content.as_bytes().to_vec()));
    }
    Some(parts)
}

/// What one SIP message with an SDP body announces (a capture's view).
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
    let message = Message::parse(datagram).ok()?;
    let call_id: String = message.call_id().chars().take(256).collect();
    let mut media = Vec::new();
    let mut rtpmap = HashMap::new();
    for (kind, bytes) in message.parts() {
        if kind != "application/sdp" {
            continue;
        }
        let Some(session) = sdp::parse(&String::from_utf8_lossy(&bytes)) else {
            continue;
        };
        for m in session.media.iter().filter(|m| m.kind == "audio" && m.port != 0) {
            if let Some(addr) = m.connection.or(session.connection) {
                media.push(SocketAddr::new(addr, m.port));
            }
            for (pt, codec) in &m.rtpmap {
                rtpmap.insert(*pt, codec.clone());
            }
        }
    }
    Some(Offer { call_id, media, rtpmap })
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &str = "INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\n\
                   f: <sip:a@x>;tag=1\r\nTo: <sip:bob@example.com>\r\nCSeq: 1 INVITE\r\n\
                   i: a84b4c76e66710@pc33\r\nSubject: folded\r\n  on two lines\r\nContent-Type: application/sdp\r\n\r\n\
                   v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
                   m=audio 49170 RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n";

    #[test]
    fn an_invite_with_sdp_names_its_call_media_address_and_codecs() {
        let o = parse(INVITE.as_bytes()).expect("an offer");
        assert_eq!(o.call_id, "a84b4c76e66710@pc33");
        assert_eq!(o.media, vec!["10.0.0.1:49170".parse().unwrap()]);
        assert_eq!(o.rtpmap[&8], Codec::Pcma);
        assert_eq!(o.rtpmap[&101], Codec::TelephoneEvent);
        assert!(parse(b"GET / HTTP/1.1\r\n\r\n").is_none());
        let ok = "SIP/2.0 200 OK\r\nVia: x\r\nFrom: a\r\nTo: b\r\nCSeq: 1 INVITE\r\nCall-ID: x\r\n\r\n";
        assert!(parse(ok.as_bytes()).is_some_and(|o| o.media.is_empty()));
    }

    #[test]
    fn headers_have_long_names_folds_joined_and_params() {
        let m = Message::parse(INVITE.as_bytes()).unwrap();
        assert_eq!(m.method(), Some("INVITE"));
        assert_eq!(m.header("call-id"), Some("a84b4c76e66710@pc33"));
        assert_eq!(m.header("i"), Some("a84b4c76e66710@pc33"));
        assert_eq!(m.header("Subject"), Some("folded on two lines"));
        assert_eq!(m.cseq(), Some((1, "INVITE")));
        assert_eq!(m.header_param("From", "tag").as_deref(), Some("1"));
        assert_eq!(m.header_param("To", "tag"), None);
        assert!(m.body.starts_with(b"v=0"));
    }

    #[test]
    fn tcp_framing_waits_for_the_body_and_refuses_what_it_cannot_frame() {
        let msg = "OPTIONS sip:x SIP/2.0\r\nVia: v\r\nFrom: f\r\nTo: t\r\nCall-ID: c\r\nCSeq: 2 OPTIONS\r\nContent-Length: 4\r\n\r\nabcd";
        let mut stream = b"\r\n\r\n".to_vec();
        stream.extend_from_slice(msg.as_bytes());
        assert_eq!(frame_length(&stream[..stream.len() - 1]), Ok(None));
        assert_eq!(frame_length(&stream), Ok(Some(stream.len())));
        let m = Message::parse(&stream).unwrap();
        assert_eq!(m.body, b"abcd");
        let no_length = "OPTIONS sip:x SIP/2.0\r\nVia: v\r\n\r\n";
        assert!(frame_length(no_length.as_bytes()).is_err());
        let huge = "OPTIONS sip:x SIP/2.0\r\nContent-Length: 99999999\r\n\r\n";
        assert_eq!(frame_length(huge.as_bytes()), Err(SipError::TooLarge));
        assert!(
            Message::parse(b"INVITE sip:x SIP/2.0\r\nVia: v\r\n\r\n").is_err(),
            "no Call-ID"
        );
        let bare = Message::parse(b"INVITE sip:x SIP/2.0\r\nCall-ID: c\r\n\r\n").unwrap();
        assert!(bare.check_required_headers().is_err());
        assert!(Message::parse(b"SIP/2.0 99 Odd\r\n\r\n").is_err());
    }

    #[test]
    fn multipart_bodies_split_into_typed_parts() {
        let body = "--b1\r\nContent-Type: application/sdp\r\n\r\nv=0\r\n\r\n--b1\r\nContent-Type: application/rs-metadata+xml\r\n\
                    Content-Disposition: recording-session\r\n\r\n<recording/>\r\n--b1--\r\n";
        let parts = multipart("multipart/mixed;boundary=b1", body.as_bytes()).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0], ("application/sdp".into(), b"v=0\r\n".to_vec()));
        assert_eq!(
            parts[1],
            ("application/rs-metadata+xml".into(), b"<recording/>".to_vec())
        );
        assert!(multipart("application/sdp", body.as_bytes()).is_none());
        let quoted = multipart("multipart/mixed; boundary=\"b1\"", body.as_bytes()).unwrap();
        assert_eq!(quoted.len(), 2);
        let bare_lf = body.replace("\r\n", "\n");
        let parts = multipart("multipart/mixed;boundary=b1", bare_lf.as_bytes()).unwrap();
        assert_eq!(parts[0], ("application/sdp".into(), b"v=0\n".to_vec()));
        assert_eq!(parts[1].0, "application/rs-metadata+xml");
    }
}
