#!/usr/bin/env bash
# Regenerates the small test audio under tests/fixtures/ (see tests/fixtures/README.md).
#
# Tools: bash, sox, ffmpeg (with libmp3lame, libvorbis), python3 (stdlib only),
# espeak-ng (optional: without it the "speech" is the synthetic harmonic signal,
# and the script says so).
#
# Deterministic: fixed seeds, `sox -R -D` (repeatable, no dither),
# `ffmpeg -fflags +bitexact -flags:a +bitexact -map_metadata -1`.
# Golden feature files are made separately by scripts/make_golden.sh.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/tests/fixtures"
PY="${PYTHON:-python3}"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

for tool in sox ffmpeg "$PY"; do
  command -v "$tool" >/dev/null || { echo "make_fixtures: missing $tool" >&2; exit 1; }
done

mkdir -p "$OUT"
# Remove only the files this script owns (golden/ and README.md are kept).
rm -f "$OUT"/*.wav "$OUT"/*.flac "$OUT"/*.ogg "$OUT"/*.mp3 "$OUT"/*.raw "$OUT"/*.ul "$OUT"/*.al

SOX=(sox -R -D -V1)
FF=(ffmpeg -nostdin -hide_banner -loglevel error -y)
FFOUT=(-fflags +bitexact -flags:a +bitexact -map_metadata -1)

SENTENCE="Hi, this is the bank calling about your card."

# ---------------------------------------------------------------- synthetic signals
# 16 kHz, 16-bit mono, 3.0 s, written with the stdlib wave module.
"$PY" - "$TMP" <<'PYEOF'
import math, random, struct, sys, wave

tmp = sys.argv[1]
SR = 16000
N = 3 * SR

def write(path, samples, sr=SR, channels=1):
    frames = bytearray()
    for v in samples:
        v = max(-1.0, min(1.0, v))
        frames += struct.pack('<h', int(round(v * 32767)))
    with wave.open(path, 'wb') as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(bytes(frames))

# Speech-like: harmonics of a moving pitch (1/k roll-off, two formant bumps),
# syllable-rate (~4 Hz) amplitude modulation, short pauses.
harm = []
phase = 0.0
for n in range(N):
    t = n / SR
    f0 = 130.0 + 35.0 * math.sin(2 * math.pi * 0.6 * t) + 15.0 * math.sin(2 * math.pi * 2.3 * t)
    phase += 2 * math.pi * f0 / SR
    f1 = 600.0 + 250.0 * math.sin(2 * math.pi * 1.1 * t)
    f2 = 1700.0 + 500.0 * math.sin(2 * math.pi * 0.8 * t + 1.0)
    s = 0.0
    k = 1
    while k * f0 < 3800.0:
        fk = k * f0
        g = (1.0 / k) * (1.0 + 3.0 * math.exp(-((fk - f1) / 180.0) ** 2)
                         + 2.0 * math.exp(-((fk - f2) / 250.0) ** 2))
        s += g * math.sin(k * phase)
        k += 1
    env = 0.5 - 0.5 * math.cos(2 * math.pi * 4.0 * t)   # ~4 Hz syllables
    if 1.40 <= t < 1.65:                                 # a short pause
        env = 0.0
    harm.append(0.12 * env * s)
peak = max(abs(v) for v in harm)
harm = [0.5 * v / peak for v in harm]
write(f'{tmp}/synth_harmonic_16000.wav', harm)

rng = random.Random(20240611)
# Uniform-sum noise (Irwin-Hall of 4) ~ Gaussian, rms ~0.1; stable across Python versions.
noise = [0.1 * (sum(rng.random() for _ in range(4)) - 2.0) * math.sqrt(3.0) for _ in range(N)]
write(f'{tmp}/noise_16000.wav', noise[:2 * SR])
write(f'{tmp}/tone1k_16000.wav', [0.5 * math.sin(2 * math.pi * 1000.0 * n / SR) for n in range(N)])
write(f'{tmp}/silence_16000.wav', [0.0] * (2 * SR))
PYEOF
cp "$TMP"/synth_harmonic_16000.wav "$TMP"/noise_16000.wav "$TMP"/tone1k_16000.wav "$TMP"/silence_16000.wav "$OUT"/

# ---------------------------------------------------------------- speech master
# 48 kHz 32-bit float, mono, exactly 3.0 s, peak -3 dBFS.
if command -v espeak-ng >/dev/null; then
  espeak-ng -v en-us -s 175 -w "$TMP/espeak.wav" "$SENTENCE"
  SRC="$TMP/espeak.wav"
else
  echo "make_fixtures: WARNING espeak-ng not found; 'speech' = synthetic harmonic signal" >&2
  SRC="$TMP/synth_harmonic_16000.wav"
fi
"${SOX[@]}" "$SRC" -c 1 -e floating-point -b 32 "$TMP/master48k.wav" \
  rate -v 48000 gain -n -3 pad 0.1 3 trim 0 3.0
"${SOX[@]}" "$TMP/master48k.wav" -e floating-point -b 32 "$TMP/speech16k_f32.wav" rate -v 16000
"${SOX[@]}" "$TMP/master48k.wav" -e floating-point -b 32 "$TMP/speech8k_f32.wav" rate -v 8000

# ---------------------------------------------------------------- sample rates (16-bit PCM)
for r in 8000 16000 44100 48000; do
  "${SOX[@]}" "$TMP/master48k.wav" -e signed-integer -b 16 "$OUT/speech_${r}.wav" rate -v "$r"
done

# ---------------------------------------------------------------- formats
S16K="$TMP/speech16k_f32.wav"
S8K="$TMP/speech8k_f32.wav"
# ffmpeg writes WAVE_FORMAT_EXTENSIBLE (0xFFFE) for > 16 bits; the files named
# *_extensible keep that header, the others are rewritten below (plain_wav) to the
# plain WAVE_FORMAT_PCM (1) / WAVE_FORMAT_IEEE_FLOAT (3) header.
# The wide formats are shorter than 3 s to keep tests/fixtures/ under 3 MB.
"${FF[@]}" -i "$S16K" -c:a pcm_u8    "${FFOUT[@]}" "$OUT/fmt_pcm_u8.wav"
"${FF[@]}" -i "$S16K" -c:a pcm_s24le -t 1.5 "${FFOUT[@]}" "$TMP/s24.wav"
"${FF[@]}" -i "$S16K" -c:a pcm_s24le -t 1.0 "${FFOUT[@]}" "$OUT/fmt_pcm_s24_extensible.wav"
"${FF[@]}" -i "$S16K" -c:a pcm_s32le -t 1.5 "${FFOUT[@]}" "$TMP/s32.wav"
"${FF[@]}" -i "$S16K" -c:a pcm_f32le "${FFOUT[@]}" "$TMP/f32.wav"
"${FF[@]}" -i "$S16K" -c:a pcm_f64le -t 1.5 "${FFOUT[@]}" "$OUT/fmt_float64_extensible.wav"
"$PY" - "$TMP" "$OUT" <<'PYEOF'
import struct, sys
tmp, out = sys.argv[1], sys.argv[2]

def plain_wav(src, dst, tag):
    b = open(src, 'rb').read()
    assert b[:4] == b'RIFF' and b[8:12] == b'WAVE'
    chunks, i = [], 12
    while i + 8 <= len(b):
        cid, sz = b[i:i + 4], struct.unpack('<I', b[i + 4:i + 8])[0]
        chunks.append((cid, b[i + 8:i + 8 + sz]))
        i += 8 + sz + (sz & 1)
    body = b'WAVE'
    for cid, data in chunks:
        if cid == b'fmt ':
            _, ch, sr, br, ba, bits = struct.unpack('<HHIIHH', data[:16])
            data = struct.pack('<HHIIHH', tag, ch, sr, br, ba, bits)
            if tag != 1:
                data += struct.pack('<H', 0)          # cbSize
        elif cid == b'fact' and tag == 1:
            continue
        body += cid + struct.pack('<I', len(data)) + data + (b'\0' if len(data) & 1 else b'')
    open(dst, 'wb').write(b'RIFF' + struct.pack('<I', len(body)) + body)

plain_wav(f'{tmp}/s24.wav', f'{out}/fmt_pcm_s24.wav', 1)
plain_wav(f'{tmp}/s32.wav', f'{out}/fmt_pcm_s32.wav', 1)
plain_wav(f'{tmp}/f32.wav', f'{out}/fmt_float32.wav', 3)
PYEOF
# Telephony codecs at 8 kHz.
"${FF[@]}" -i "$S8K" -c:a pcm_mulaw     "${FFOUT[@]}" "$OUT/fmt_mulaw.wav"
"${FF[@]}" -i "$S8K" -c:a pcm_alaw      "${FFOUT[@]}" "$OUT/fmt_alaw.wav"
"${FF[@]}" -i "$S8K" -c:a adpcm_ima_wav "${FFOUT[@]}" "$OUT/fmt_adpcm_ima.wav"
"${FF[@]}" -i "$S8K" -c:a adpcm_ms      "${FFOUT[@]}" "$OUT/fmt_adpcm_ms.wav"
# Compressed containers at 16 kHz.
"${FF[@]}" -i "$S16K" -c:a flac -sample_fmt s16 "${FFOUT[@]}" "$OUT/fmt_flac.flac"
"${FF[@]}" -i "$S16K" -c:a libvorbis -q:a 4 "${FFOUT[@]}" "$OUT/fmt_vorbis.ogg"
if ffmpeg -hide_banner -encoders 2>/dev/null | grep -q libmp3lame; then
  "${FF[@]}" -i "$S16K" -c:a libmp3lame -b:a 32k -write_xing 0 -id3v2_version 0 \
    "${FFOUT[@]}" "$OUT/fmt_mp3.mp3"
else
  "${SOX[@]}" "$S16K" -C 32 "$OUT/fmt_mp3.mp3"
fi
# Headerless raw.
"${SOX[@]}" "$S16K" -t raw -e signed-integer -b 16 -L "$OUT/speech_s16le_16000.raw"
"${SOX[@]}" "$S8K"  -t raw -e u-law -b 8 "$OUT/speech_ulaw_8000.ul"
"${SOX[@]}" "$S8K"  -t raw -e a-law -b 8 "$OUT/speech_alaw_8000.al"

# ---------------------------------------------------------------- channels
# Stereo 16 kHz: left = speech, right = 1 kHz tone (sox -M merges inputs as channels).
"${SOX[@]}" -M "$OUT/speech_16000.wav" "$OUT/tone1k_16000.wav" -b 16 "$OUT/stereo_speech_tone_16000.wav"
# Stereo 16 kHz: left = silence, right = speech (active channel is not the first).
"${SOX[@]}" -M "$OUT/silence_16000.wav" "$OUT/speech_16000.wav" -b 16 "$OUT/stereo_silence_speech_16000.wav" trim 0 1.5
# 4 channels, 8 kHz, 1.5 s: speech, tone, noise, silence.
"${SOX[@]}" -M "$OUT/speech_16000.wav" "$OUT/tone1k_16000.wav" "$OUT/noise_16000.wav" "$OUT/silence_16000.wav" \
  -b 16 "$OUT/quad_8000.wav" rate -v 8000 trim 0 1.5

# ---------------------------------------------------------------- malformed / tricky
cp "$OUT/fmt_mp3.mp3" "$OUT/mp3_named.wav"
"$PY" - "$OUT" "$TMP" <<'PYEOF'
import math, random, struct, sys, wave

out, tmp = sys.argv[1], sys.argv[2]

with wave.open(f'{out}/speech_16000.wav', 'rb') as w:
    assert w.getframerate() == 16000 and w.getnchannels() == 1 and w.getsampwidth() == 2
    pcm = w.readframes(w.getnframes())
one_s = pcm[:16000 * 2]          # first 1 s of speech, s16le

def fmt_chunk(tag, ch, sr, bits):
    block = ch * bits // 8
    return b'fmt ' + struct.pack('<IHHIIHH', 16, tag, ch, sr, sr * block, block, bits)

def wav(tag, ch, sr, bits, data, riff_size=None, data_size=None, extra=b''):
    body = b'WAVE' + fmt_chunk(tag, ch, sr, bits) + extra
    body += b'data' + struct.pack('<I', len(data) if data_size is None else data_size) + data
    if len(data) % 2 and data_size is None:
        body += b'\0'
    size = len(body) if riff_size is None else riff_size
    return b'RIFF' + struct.pack('<I', size) + body

def put(name, blob):
    with open(f'{out}/{name}', 'wb') as f:
        f.write(blob)

put('empty.wav', b'')
# Header says 1 s (32000 bytes) of data; only 10001 bytes follow (cut mid-sample).
put('truncated.wav', wav(1, 1, 16000, 16, one_s[:10001], riff_size=36 + 32000, data_size=32000))
# Streaming-style: RIFF and data sizes are 0xFFFFFFFF; 1 s of real data to EOF.
put('lying_sizes.wav', wav(1, 1, 16000, 16, one_s, riff_size=0xFFFFFFFF, data_size=0xFFFFFFFF))
# Valid WAV with a LIST chunk and an odd-sized unknown chunk (+ pad byte) before data.
info = b'INFOISFT' + struct.pack('<I', 6) + b'synth\0'
extra = b'LIST' + struct.pack('<I', len(info)) + info
extra += b'junk' + struct.pack('<I', 3) + b'abc' + b'\0'
put('extra_chunks.wav', wav(1, 1, 16000, 16, one_s, extra=extra))
# 32-bit float, 1 s of speech with NaN, +Inf, -Inf samples (and a run of NaN).
samples = [struct.unpack('<h', one_s[i:i + 2])[0] / 32768.0 for i in range(0, len(one_s), 2)]
for i in range(0, len(samples), 997):
    samples[i] = float('nan')
for i in range(331, len(samples), 1499):
    samples[i] = float('inf')
for i in range(777, len(samples), 1733):
    samples[i] = float('-inf')
for i in range(8000, 8100):
    samples[i] = float('nan')
put('nan_inf_float32.wav', wav(3, 1, 16000, 32, struct.pack(f'<{len(samples)}f', *samples)))
# Header fields that make no sense.
put('zero_rate.wav', wav(1, 1, 0, 16, one_s[:8000]))
put('zero_channels.wav', wav(1, 0, 16000, 16, one_s[:8000]))
put('not_audio.wav', b'This is a text file, not audio.\nIt only has a .wav name.\n' * 4)
rng = random.Random(7)
put('random_bytes.flac', bytes(rng.randrange(256) for _ in range(4096)))
PYEOF

# ---------------------------------------------------------------- G.722 (64 kbit/s, one code byte per two samples)
# A bitstream and another decoder's output for it (src/audio/g722.rs checks its decoder against that), and
# a longer stream for a wideband call in a packet capture (tests/it/capture.rs).
mkdir -p "$OUT/g722"
"${FF[@]}" -i "$OUT/speech_16000.wav" -t 2.5 -ac 1 -ar 16000 -c:a g722 -f g722 "$OUT/g722/speech.g722"
"${FF[@]}" -f g722 -i "$OUT/g722/speech.g722" -f s16le -acodec pcm_s16le "$OUT/g722/speech_ffmpeg.s16"
"${FF[@]}" -i "$ROOT/samples/synthetic_robocall.wav" -ac 1 -ar 16000 -c:a g722 -f g722 "$OUT/g722/robocall.g722"

echo "make_fixtures: wrote $(ls "$OUT" | grep -vc -e '^golden$' -e '^README.md$') files, $(du -sk "$OUT" | cut -f1) KiB total in $OUT"
