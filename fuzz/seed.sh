#!/usr/bin/env bash
# Seeds fuzz/corpus/<target>/ from the test fixtures and models (the corpus itself is not committed).
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p corpus/{decode,raw,media_message,stream_protocol,capture,manifest,features,sip}
for f in ../tests/fixtures/*.{wav,flac,ogg,mp3} ../tests/fixtures/malformed/*; do
  [ "$(stat -c %s "$f")" -le 200000 ] && cp "$f" corpus/decode/ || true
done
head -c 4000 ../tests/fixtures/speech_s16le_16000.raw | { printf '\x00\x10\x00\x01'; cat; } > corpus/raw/s16
head -c 2000 ../tests/fixtures/speech_ulaw_8000.ul | { printf '\x01\xf4\x01\x01'; cat; } > corpus/raw/ulaw
printf '%s' '{"event":"start","streamSid":"MZ1","start":{"streamSid":"MZ1","mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}}}' > corpus/media_message/start
printf '%s' '{"event":"media","media":{"track":"inbound","chunk":"1","timestamp":"20","payload":"/39/f39/f39/f3+AgICA"}}' > corpus/media_message/media
printf '%s' '{"event":"stop","streamSid":"MZ1"}' > corpus/media_message/stop
# stream_protocol: a raw-format byte, then (kind, u16 length, payload) messages: a call's start,
# media and stop as text; and mu-law binary frames
python3 - <<'PY'
import struct
def msg(kind, payload):
    return bytes([kind]) + struct.pack('<H', len(payload)) + payload
texts = [open(f'corpus/media_message/{n}', 'rb').read() for n in ('start', 'media', 'stop')]
open('corpus/stream_protocol/call', 'wb').write(b'\x00' + b''.join(msg(0, t) for t in texts))
ulaw = open('../tests/fixtures/speech_ulaw_8000.ul', 'rb').read()[:1600]
open('corpus/stream_protocol/raw', 'wb').write(b'\x03' + msg(1, ulaw[:800]) + msg(1, ulaw[800:]) + msg(0, texts[2]))
PY
# decode: WAV files of more channels than symphonia reads (the hound path), plain and extensible
python3 - <<'PY'
import struct
def wav(path, n, ext):
    frames = 400
    data = bytes((i * 7) % 251 for i in range(frames * n * 2))
    ba = n * 2
    if ext:
        fmt = struct.pack('<HHIIHHHHI', 0xFFFE, n, 8000, 8000 * ba, ba, 16, 22, 16, 0) + \
            bytes([1, 0, 0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xAA, 0, 0x38, 0x9B, 0x71])
    else:
        fmt = struct.pack('<HHIIHH', 1, n, 8000, 8000 * ba, ba, 16)
    body = b'WAVE' + b'fmt ' + struct.pack('<I', len(fmt)) + fmt + b'data' + struct.pack('<I', len(data)) + data
    open(path, 'wb').write(b'RIFF' + struct.pack('<I', len(body)) + body)
wav('corpus/decode/wide24.wav', 24, False)
wav('corpus/decode/wide40x.wav', 40, True)
PY
# capture: a few RTP packets and a SIP INVITE with SDP in a pcap (Ethernet/IPv4/UDP)
python3 - <<'PY'
import struct
def frame(src, dst, sport, dport, payload):
    ip = struct.pack('>BBHHHBBH4s4s', 0x45, 0, 28 + len(payload), 0, 0x4000, 64, 17, 0, bytes(src), bytes(dst))
    return b'\x02\0\0\0\0\x02\x02\0\0\0\0\x01\x08\x00' + ip + struct.pack('>HHHH', sport, dport, 8 + len(payload), 0) + payload
sdp = b'v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 40000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n'
invite = b'INVITE sip:b@x SIP/2.0\r\nCall-ID: seed@x\r\n\r\n' + sdp
frames = [frame([10,0,0,1], [10,0,0,2], 5060, 5060, invite)]
for k in range(12):
    rtp = struct.pack('>BBHII', 0x80, 0, 65530 + k & 0xffff, 160 * k, 0x1234) + bytes([0x7f ^ (k & 3)] * 160)
    frames.append(frame([10,0,0,2], [10,0,0,1], 50000, 40000, rtp))
out = struct.pack('<IHHiIII', 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1)
for i, f in enumerate(frames):
    out += struct.pack('<IIII', i, 0, len(f), len(f)) + f
open('corpus/capture/call.pcap', 'wb').write(out)
PY
cp ../models/synthscan.json corpus/manifest/shipped.json
cp ../models/test/synthscan-test.json corpus/manifest/test.json
head -c 8002 ../tests/fixtures/fmt_float32.wav > corpus/features/float
echo "seeded: $(find corpus -type f | wc -l) files"
# sip: a SIPREC INVITE (multipart SDP and metadata), an OPTIONS keep-alive and a BYE
python3 - <<'PY'
sdp = ("v=0\r\no=SRC 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
       "m=audio 10000 RTP/AVP 0 9 101\r\na=rtpmap:101 telephone-event/8000\r\na=label:1\r\na=sendonly\r\n"
       "m=audio 10002 RTP/AVP 8\r\na=label:2\r\na=sendonly\r\n")
xml = ('<?xml version="1.0"?><recording xmlns="urn:ietf:params:xml:ns:recording:1">'
       '<participant participant_id="p1"><nameID aor="sip:a@x"><name>A</name></nameID></participant>'
       '<stream stream_id="s1"><label>1</label></stream>'
       '<participantstreamassoc participant_id="p1"><send>s1</send></participantstreamassoc></recording>')
body = (f"--b\r\nContent-Type: application/sdp\r\n\r\n{sdp}\r\n--b\r\n"
        f"Content-Type: application/rs-metadata+xml\r\n\r\n{xml}\r\n--b--\r\n")
head = ("INVITE sip:srs@10.0.0.2 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\n"
        "From: <sip:src@10.0.0.1>;tag=1\r\nTo: <sip:srs@10.0.0.2>\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\n"
        "Session-Expires: 1800\r\nContent-Type: multipart/mixed;boundary=b\r\n")
open('corpus/sip/invite', 'w').write(f"{head}Content-Length: {len(body)}\r\n\r\n{body}")
common = "Via: SIP/2.0/TCP 10.0.0.1:5060;branch=z9hG4bK2\r\nf: <sip:src@10.0.0.1>;tag=1\r\nt: <sip:srs@10.0.0.2>;tag=9\r\ni: c1\r\n"
open('corpus/sip/options', 'w').write(f"\r\n\r\nOPTIONS sip:srs@10.0.0.2 SIP/2.0\r\n{common}CSeq: 2 OPTIONS\r\nl: 0\r\n\r\n")
open('corpus/sip/bye', 'w').write(f"BYE sip:srs@10.0.0.2 SIP/2.0\r\n{common}CSeq: 3 BYE\r\nContent-Length: 0\r\n\r\n")
PY
