//! RTP (RFC 3550): the fixed header, and one stream put back in order. Packets are ordered by
//! extended sequence number (16-bit wrap-around tracked as they arrive), duplicates dropped,
//! and each payload placed by its timestamp, so packets lost or never sent (silence
//! suppression) become silence of the right length.

use crate::audio::g722::{G722_RATE_HZ, G722Decoder};
use crate::audio::{alaw_to_f32, ulaw_to_f32};

/// An RTP packet's header fields and payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpPacket {
    pub payload_type: u8,
    pub marker: bool,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    pub payload: Vec<u8>,
}

/// Parses an RTP packet; `None` for anything that is not one (version, lengths, padding).
pub fn parse(datagram: &[u8]) -> Option<RtpPacket> {
    if datagram.len() < 12 || datagram[0] >> 6 != 2 {
        return None;
    }
    let padding = datagram[0] & 0x20 != 0;
    let extension = datagram[0] & 0x10 != 0;
    let csrc_count = usize::from(datagram[0] & 0x0f);
    let payload_type = datagram[1] & 0x7f;
    // 72-76 are RTCP packet types seen through the RTP bit layout
    if (72..=76).contains(&payload_type) {
        return None;
    }
    let mut start = 12 + 4 * csrc_count;
    if extension {
        let words = u16::from_be_bytes([*datagram.get(start + 2)?, *datagram.get(start + 3)?]);
        start += 4 + 4 * usize::from(words);
    }
    let mut end = datagram.len();
    if padding {
        let pad = usize::from(*datagram.last()?);
        end = end.checked_sub(pad)?;
    }
    if start > end {
        return None;
    }
    Some(RtpPacket {
        payload_type,
        marker: datagram[1] & 0x80 != 0,
        sequence: u16::from_be_bytes([datagram[2], datagram[3]]),
        timestamp: u32::from_be_bytes([datagram[4], datagram[5], datagram[6], datagram[7]]),
        ssrc: u32::from_be_bytes([datagram[8], datagram[9], datagram[10], datagram[11]]),
        payload: datagram[start..end].to_vec(),
    })
}

/// What a payload type carries, from the SDP's rtpmap or the static assignments (RFC 3551).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Codec {
    Pcmu,
    Pcma,
    /// G.722 at 64 kbit/s: 16 kHz audio on an 8 kHz RTP clock (RFC 3551).
    G722,
    /// RFC 4733 telephone events (DTMF): no speech, skipped and counted.
    TelephoneEvent,
    /// Comfort noise (RFC 3389): treated as silence.
    ComfortNoise,
    /// Anything else: reported by name, never guessed at.
    Other(String),
}

impl Codec {
    /// The static payload types (RFC 3551), and 101 as telephone events when no SDP says.
    pub fn from_static(pt: u8) -> Codec {
        match pt {
            0 => Codec::Pcmu,
            8 => Codec::Pcma,
            13 => Codec::ComfortNoise,
            101 => Codec::TelephoneEvent,
            3 => Codec::Other("GSM".into()),
            4 => Codec::Other("G723".into()),
            9 => Codec::G722,
            18 => Codec::Other("G729".into()),
            other => Codec::Other(format!("payload type {other}")),
        }
    }

    /// An SDP encoding name (`a=rtpmap:PT NAME/RATE`).
    pub fn from_name(name: &str) -> Codec {
        match name.to_ascii_uppercase().as_str() {
            "PCMU" => Codec::Pcmu,
            "PCMA" => Codec::Pcma,
            "G722" => Codec::G722,
            "TELEPHONE-EVENT" => Codec::TelephoneEvent,
            "CN" => Codec::ComfortNoise,
            other => Codec::Other(other.to_string()),
        }
    }

    pub fn name(&self) -> String {
        match self {
            Codec::Pcmu => "PCMU".into(),
            Codec::Pcma => "PCMA".into(),
            Codec::G722 => "G722".into(),
            Codec::TelephoneEvent => "telephone-event".into(),
            Codec::ComfortNoise => "CN".into(),
            Codec::Other(n) => n.clone(),
        }
    }

    /// The sample rate of the decoded audio, for the codecs decoded here.
    fn rate_hz(&self) -> Option<u32> {
        match self {
            Codec::Pcmu | Codec::Pcma => Some(8000),
            Codec::G722 => Some(G722_RATE_HZ),
            _ => None,
        }
    }
}

/// Largest jump of the timestamp (in 8 kHz clock ticks) filled with silence (longer ones are a
/// new talk spurt whose gap is not known: the audio is joined end to end).
const MAX_GAP_TICKS: i64 = 8000 * 10;

/// Most audio kept of one leg (4 h at 8 kHz, 2 h at 16 kHz; 460 MB): a crafted capture of many
/// packets with long gaps cannot make the reassembly grow without bound. Beyond, the leg is cut
/// and says so.
pub const MAX_LEG_SAMPLES: usize = 8000 * 3600 * 4;

