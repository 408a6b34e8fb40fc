//! SIP as `synthscan siprec` receives it: any bytes as a UDP datagram (a whole message) and as
//! a TCP byte stream (framed by Content-Length), then the message's body parts as a multipart
//! body, SDP and SIPREC metadata. Checks: no panic; a framed message is never longer than the
//! buffer or the size limit; a parsed message has a Call-ID and at most the allowed headers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use synthscan::packet::{metadata, sdp, sip};

fuzz_target!(|data: &[u8]| {
    if let Ok(Some(n)) = sip::frame_length(data) {
        assert!(n <= data.len());
        assert!(n <= sip::MAX_MESSAGE_BYTES + data.iter().take_while(|&&b| b == b'\r' || b == b'\n').count());
    }
    if let Ok(message) = sip::Message::parse(data) {
        assert!(message.header("Call-ID").is_some());
        assert!(message.headers.len() <= 128);
        let _ = message.check_required_headers();
        let _ = message.cseq();
        let _ = message.header_param("To", "tag");
        for (_, part) in message.parts() {
            let text = String::from_utf8_lossy(&part);
            if let Some(session) = sdp::parse(&text) {
                assert!(session.media.len() <= sdp::MAX_MEDIA);
            }
            let _ = metadata::parse(&part);
        }
    }
    // the body parsers on their own, on raw bytes
    let text = String::from_utf8_lossy(data);
    let _ = sdp::parse(&text);
    let _ = metadata::parse(data);
    let _ = sip::multipart("multipart/mixed;boundary=b", data);
});
