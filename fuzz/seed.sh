#!/usr/bin/env bash
# Seeds fuzz/corpus/<target>/ from the test fixtures and models (the corpus itself is not committed).
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p corpus/{decode,raw,media_message,manifest,features}
for f in ../tests/fixtures/*.{wav,flac,ogg,mp3} ../tests/fixtures/malformed/*; do
  [ "$(stat -c %s "$f")" -le 200000 ] && cp "$f" corpus/decode/ || true
done
head -c 4000 ../tests/fixtures/speech_s16le_16000.raw | { printf '\x00\x10\x00\x01'; cat; } > corpus/raw/s16
head -c 2000 ../tests/fixtures/speech_ulaw_8000.ul | { printf '\x01\xf4\x01\x01'; cat; } > corpus/raw/ulaw
printf '%s' '{"event":"start","streamSid":"MZ1","start":{"streamSid":"MZ1","mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}}}' > corpus/media_message/start
printf '%s' '{"event":"media","media":{"track":"inbound","chunk":"1","timestamp":"20","payload":"/39/f39/f39/f3+AgICA"}}' > corpus/media_message/media
printf '%s' '{"event":"stop","streamSid":"MZ1"}' > corpus/media_message/stop
cp ../models/synthscan.json corpus/manifest/shipped.json
cp ../models/test/synthscan-test.json corpus/manifest/test.json
head -c 8002 ../tests/fixtures/fmt_float32.wav > corpus/features/float
echo "seeded: $(find corpus -type f | wc -l) files"