/// One RTP stream (one SSRC from one address to another), collected, then reassembled.
#[derive(Debug, Default)]
pub struct Stream {
    /// (extended sequence, timestamp, payload type, payload) in arrival order.
    packets: Vec<(u64, u32, u8, Vec<u8>)>,
    highest: Option<u64>,
}

/// What happened to a stream's packets on the way (reports carry these fields as they are).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct StreamCounts {
    /// RTP packets received (duplicates included).
    pub packets: u64,
    /// Packets missing from the sequence (their time is silence).
    pub lost: u64,
    pub duplicates: u64,
    /// Packets that arrived after a later one (put back in order).
    pub late: u64,
    /// RFC 4733 telephone-event packets (skipped).
    pub telephone_events: u64,
}

/// A reassembled stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Reassembled {
    /// Decoded samples, lost packets as silence.
    pub samples: Vec<f32>,
    /// 8000 (PCMU, PCMA) or 16000 (G.722): the rate of the stream's first speech packet; packets
    /// of a codec of another rate in the same stream are counted as not decoded.
    pub rate_hz: u32,
    pub codec: String,
    pub counts: StreamCounts,
    /// Payload types that were not decoded, with their packet counts.
    pub undecoded: Vec<(String, u64)>,
    /// The leg was longer than [`MAX_LEG_SAMPLES`] (or the caller's limit) and was cut there.
    pub cut: bool,
}

/// The extended sequence number of `sequence`: the one closest to the highest so far (RFC
/// 3550 A.1), so 16-bit wrap-around and reordering across it are followed. The first number
/// starts one cycle up, so a packet reordered before it still has a place.
fn extend(highest: Option<u64>, sequence: u16) -> u64 {
    match highest {
        None => u64::from(sequence) + (1 << 16),
        Some(h) => {
            let cycle = h & !0xffff;
            let candidates = [cycle.wrapping_sub(1 << 16), cycle, cycle + (1 << 16)];
            candidates
                .into_iter()
                .map(|c| c + u64::from(sequence))
                .min_by_key(|c| c.abs_diff(h))
                .unwrap_or(cycle + u64::from(sequence))
        }
    }
}

impl Stream {
    /// Adds a packet in arrival order.
    pub fn push(&mut self, p: RtpPacket) {
        let ext = extend(self.highest, p.sequence);
        self.highest = Some(self.highest.map_or(ext, |h| h.max(ext)));
        self.packets.push((ext, p.timestamp, p.payload_type, p.payload));
    }

    pub fn is_empty(&self) -> bool {
        self.packets.is_empty()
    }

    /// Puts the stream back together; `codec_of` names each payload type. At most `limit`
    /// samples (and [`MAX_LEG_SAMPLES`]) are kept.
    pub fn reassemble(mut self, codec_of: &dyn Fn(u8) -> Codec, limit: usize) -> Reassembled {
        let limit = limit.min(MAX_LEG_SAMPLES);
        let late = self.packets.windows(2).filter(|w| w[1].0 < w[0].0).count() as u64;
        let received = self.packets.len() as u64;
        self.packets.sort_by_key(|p| p.0);
        self.packets.dedup_by_key(|p| p.0);
        let duplicates = received - self.packets.len() as u64;
        let mut out = Reassembled {
            samples: Vec::new(),
            rate_hz: 8000,
            codec: String::new(),
            counts: StreamCounts {
                packets: received,
                lost: 0,
                duplicates,
                late,
                telephone_events: 0,
            },
            undecoded: Vec::new(),
            cut: false,
        };
        let mut codecs: Vec<String> = Vec::new();
        let mut previous_ext: Option<u64> = None;
        let mut previous_ts: Option<u32> = None;
        let mut rate: Option<u32> = None;
        let mut g722 = G722Decoder::new();
        let mut position: i64 = 0;
        for (ext, ts, pt, payload) in &self.packets {
            if let Some(prev) = previous_ext {
                out.counts.lost += ext - prev - 1;
            }
            previous_ext = Some(*ext);
            let codec = codec_of(*pt);
            let speech_rate = codec.rate_hz();
            if speech_rate.is_some() && rate.is_none() {
                rate = speech_rate;
            }
            if speech_rate.is_none() || speech_rate != rate {
                match codec {
                    Codec::TelephoneEvent => out.counts.telephone_events += 1,
                    Codec::ComfortNoise => {}
                    other => match out.undecoded.iter_mut().find(|(n, _)| *n == other.name()) {
                        Some((_, count)) => *count += 1,
                        None => out.undecoded.push((other.name(), 1)),
                    },
                }
                continue;
            }
            // samples per 8 kHz clock tick: 1, or 2 for G.722
            let per_tick = i64::from(speech_rate.unwrap_or(8000) / 8000);
            if let Some(prev_ts) = previous_ts {
                let delta = i64::from(ts.wrapping_sub(prev_ts) as i32);
                position = if (0..=MAX_GAP_TICKS).contains(&delta) {
                    position + delta * per_tick
                } else {
                    out.samples.len() as i64
                };
            }
            let at = usize::try_from(position).unwrap_or(0);
            if at + payload.len() * per_tick as usize > limit {
                out.cut = true;
                break;
            }
            if at > out.samples.len() {
                out.samples.resize(at, 0.0);
            }
            // a packet that overlaps the one before it (a repacketising sender) overwrites it
            out.samples.truncate(at);
            match codec {
                Codec::Pcmu => out.samples.extend(payload.iter().map(|&b| ulaw_to_f32(b))),
                Codec::Pcma => out.samples.extend(payload.iter().map(|&b| alaw_to_f32(b))),
                _ => g722.decode(payload, &mut out.samples),
            }
            let name = codec.name();
            if !codecs.contains(&name) {
                codecs.push(name);
            }
            previous_ts = Some(*ts);
        }
        out.rate_hz = rate.unwrap_or(8000);
        out.codec = if codecs.is_empty() {
            out.undecoded
                .iter()
                .map(|(n, _)| n.clone())
                .collect::<Vec<_>>()
                .join("+")
        } else {
            codecs.join("+")
        };
        out
    }
}

