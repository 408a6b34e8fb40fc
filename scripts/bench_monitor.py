#!/usr/bin/env python3
"""Live-monitor benchmark (BENCHMARKS.md): feed `synthscan monitor -` raw 16 kHz PCM paced in
real time (20 ms every 20 ms, like a sound card) for SECONDS, then report the monitor's own
per-update compute statistics (--stats) and its CPU time from /proc (user + system) as a share
of one core over the wall time.

    python3 scripts/bench_monitor.py [SECONDS=60] [RATE=16000]
"""
import os
import subprocess
import sys
import time
import wave

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 60.0
rate = int(sys.argv[2]) if len(sys.argv) > 2 else 16000
pcm = b""
for name in ["synthetic_robocall.wav", "genuine_jfk.wav", "genuine_phone_prompt.wav"]:
    with wave.open(os.path.join(root, "samples", name)) as w:
        assert w.getframerate() == 16000 and w.getsampwidth() == 2
        pcm += w.readframes(w.getnframes())
if rate != 16000:
    # Simple decimation/repetition is enough for a timing benchmark.
    import array
    a = array.array("h", pcm)
    step = 16000 / rate
    pcm = array.array("h", (a[int(i * step)] for i in range(int(len(a) / step)))).tobytes()
chunk = rate // 50 * 2  # 20 ms of s16le
proc = subprocess.Popen(
    [os.path.join(root, "target", "release", "synthscan"), "monitor", "-", "--raw-format", "s16le",
     "--raw-rate", str(rate), "--format", "jsonl", "--stats"],
    stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
tick = os.sysconf("SC_CLK_TCK")
start = time.monotonic()
sent = 0
pos = 0
while sent < seconds * 50:
    target = start + sent * 0.02
    now = time.monotonic()
    if target > now:
        time.sleep(target - now)
    piece = pcm[pos:pos + chunk]
    if len(piece) < chunk:
        pos = 0
        piece = pcm[:chunk]
    pos += chunk
    proc.stdin.write(piece)
    proc.stdin.flush()
    sent += 1
with open(f"/proc/{proc.pid}/stat") as f:
    fields = f.read().rsplit(")", 1)[1].split()
cpu_s = (int(fields[11]) + int(fields[12])) / tick
wall = time.monotonic() - start
proc.stdin.close()
err = proc.stderr.read().decode()
proc.wait()
print(err.strip())
print(f"paced {seconds:.0f} s at {rate} Hz: process CPU {cpu_s:.2f} s over {wall:.1f} s wall "
      f"= {100 * cpu_s / wall:.2f} % of one core (includes start-up and model load)")
