//! Calls in packet captures (pcap and pcapng, as tcpdump or Wireshark write them on a session
//! border controller): the UDP datagrams of each packet, the SIP messages whose SDP says which
//! RTP streams belong to which call, and each RTP stream put back in order and decoded. A leg
//! becomes an ordinary mono audio source, so it is scored exactly as the same audio in a file.
//!
//! Decoded: PCMU, PCMA (8 kHz) and G.722 (16 kHz). Telephone events are skipped and counted;
//! any other payload type is reported by name, never guessed at.

pub mod metadata;
pub mod rtp;
pub mod sdp;
pub mod sip;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::net::{IpAddr, SocketAddr};

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use pcap_file::DataLink;
use pcap_file::pcap::PcapReader;
use pcap_file::pcapng::{Block, PcapNgReader};

use self::rtp::{Codec, Reassembled, Stream};
use crate::audio::{AudioChunk, AudioSource, StreamInfo};
use crate::error::{Error, Result};

/// Fewer packets than this in one stream is not a call leg (a stray datagram that happens to
/// look like RTP).
const MIN_PACKETS: usize = 10;

/// Whether these first bytes are a pcap or pcapng file.
pub fn is_capture(prefix: &[u8]) -> bool {
    matches!(
        prefix.get(0..4),
        Some([0xd4, 0xc3, 0xb2, 0xa1] | [0xa1, 0xb2, 0xc3, 0xd4] | [0x4d, 0x3c, 0xb2, 0xa1] | [0xa1, 0xb2, 0x3c, 0x4d])
            | Some([0x0a, 0x0d, 0x0d, 0x0a])
    )
}

/// One direction of a call's audio.
#[derive(Debug, Clone, PartialEq)]
pub struct CapturedLeg {
    pub ssrc: u32,
    pub source: SocketAddr,
    pub destination: SocketAddr,
    /// Capture time of its first packet, in seconds.
    pub first_s: f64,
    pub stream: Reassembled,
}

/// The legs of one call.
#[derive(Debug, Clone, PartialEq)]
pub struct CapturedCall {
    /// The SIP Call-ID, when the signalling was in the capture.
    pub call_id: Option<String>,
    pub legs: Vec<CapturedLeg>,
}

/// What the capture held besides calls.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaptureCounts {
    pub frames: u64,
    pub udp: u64,
    pub sip: u64,
    /// Frames of a link type or protocol not read (counted, never guessed at).
    pub skipped: u64,
}

struct Datagram {
    time_s: f64,
    source: SocketAddr,
    destination: SocketAddr,
    payload: Vec<u8>,
}

fn datagram(link: DataLink, data: &[u8], time_s: f64) -> Option<Datagram> {
    let sliced = match link {
        DataLink::ETHERNET => SlicedPacket::from_ethernet(data).ok()?,
        DataLink::LINUX_SLL => SlicedPacket::from_linux_sll(data).ok()?,
        DataLink::RAW | DataLink::IPV4 | DataLink::IPV6 => SlicedPacket::from_ip(data).ok()?,
        // BSD loopback: a 4-byte address family, then IP
        DataLink::NULL | DataLink::LOOP => SlicedPacket::from_ip(data.get(4..)?).ok()?,
        _ => return None,
    };
    let (src, dst): (IpAddr, IpAddr) = match sliced.net? {
        NetSlice::Ipv4(v4) => (v4.header().source_addr().into(), v4.header().destination_addr().into()),
        NetSlice::Ipv6(v6) => (v6.header().source_addr().into(), v6.header().destination_addr().into()),
    };
    let TransportSlice::Udp(udp) = sliced.transport? else {
        return None;
    };
    Some(Datagram {
        time_s,
        source: SocketAddr::new(src, udp.source_port()),
        destination: SocketAddr::new(dst, udp.destination_port()),
        payload: udp.payload().to_vec(),
    })
}

fn capture_error(e: impl std::fmt::Display) -> Error {
    Error::Corrupt(format!("packet capture: {e}"))
}

/// A capture cut off mid-packet (tcpdump killed, a copy still being written) ends there.
fn cut_short(e: &pcap_file::PcapError) -> bool {
    match e {
        pcap_file::PcapError::IncompleteBuffer => true,
        pcap_file::PcapError::IoError(io) => io.kind() == std::io::ErrorKind::UnexpectedEof,
        _ => false,
    }
}