/// One RTP stream decoded as it arrives (a live leg of `synthscan siprec`): there is no time to
/// wait for stragglers, so a packet is decoded when it comes; a gap in the timestamps (lost
/// packets, silence suppression) becomes silence of its length, up to [`MAX_GAP_TICKS`] as in
/// a capture's reassembly; a packet older than the newest one played is late and dropped; a
/// new SSRC (the sender restarted its stream) starts a new sequence on the same timeline.
#[derive(Debug, Default)]
pub struct LiveDecoder {
    ssrc: Option<u32>,
    highest: Option<u64>,
    /// The timestamp the next packet is expected to carry.
    next_ts: Option<u32>,
    rate: Option<u32>,
    g722: G722Decoder,
    pub counts: StreamCounts,
    /// Packets of payload types not decoded (other than telephone events).
    pub undecoded: u64,
}

impl LiveDecoder {
    /// Decodes `p` (its payload type named by `codec`) into `out`, after any silence its
    /// timestamp implies. Returns the rate of what was appended, or `None` when the packet gave
    /// no audio (late, a repeat, a telephone event, a codec not decoded).
    pub fn push(&mut self, p: &RtpPacket, codec: &Codec, out: &mut Vec<f32>) -> Option<u32> {
        self.counts.packets += 1;
        if self.ssrc != Some(p.ssrc) {
            self.ssrc = Some(p.ssrc);
            self.highest = None;
        }
        let ext = extend(self.highest, p.sequence);
        if let Some(h) = self.highest {
            if ext == h {
                self.counts.duplicates += 1;
                return None;
            }
            if ext < h {
                self.counts.late += 1;
                return None;
            }
            self.counts.lost += ext - h - 1;
        }
        self.highest = Some(ext);
        let rate = match codec {
            Codec::TelephoneEvent => {
                self.counts.telephone_events += 1;
                return None;
            }
            Codec::ComfortNoise => return None,
            other => match other.rate_hz() {
                Some(rate) => rate,
                None => {
                    self.undecoded += 1;
                    return None;
                }
            },
        };
        if self.rate != Some(rate) {
            // a codec of another rate starts afresh: no silence is carried across the change
            self.rate = Some(rate);
            self.next_ts = None;
            self.g722 = G722Decoder::new();
        }
        let per_tick = (rate / 8000) as usize;
        if let Some(expected) = self.next_ts {
            let delta = i64::from(p.timestamp.wrapping_sub(expected) as i32);
            if (1..=MAX_GAP_TICKS).contains(&delta) {
                out.resize(out.len() + delta as usize * per_tick, 0.0);
            }
        }
        let before = out.len();
        match codec {
            Codec::Pcmu => out.extend(p.payload.iter().map(|&b| ulaw_to_f32(b))),
            Codec::Pcma => out.extend(p.payload.iter().map(|&b| alaw_to_f32(b))),
            _ => self.g722.decode(&p.payload, out),
        }
        let ticks = ((out.len() - before) / per_tick.max(1)) as u32;
        self.next_ts = Some(p.timestamp.wrapping_add(ticks));
        Some(rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(seq: u16, ts: u32, byte: u8) -> RtpPacket {
        RtpPacket {
            payload_type: 0,
            marker: false,
            sequence: seq,
            timestamp: ts,
            ssrc: 7,
            payload: vec![byte; 160],
        }
    }

    #[test]
    fn parse_reads_the_header_and_skips_csrcs_extension_and_padding() {
        let mut d = vec![0xB1, 0x80 | 8, 0x12, 0x34, 0, 0, 1, 0, 0, 0, 0, 9];
        d.extend_from_slice(&[1, 2, 3, 4]); // one CSRC
        d.extend_from_slice(&[0xBE, 0xDE, 0, 1, 9, 9, 9, 9]); // a one-word extension
        d.extend_from_slice(&[0xD5, 0xD5, 0, 0, 3]); // payload, then 3 bytes of padding
        let p = parse(&d).expect("an RTP packet");
        assert_eq!(
            (p.payload_type, p.marker, p.sequence, p.timestamp, p.ssrc),
            (8, true, 0x1234, 256, 9)
        );
        assert_eq!(p.payload, vec![0xD5, 0xD5]);
        assert!(parse(&d[..11]).is_none());
        assert!(parse(&[0x80, 200, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).is_none(), "RTCP");
    }

    #[test]
    fn reassembly_reorders_across_the_wrap_drops_duplicates_and_fills_losses() {
        let mut s = Stream::default();
        // 65534, 65535, then 1 before 0 (reordered across the wrap), 0 again, 2 lost, 3
        for (seq, k) in [(65534u16, 0u32), (65535, 1), (1, 3), (0, 2), (0, 2), (3, 5)] {
            s.push(packet(seq, 1000 + 160 * k, k as u8 + 1));
        }
        let r = s.reassemble(&Codec::from_static, usize::MAX);
        let c = r.counts;
        assert_eq!((c.packets, c.duplicates, c.lost, c.late), (6, 1, 1, 1));
        assert_eq!(r.samples.len(), 160 * 6);
        // the lost packet is silence, the others in timestamp order
        assert!(r.samples[160 * 4..160 * 5].iter().all(|&x| x == 0.0));
        for k in [0usize, 1, 2, 3, 5] {
            let want = ulaw_to_f32(k as u8 + 1);
            assert_eq!(r.samples[160 * k], want, "packet {k}");
        }
        assert_eq!(r.codec, "PCMU");
    }

    #[test]
    fn live_decoding_fills_gaps_drops_late_packets_and_follows_a_new_ssrc() {
        let mut d = LiveDecoder::default();
        let mut out = Vec::new();
        let pcmu = Codec::Pcmu;
        assert_eq!(d.push(&packet(65535, 0, 1), &pcmu, &mut out), Some(8000));
        // 0 (across the wrap) is next; 1 is lost; 2 arrives, then 1 late, then 2 again
        d.push(&packet(0, 160, 2), &pcmu, &mut out);
        d.push(&packet(2, 480, 3), &pcmu, &mut out);
        assert_eq!(d.push(&packet(1, 320, 9), &pcmu, &mut out), None);
        assert_eq!(d.push(&packet(2, 480, 3), &pcmu, &mut out), None);
        assert_eq!(out.len(), 160 * 4);
        assert!(out[320..480].iter().all(|&x| x == 0.0), "the lost packet is silence");
        assert_eq!(
            (out[0], out[160], out[480]),
            (ulaw_to_f32(1), ulaw_to_f32(2), ulaw_to_f32(3))
        );
        let c = d.counts;
        assert_eq!((c.packets, c.lost, c.late, c.duplicates), (5, 1, 1, 1));
        // a new SSRC with unrelated numbers goes on at once (its timestamps are its own)
        let mut other = packet(9000, 7_000_000, 4);
        other.ssrc = 99;
        assert_eq!(d.push(&other, &pcmu, &mut out), Some(8000));
        assert_eq!(out.len(), 160 * 5);
        // silence suppression: the next packet 1 s on in time
        let mut later = packet(9001, 7_000_000 + 160 + 8000, 5);
        later.ssrc = 99;
        d.push(&later, &pcmu, &mut out);
        assert_eq!(out.len(), 160 * 6 + 8000);
        let mut dtmf = packet(9002, 0, 0);
        dtmf.ssrc = 99;
        assert_eq!(d.push(&dtmf, &Codec::TelephoneEvent, &mut out), None);
        assert_eq!(d.counts.telephone_events, 1);
    }

    #[test]
    fn telephone_events_and_unknown_codecs_are_counted_not_decoded() {
        let mut s = Stream::default();
        s.push(packet(1, 0, 1));
        let mut dtmf = packet(2, 160, 0);
        dtmf.payload_type = 101;
        s.push(dtmf);
        let mut g729 = packet(3, 320, 0);
        g729.payload_type = 18;
        s.push(g729);
        let r = s.reassemble(&Codec::from_static, usize::MAX);
        assert_eq!(
            (r.counts.telephone_events, r.undecoded.clone()),
            (1, vec![("G729".to_string(), 1)])
        );
        assert_eq!(r.samples.len(), 160);
    }
}
