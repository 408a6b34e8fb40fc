#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 120) and prints libFuzzer's final stats.
set -uo pipefail
cd "$(dirname "$0")"
secs=${1:-120}
for t in decode raw media_message stream_protocol capture sip manifest features; do
  echo "== $t"
  cargo +nightly fuzz run -O "$t" -- -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 2>&1 \
    | grep -E "^(stat::|Done|#[0-9]+ +DONE)|SUMMARY|panicked|ERROR|artifact" | head -20
done
