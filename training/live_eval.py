"""Live-alert rates on the dev split: how often `synthscan monitor` raises an alert on genuine and on synthetic
dev files, clean and through a G.711 channel. The file-level threshold rule (<= 2 % genuine flagged) says nothing
about the live policy (alerts on a 3 s mean of overlapping windows as soon as 3 are in), so it is measured here.

    python training/live_eval.py                                  # the shipped model
    python training/live_eval.py --model M=path/to/synthscan.json --model E=models/synthscan.json

Each file is decoded by ffmpeg to raw PCM and piped to `target/release/synthscan monitor -` (clean: s16le 16 kHz;
phone: 300-3400 Hz band, mu-law 8 kHz). Dev = the corpus dev split plus the dev genuine clips of
training/.cache/genuine (JFK, codec2, ...) when present.
"""
import argparse
import csv
import json
import subprocess
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

from synthscan_train import data as D

BIN = D.REPO / "target" / "release" / "synthscan"
CHANNELS = {
    "clean": (["-ar", "16000", "-f", "s16le"], ["--raw-format", "s16le", "--raw-rate", "16000"]),
    "phone": (["-af", "highpass=f=300,lowpass=f=3400", "-ar", "8000", "-f", "mulaw"],
              ["--raw-format", "ulaw", "--raw-rate", "8000"]),
}


def dev_files():
    corpus = D.CORPUS
    rows = [(str(corpus / r["file"]), r["label"], r["family"])
            for r in csv.DictReader(open(corpus / "manifest.csv")) if r["split"] == "dev"]
    gen = D.CACHE / "genuine" / "manifest.csv"
    if gen.exists():
        rows += [(str(gen.parent / r["file"]), "bonafide", "pkg_genuine")
                 for r in csv.DictReader(open(gen)) if r["split"] == "dev"]
    return rows


def alerted(models, path, cond):
    ff, raw = CHANNELS[cond]
    pcm = subprocess.run(["ffmpeg", "-v", "quiet", "-i", path, "-ac", "1", *ff, "-"],
                         capture_output=True, check=True).stdout
    out = {}
    for name, manifest in models.items():
        p = subprocess.run([str(BIN), "monitor", "-", *raw, "-f", "jsonl", "--model", str(manifest)],
                           input=pcm, capture_output=True)
        events = [json.loads(line) for line in p.stdout.decode().splitlines() if line.startswith("{")]
        out[name] = any(e.get("event") == "alert" and e.get("state") == "raised" for e in events)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", default=[], help="NAME=manifest.json (repeatable)")
    ap.add_argument("--jobs", type=int, default=2)
    a = ap.parse_args()
    models = dict(m.split("=", 1) for m in a.model) or {"shipped": D.REPO / "models" / "synthscan.json"}
    jobs = [(f, lab, fam, cond) for f, lab, fam in dev_files() for cond in CHANNELS]
    with ThreadPoolExecutor(a.jobs) as ex:
        res = list(ex.map(lambda j: (j[1], j[2], j[3], alerted(models, j[0], j[3])), jobs))
    agg = defaultdict(lambda: defaultdict(int))
    for lab, fam, cond, out in res:
        for key in ((cond, lab, "all"), (cond, lab, fam)):
            agg[key]["n"] += 1
            for name, hit in out.items():
                agg[key][name] += hit
    print("| channel | label | family | files | " + " | ".join(f"{n} alerted" for n in models) + " |")
    print("|---|---|---|---|" + "---|" * len(models))
    for (cond, lab, fam), c in sorted(agg.items()):
        rates = " | ".join(f"{100 * c[n] / c['n']:.1f} %" for n in models)
        print(f"| {cond} | {lab} | {fam} | {c['n']} | {rates} |")


if __name__ == "__main__":
    main()
