//! Packet captures: any bytes as pcap or pcapng through link, IP and UDP parsing, SIP/SDP and
//! RTP parsing and stream reassembly. Checks: no panic, and every leg's audio is finite and no
//! longer than its packets can fill (lost and suppressed stretches are bounded per gap).
#![no_main]

use libfuzzer_sys::fuzz_target;
use synthscan::packet;

fuzz_target!(|data: &[u8]| {
    if !packet::is_capture(data) {
        // the parsers of the datagrams themselves, on raw bytes
        let _ = packet::rtp::parse(data);
        let _ = packet::sip::parse(data);
        return;
    }
    if let Ok((calls, counts)) = packet::read_calls(std::io::Cursor::new(data), &packet::CaptureOptions::default()) {
        assert!(counts.udp <= counts.frames);
        for leg in calls.iter().flat_map(|c| &c.legs) {
            assert!(leg.stream.samples.iter().all(|s| s.is_finite() && s.abs() <= 1.0));
            assert!(leg.stream.counts.duplicates <= leg.stream.counts.packets);
        }
    }
});
