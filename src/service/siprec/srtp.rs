//! SRTP receiving (RFC 3711) with keys given in the SDP (SDES, RFC 4568): the two suites SBCs
//! offer for recording, `AES_CM_128_HMAC_SHA1_80` and `AES_CM_128_HMAC_SHA1_32`, without MKI
//! and with the default key derivation rate. A packet is authenticated before it is decrypted;
//! one that fails is dropped. Replays need no check here: the leg's reassembly drops
//! duplicates and late packets by sequence number.

use std::collections::HashMap;

use aes::Aes128;
use aes::cipher::{BlockEncrypt, KeyInit, KeyIvInit, StreamCipher, generic_array::GenericArray};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;

type AesCtr = ctr::Ctr128BE<Aes128>;

/// A crypto suite of RFC 4568 that is received here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Suite {
    AesCm128HmacSha1_80,
    AesCm128HmacSha1_32,
}

impl Suite {
    pub(super) fn parse(name: &str) -> Option<Suite> {
        match name {
            "AES_CM_128_HMAC_SHA1_80" => Some(Suite::AesCm128HmacSha1_80),
            "AES_CM_128_HMAC_SHA1_32" => Some(Suite::AesCm128HmacSha1_32),
            _ => None,
        }
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            Suite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            Suite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
        }
    }

    fn tag_len(self) -> usize {
        match self {
            Suite::AesCm128HmacSha1_80 => 10,
            Suite::AesCm128HmacSha1_32 => 4,
        }
    }
}

/// A master key and salt for one direction of a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Keys {
    pub suite: Suite,
    key: [u8; 16],
    salt: [u8; 14],
}

impl Keys {
    /// The keys of an SDP `a=crypto` attribute's value (`1 AES_CM_128_HMAC_SHA1_80
    /// inline:KEY||SALT[|lifetime]`), or why they cannot be used: another suite, an MKI, more
    /// than one key, session parameters, or a key that is not 30 bytes of base64.
    pub(super) fn from_crypto(value: &str) -> Result<(u32, Keys), String> {
        let mut parts = value.split_whitespace();
        let tag: u32 = parts
            .next()
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| format!("a=crypto:{value}: no tag"))?;
        let suite_name = parts.next().unwrap_or("");
        let suite = Suite::parse(suite_name).ok_or_else(|| format!("SRTP suite {suite_name} is not supported"))?;
        let params = parts.next().unwrap_or("");
        if parts.next().is_some() {
            return Err("SRTP session parameters are not supported".into());
        }
        if params.contains(';') {
            return Err("more than one SRTP master key is not supported".into());
        }
        let inline = params
            .strip_prefix("inline:")
            .ok_or_else(|| "an SRTP key must be given inline".to_string())?;
        let mut fields = inline.split('|');
        let material = fields.next().unwrap_or("");
        for field in fields {
            // a lifetime (2^n or a number) is fine; an MKI (n:len) changes the packet layout
            if field.contains(':') {
                return Err("SRTP with an MKI is not supported".into());
            }
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(material)
            .map_err(|_| "the SRTP key is not base64".to_string())?;
        if bytes.len() != 30 {
            return Err(format!("the SRTP key and salt are {} bytes, not 30", bytes.len()));
        }
        let mut key = [0u8; 16];
        let mut salt = [0u8; 14];
        key.copy_from_slice(&bytes[..16]);
        salt.copy_from_slice(&bytes[16..]);
        Ok((tag, Keys { suite, key, salt }))
    }

    /// A fresh master key and salt from the system's random source, as the `inline:` value of
    /// an answer's `a=crypto` (the recorder sends no media, but an answer must carry a key).
    pub(super) fn random_inline() -> Option<String> {
        let mut bytes = [0u8; 30];
        // the random source of the TLS provider (see `tls_acceptor` on why ring)
        #[allow(deprecated)]
        let random = tokio_rustls::rustls::crypto::ring::default_provider().secure_random;
        random.fill(&mut bytes).ok()?;
        Some(base64::engine::general_purpose::STANDARD.encode(bytes))
    }
}

/// Session keys derived from a master key (RFC 3711 4.3.1, key derivation rate 0).
struct SessionKeys {
    cipher_key: [u8; 16],
    salt: [u8; 14],
    auth_key: [u8; 20],
}

fn derive(keys: &Keys) -> SessionKeys {
    let prf = |label: u8, out: &mut [u8]| {
        // x = label * 2^48 XOR master salt, as the top 112 bits of the counter block
        let mut iv = [0u8; 16];
        iv[..14].copy_from_slice(&keys.salt);
        iv[7] ^= label;
        let mut ctr = AesCtr::new(&keys.key.into(), &iv.into());
        out.fill(0);
        ctr.apply_keystream(out);
    };
    let mut s = SessionKeys {
        cipher_key: [0; 16],
        salt: [0; 14],
        auth_key: [0; 20],
    };
    prf(0x00, &mut s.cipher_key);
    prf(0x01, &mut s.auth_key);
    prf(0x02, &mut s.salt);
    s
}

