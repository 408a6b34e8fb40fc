#!/usr/bin/env bash
# Batch throughput benchmark (BENCHMARKS.md): N files of mixed formats and lengths made from the
# shipped samples, analysed with --jobs 1 and --jobs 2.
#   scripts/bench_batch.sh [N_FILES=1000] [WORKDIR=/tmp/synthscan-batch-bench]
# Needs sox (with mp3/ogg/flac support: libsox-fmt-all) and a release build.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
n=${1:-1000}
work=${2:-/tmp/synthscan-batch-bench}
bin="$root/target/release/synthscan"
[ -x "$bin" ] || (cd "$root" && cargo build --release)
mkdir -p "$work/in"
pool="$work/pool.wav"
if [ ! -f "$pool" ]; then
  s="$root/samples"
  sox "$s/synthetic_robocall.wav" "$s/genuine_jfk.wav" "$s/genuine_phone_prompt.wav" \
      "$s/genuine_jfk.wav" "$s/synthetic_robocall.wav" "$s/genuine_phone_prompt.wav" \
      "$s/genuine_phone_prompt.wav" "$s/synthetic_robocall.wav" "$s/genuine_jfk.wav" "$pool"
fi
have=$(find "$work/in" -type f | wc -l)
if [ "$have" -lt "$n" ]; then
  echo "making $n inputs in $work/in ..." >&2
  for ((i = 0; i < n; i++)); do
    off=$(( (i * 7) % 40 )); len=$(( 20 + (i * 13) % 41 ))   # 20-60 s calls
    case $((i % 5)) in
      0) sox "$pool" -r 16000 -b 16 "$work/in/call$i.wav" trim "$off" "$len" ;;
      1) sox "$pool" -r 8000 -e mu-law "$work/in/call$i.wav" trim "$off" "$len" ;;
      2) sox "$pool" -r 16000 "$work/in/call$i.flac" trim "$off" "$len" ;;
      3) sox "$pool" -r 8000 -C 16 "$work/in/call$i.mp3" trim "$off" "$len" ;;
      4) sox "$pool" -r 16000 "$work/in/call$i.ogg" trim "$off" "$len" ;;
    esac
  done
fi
echo "$(find "$work/in" -type f | wc -l) files, $(du -sh "$work/in" | cut -f1)" >&2
for jobs in 1 2; do
  /usr/bin/time -f "jobs $jobs: %e s wall, %M KB peak RSS" \
    "$bin" batch "$work/in" --jobs "$jobs" --progress never -o "$work/out_$jobs.jsonl" || [ $? -eq 1 ]
done