/// Reads every UDP datagram of a pcap or pcapng stream, in capture order.
fn for_each_datagram(input: impl Read, counts: &mut CaptureCounts, mut f: impl FnMut(Datagram)) -> Result<()> {
    let mut input = BufReader::new(input);
    let head = input.fill_buf().map_err(capture_error)?;
    if head.starts_with(&[0x0a, 0x0d, 0x0d, 0x0a]) {
        let mut reader = PcapNgReader::new(input).map_err(capture_error)?;
        let mut links: Vec<DataLink> = Vec::new();
        while let Some(block) = reader.next_block() {
            let block = match block {
                Ok(b) => b,
                Err(e) if cut_short(&e) => break,
                Err(e) => return Err(capture_error(e)),
            };
            match block {
                Block::InterfaceDescription(idb) => links.push(idb.linktype),
                Block::EnhancedPacket(epb) => {
                    counts.frames += 1;
                    let link = links
                        .get(epb.interface_id as usize)
                        .copied()
                        .unwrap_or(DataLink::ETHERNET);
                    match datagram(link, &epb.data, epb.timestamp.as_secs_f64()) {
                        Some(d) => f(d),
                        None => counts.skipped += 1,
                    }
                }
                Block::SimplePacket(spb) => {
                    counts.frames += 1;
                    let link = links.first().copied().unwrap_or(DataLink::ETHERNET);
                    match datagram(link, &spb.data, 0.0) {
                        Some(d) => f(d),
                        None => counts.skipped += 1,
                    }
                }
                _ => {}
            }
        }
    } else {
        let mut reader = PcapReader::new(input).map_err(capture_error)?;
        let link = reader.header().datalink;
        while let Some(packet) = reader.next_packet() {
            let packet = match packet {
                Ok(p) => p,
                Err(e) if cut_short(&e) => break,
                Err(e) => return Err(capture_error(e)),
            };
            counts.frames += 1;
            match datagram(link, &packet.data, packet.timestamp.as_secs_f64()) {
                Some(d) => f(d),
                None => counts.skipped += 1,
            }
        }
    }
    Ok(())
}

#[derive(Default)]
struct Collected {
    stream: Stream,
    first_s: f64,
    packets: usize,
}

/// How a capture is read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaptureOptions {
    /// Inclusive port ranges of the datagrams that may be RTP; empty: any port (streams then
    /// need [`MIN_PACKETS`] packets unless signalling names them).
    pub ranges: Vec<(u16, u16)>,
    /// Decoded samples of all legs together at most (a service's upload limit); `None`: only
    /// the per-leg bound.
    pub max_samples: Option<u64>,
}

impl CaptureOptions {
    /// Parses `LO-HI` or a single port.
    pub fn parse_range(text: &str) -> Result<(u16, u16)> {
        let bad = || Error::Config(format!("'{text}' is not a UDP port or a range LO-HI of ports"));
        let (lo, hi) = match text.split_once('-') {
            Some((lo, hi)) => (
                lo.trim().parse().map_err(|_| bad())?,
                hi.trim().parse().map_err(|_| bad())?,
            ),
            None => {
                let p = text.trim().parse().map_err(|_| bad())?;
                (p, p)
            }
        };
        if lo > hi || lo == 0 {
            return Err(bad());
        }
        Ok((lo, hi))
    }

    fn admits(&self, d: &Datagram) -> bool {
        self.ranges.is_empty()
            || self
                .ranges
                .iter()
                .any(|&(lo, hi)| (lo..=hi).contains(&d.source.port()) || (lo..=hi).contains(&d.destination.port()))
    }
}