/// Where a stream's packet index stands (RFC 3711 3.3.1): rollover counter and highest
/// sequence number authenticated.
#[derive(Clone, Copy)]
struct Index {
    roc: u32,
    highest: u16,
}

/// Unprotects the SRTP packets of one recorded stream.
pub(super) struct Receiver {
    /// Bytes of authentication tag at the end of each packet.
    tag_len: usize,
    session: SessionKeys,
    cipher: Aes128,
    streams: HashMap<u32, Index>,
}

impl Receiver {
    pub(super) fn new(keys: Keys) -> Receiver {
        let session = derive(&keys);
        let cipher = Aes128::new(&session.cipher_key.into());
        Receiver {
            tag_len: keys.suite.tag_len(),
            session,
            cipher,
            streams: HashMap::new(),
        }
    }

    /// The RTP packet inside an SRTP packet, or `None` when it is too short or fails
    /// authentication.
    pub(super) fn unprotect(&mut self, packet: &[u8]) -> Option<Vec<u8>> {
        let tag_len = self.tag_len;
        let header = header_len(packet)?;
        if packet.len() < header + tag_len {
            return None;
        }
        let (body, tag) = packet.split_at(packet.len() - tag_len);
        let seq = u16::from_be_bytes([packet[2], packet[3]]);
        let ssrc = u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]);
        let known = self.streams.get(&ssrc).copied();
        let roc = match known {
            None => 0,
            Some(Index { roc, highest }) => guess_roc(roc, highest, seq),
        };
        let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(&self.session.auth_key).ok()?;
        mac.update(body);
        mac.update(&roc.to_be_bytes());
        let full = mac.finalize().into_bytes();
        // constant time: a forger learns nothing from how long the comparison took
        let differs = full[..tag_len].iter().zip(tag).fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if differs != 0 {
            return None;
        }
        self.streams.insert(ssrc, advance(known, roc, seq));
        let index = (u64::from(roc) << 16) | u64::from(seq);
        let mut out = body.to_vec();
        self.keystream(ssrc, index, &mut out[header..]);
        Some(out)
    }

    /// XORs AES counter-mode keystream into `payload` (RFC 3711 4.1.1): the counter block is
    /// (session salt * 2^16) XOR (SSRC * 2^64) XOR (index * 2^16), then + 1 per block.
    fn keystream(&self, ssrc: u32, index: u64, payload: &mut [u8]) {
        let mut iv = [0u8; 16];
        iv[..14].copy_from_slice(&self.session.salt);
        for (i, b) in ssrc.to_be_bytes().iter().enumerate() {
            iv[4 + i] ^= b;
        }
        for (i, b) in index.to_be_bytes()[2..].iter().enumerate() {
            iv[8 + i] ^= b;
        }
        let mut counter = u128::from_be_bytes(iv);
        for chunk in payload.chunks_mut(16) {
            let mut block = GenericArray::from(counter.to_be_bytes());
            self.cipher.encrypt_block(&mut block);
            for (p, k) in chunk.iter_mut().zip(block.iter()) {
                *p ^= k;
            }
            counter = counter.wrapping_add(1);
        }
    }
}

/// The RTP header's length: fixed part, CSRCs and extension (RFC 3550 5.1, 5.3.1).
fn header_len(packet: &[u8]) -> Option<usize> {
    if packet.len() < 12 || packet[0] >> 6 != 2 {
        return None;
    }
    let mut len = 12 + 4 * usize::from(packet[0] & 0x0f);
    if packet[0] & 0x10 != 0 {
        let words = packet.get(len + 2..len + 4)?;
        len += 4 + 4 * usize::from(u16::from_be_bytes([words[0], words[1]]));
    }
    (len <= packet.len()).then_some(len)
}

/// The rollover counter of a packet with sequence number `seq` (RFC 3711 3.3.1).
fn guess_roc(roc: u32, highest: u16, seq: u16) -> u32 {
    if highest < 0x8000 {
        if seq > highest && seq - highest > 0x8000 {
            roc.wrapping_sub(1)
        } else {
            roc
        }
    } else if highest - 0x8000 > seq {
        roc.wrapping_add(1)
    } else {
        roc
    }
}

