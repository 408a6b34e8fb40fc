"""Live-alert rates on the dev split: how often `synthscan monitor` raises an alert on genuine and on synthetic
dev files, clean and through a G.711 channel. The file-level threshold rule (<= 2 % genuine flagged) says nothing
about the live policy (alerts on a 3 s mean of overlapping windows once it has held at or above the threshold plus
a margin of 0.02 for 1 s), so it is measured here.

    python training/experiments/live_eval.py                      # the shipped model
    python training/experiments/live_eval.py --model M=path/to/synthscan.json --model E=models/synthscan.json
    python training/experiments/live_eval.py --model 1s=models/synthscan.json --model 2s=models/synthscan.json:--alert-hold-seconds=2

The files are synthscan_train.evaluate's dev table (the corpus dev split plus the held-out generated and package clips, clean
and through its deterministic G.711 channel), each decoded by ffmpeg to 16-bit PCM at 16 kHz (clean) or 8 kHz
(phone) and piped to `target/release/synthscan monitor -`. A monitor run that fails stops the measurement.
"""
import argparse
import json
import subprocess
import sys
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from synthscan_train import data  # noqa: E402
from synthscan_train.evaluate import ensure_dev  # noqa: E402

BIN = data.REPO / "target" / "release" / "synthscan"
RATE = {"clean": 16000, "phone": 8000}


def alerted(models, path, cond):
    """{model name: whether monitor raised an alert} for one dev file. `models` maps a name to (manifest, extra
    monitor arguments)."""
    rate = str(RATE[cond])
    pcm = subprocess.run(["ffmpeg", "-v", "quiet", "-i", path, "-ac", "1", "-ar", rate, "-f", "s16le", "-"],
                         capture_output=True, check=True).stdout
    out = {}
    for name, (manifest, extra) in models.items():
        p = subprocess.run([str(BIN), "monitor", "-", "--raw-format", "s16le", "--raw-rate", rate, "-f", "jsonl",
                            "--model", str(manifest), *extra], input=pcm, capture_output=True)
        # exit 0: nothing flagged, 1: flagged; anything else is a failure, not a "no alert"
        if p.returncode not in (0, 1):
            raise SystemExit(f"synthscan monitor failed on {path} ({name}): {p.stderr.decode().strip()}")
        events = [json.loads(line) for line in p.stdout.decode().splitlines() if line.startswith("{")]
        out[name] = any(e.get("event") == "alert" and e.get("state") == "raised" for e in events)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", default=[],
                    help="NAME=manifest.json[:ARG...] (repeatable; colon-separated extra `monitor` arguments, "
                         "e.g. :--alert-hold-seconds=2)")
    ap.add_argument("--jobs", type=int, default=2)
    a = ap.parse_args()
    models = {}
    for m in a.model:
        name, spec = m.split("=", 1)
        manifest, *extra = spec.split(":")
        models[name] = (manifest, extra)
    models = models or {"shipped": (data.REPO / "models" / "synthscan.json", [])}
    dev = ensure_dev()
    with ThreadPoolExecutor(a.jobs) as ex:
        hits = list(ex.map(lambda r: alerted(models, r["path"], r["condition"]), dev))
    agg = defaultdict(lambda: defaultdict(int))
    for r, out in zip(dev, hits):
        for group in ("all", f"{r['source']}/{r['family']}"):
            c = agg[(r["condition"], r["label"], group)]
            c["n"] += 1
            for name, hit in out.items():
                c[name] += hit
    print("| channel | label | source/family | files | " + " | ".join(f"{n} alerted" for n in models) + " |")
    print("|---|---|---|---|" + "---|" * len(models))
    for (cond, lab, fam), c in sorted(agg.items()):
        rates = " | ".join(f"{100 * c[n] / c['n']:.1f} %" for n in models)
        print(f"| {cond} | {lab} | {fam} | {c['n']} | {rates} |")


if __name__ == "__main__":
    main()