/// Finds the calls in a capture: RTP streams tied to calls by the SDP of SIP messages when the
/// capture has them; otherwise the two directions between one pair of addresses are one call.
/// With port ranges, only datagrams to or from those ports are taken as RTP, and every stream
/// there counts however short.
pub fn read_calls(input: impl Read, ports: &CaptureOptions) -> Result<(Vec<CapturedCall>, CaptureCounts)> {
    let mut counts = CaptureCounts::default();
    // where each call receives audio, and the payload types it announced
    let mut receivers: HashMap<SocketAddr, (String, HashMap<u8, Codec>)> = HashMap::new();
    let mut streams: HashMap<(SocketAddr, SocketAddr, u32), Collected> = HashMap::new();
    let mut order: Vec<(SocketAddr, SocketAddr, u32)> = Vec::new();
    let (mut udp, mut sip_messages) = (0u64, 0u64);
    for_each_datagram(input, &mut counts, |d| {
        udp += 1;
        if let Some(offer) = sip::parse(&d.payload) {
            sip_messages += 1;
            for addr in offer.media {
                receivers.insert(addr, (offer.call_id.clone(), offer.rtpmap.clone()));
            }
            return;
        }
        if !ports.admits(&d) {
            return;
        }
        let Some(packet) = rtp::parse(&d.payload) else { return };
        let key = (d.source, d.destination, packet.ssrc);
        let entry = streams.entry(key).or_insert_with(|| {
            order.push(key);
            Collected {
                first_s: d.time_s,
                ..Collected::default()
            }
        });
        entry.packets += 1;
        entry.stream.push(packet);
    })?;
    counts.udp = udp;
    counts.sip = sip_messages;
    let mut calls: Vec<CapturedCall> = Vec::new();
    let mut call_of: HashMap<String, usize> = HashMap::new();
    let mut budget = ports.max_samples.unwrap_or(u64::MAX);
    for key in order {
        let Some(collected) = streams.remove(&key) else {
            continue;
        };
        let (source, destination, ssrc) = key;
        let signalled = receivers.get(&destination).or_else(|| receivers.get(&source));
        if collected.packets < MIN_PACKETS && signalled.is_none() && ports.ranges.is_empty() {
            continue;
        }
        let (call_key, call_id, rtpmap) = match signalled {
            Some((id, map)) => (format!("sip:{id}"), Some(id.clone()), map.clone()),
            None => {
                // no signalling: both directions between two addresses are one call
                let (a, b) = if source <= destination {
                    (source, destination)
                } else {
                    (destination, source)
                };
                (format!("rtp:{a}-{b}"), None, HashMap::new())
            }
        };
        let codec_of = |pt: u8| rtpmap.get(&pt).cloned().unwrap_or_else(|| Codec::from_static(pt));
        let leg = CapturedLeg {
            ssrc,
            source,
            destination,
            first_s: collected.first_s,
            stream: collected
                .stream
                .reassemble(&codec_of, usize::try_from(budget).unwrap_or(usize::MAX)),
        };
        if leg.stream.cut && ports.max_samples.is_some() {
            return Err(Error::TooMuchAudio(format!(
                "the calls in the capture hold more than {} samples",
                ports.max_samples.unwrap_or_default()
            )));
        }
        budget = budget.saturating_sub(leg.stream.samples.len() as u64);
        let index = *call_of.entry(call_key).or_insert_with(|| {
            calls.push(CapturedCall {
                call_id,
                legs: Vec::new(),
            });
            calls.len() - 1
        });
        calls[index].legs.push(leg);
    }
    Ok((calls, counts))
}

/// A leg's decoded audio as a mono source (the file-analysis path reads it like a file).
pub struct LegSource<'a> {
    samples: &'a [f32],
    at: usize,
    info: StreamInfo,
}

impl<'a> LegSource<'a> {
    pub fn new(leg: &'a CapturedLeg) -> Self {
        Self {
            samples: &leg.stream.samples,
            at: 0,
            info: StreamInfo {
                sample_rate_hz: leg.stream.rate_hz,
                channels: 1,
                codec: format!("rtp/{}", leg.stream.codec.to_ascii_lowercase()),
                total_frames: Some(leg.stream.samples.len() as u64),
            },
        }
    }
}

impl AudioSource for LegSource<'_> {
    fn info(&self) -> &StreamInfo {
        &self.info
    }

    fn next_chunk(&mut self) -> Result<Option<AudioChunk>> {
        if self.at >= self.samples.len() {
            return Ok(None);
        }
        let end = (self.at + 4096).min(self.samples.len());
        let chunk = AudioChunk {
            samples: self.samples[self.at..end].to_vec(),
            channels: 1,
            sample_rate_hz: self.info.sample_rate_hz,
            start_sample: self.at as u64,
        };
        self.at = end;
        Ok(Some(chunk))
    }
}