/// The stream's index after an authenticated packet of rollover counter `roc`.
fn advance(known: Option<Index>, roc: u32, seq: u16) -> Index {
    match known {
        None => Index { roc, highest: seq },
        Some(old) if roc == old.roc.wrapping_add(1) => Index { roc, highest: seq },
        Some(old) if roc == old.roc && seq > old.highest => Index { roc, highest: seq },
        Some(old) => old,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn keys(suite: Suite, key: &[u8], salt: &[u8]) -> Keys {
        Keys {
            suite,
            key: key.try_into().unwrap(),
            salt: salt.try_into().unwrap(),
        }
    }

    /// The sender's side, for the tests: encrypt, then append the tag.
    fn protect(rx: &Receiver, packet: &[u8], roc: u32) -> Vec<u8> {
        let header = header_len(packet).unwrap();
        let seq = u16::from_be_bytes([packet[2], packet[3]]);
        let ssrc = u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]);
        let mut out = packet.to_vec();
        rx.keystream(ssrc, (u64::from(roc) << 16) | u64::from(seq), &mut out[header..]);
        let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(&rx.session.auth_key).unwrap();
        mac.update(&out);
        mac.update(&roc.to_be_bytes());
        let tag = mac.finalize().into_bytes();
        out.extend_from_slice(&tag[..rx.tag_len]);
        out
    }

    fn rtp(seq: u16, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x80, 0, 0, 0, 0, 0, 0, 160, 0xde, 0xad, 0xbe, 0xef];
        p[2..4].copy_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn session_keys_match_rfc_3711_appendix_b3() {
        let k = keys(
            Suite::AesCm128HmacSha1_80,
            &hex("E1F97A0D3E018BE0D64FA32C06DE4139"),
            &hex("0EC675AD498AFEEBB6960B3AABE6"),
        );
        let s = derive(&k);
        assert_eq!(s.cipher_key.to_vec(), hex("C61E7A93744F39EE10734AFE3FF7A087"));
        assert_eq!(s.salt.to_vec(), hex("30CBBC08863D8C85D49DB34A9AE1"));
        assert_eq!(s.auth_key.to_vec(), hex("CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4"));
    }

    #[test]
    fn packets_round_trip_across_a_rollover_and_forgeries_are_dropped() {
        for suite in [Suite::AesCm128HmacSha1_80, Suite::AesCm128HmacSha1_32] {
            let k = keys(suite, &[7u8; 16], &[9u8; 14]);
            let mut rx = Receiver::new(k.clone());
            let sender = Receiver::new(k);
            let payload: Vec<u8> = (0..160u32).map(|i| (i * 7) as u8).collect();
            // over the sequence number's wrap: the rollover counter must follow
            for (n, seq) in (65_530u16..=65_535).chain(0..6).enumerate() {
                let roc = u32::from(n >= 6);
                let plain = rtp(seq, &payload);
                let srtp = protect(&sender, &plain, roc);
                assert_ne!(&srtp[12..172], &payload[..], "the payload is encrypted");
                assert_eq!(rx.unprotect(&srtp).as_deref(), Some(&plain[..]), "{suite:?} seq {seq}");
            }
            // one flipped bit anywhere: refused
            let mut forged = protect(&sender, &rtp(6, &payload), 1);
            forged[40] ^= 1;
            assert_eq!(rx.unprotect(&forged), None);
            // a late packet from before the wrap still authenticates with the old counter
            let late = rtp(65_534, &payload);
            assert_eq!(rx.unprotect(&protect(&sender, &late, 0)).as_deref(), Some(&late[..]));
        }
    }

    #[test]
    fn any_datagram_is_refused_without_a_panic() {
        let mut rx = Receiver::new(keys(Suite::AesCm128HmacSha1_80, &[1u8; 16], &[2u8; 14]));
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        for len in 0..400 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            // RTP version 2 with CSRC counts and extensions that run past the end
            let mut v2 = bytes.clone();
            if let Some(b) = v2.first_mut() {
                *b = 0x90 | (*b & 0x0f);
            }
            assert_eq!(rx.unprotect(&bytes), None);
            assert_eq!(rx.unprotect(&v2), None);
        }
    }

    #[test]
    fn sdp_crypto_lines_are_read_or_refused_with_a_reason() {
        let inline = base64::engine::general_purpose::STANDARD.encode([1u8; 30]);
        let (tag, k) = Keys::from_crypto(&format!("2 AES_CM_128_HMAC_SHA1_32 inline:{inline}|2^31")).unwrap();
        assert_eq!((tag, k.suite), (2, Suite::AesCm128HmacSha1_32));
        for (line, why) in [
            (format!("1 AEAD_AES_256_GCM inline:{inline}"), "not supported"),
            (format!("1 AES_CM_128_HMAC_SHA1_80 inline:{inline}|2^20|1:4"), "MKI"),
            ("1 AES_CM_128_HMAC_SHA1_80 inline:AAAA".to_string(), "not 30"),
            (
                format!("1 AES_CM_128_HMAC_SHA1_80 inline:{inline} UNENCRYPTED_SRTP"),
                "session parameters",
            ),
        ] {
            let e = Keys::from_crypto(&line).unwrap_err();
            assert!(e.contains(why), "{line}: {e}");
        }
    }
}
