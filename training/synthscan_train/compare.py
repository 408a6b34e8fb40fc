"""One line per evaluated model (training/evaluate.py output): file-level EER through the Rust binary,
clean / phone, overall and per family (waveglow, vc, kokoro jm_kumo, hibari held-out), genuine flagged
at the manifest threshold.

    python -m synthscan_train.compare NAME=path/to/dev_eval.json ...
    python -m synthscan_train.compare --against BASE=dev_eval.json NAME=dev_eval.json ...

--against adds, for each model, a paired bootstrap of its difference from BASE: genuine and synthetic dev
files are resampled with replacement (the same draw for both models, BOOT draws), and each draw's
difference in overall EER and in detection at each model's own threshold is recorded, clean and through G.711.
The thresholds stay fixed, so the detection difference leaves out how far each threshold itself could move
(evaluate.py's threshold_stability gives that per model).
It answers "is this better than the shipped model, or inside the noise of 124 genuine and 315 synthetic
files?". Files inconclusive for either model are left out of that model's comparison, as evaluate.py
leaves inconclusive files out of the EER (so detection here is among files with a verdict). It resamples
files, not speakers or datasets, so the true spread is wider still.

--wide uses evaluate.py's wide dev set instead (the corpus dev plus the held-out genuine package speech and
generated TTS: ~985 genuine and ~490 synthetic files per condition), for both the table and the bootstrap.
"""
import argparse
import json

import numpy as np

from .data import portable
from .store import eer

BOOT = 2000


def pct(v):
    return "-" if v is None or v != v else f"{100 * v:.1f}"


def part(R: dict, cond: str, wide: bool) -> dict:
    if not wide:
        return R[cond]
    if "wide" not in R:
        raise SystemExit("--wide: an evaluation has no wide dev set (re-run evaluate.py after genuine.py)")
    return R["wide"][cond]


def row(name: str, path: str, wide: bool) -> str:
    R = json.load(open(path))
    cells = []
    for c in ("clean", "phone"):
        e = part(R, c, wide)["eer"]
        hib = R.get("gen_dev", {}).get("hibari_heart", {}).get("eer" if c == "clean" else "eer_phone")
        cells.append(" / ".join(pct(x) for x in (e["all"], e.get("waveglow"), e.get("vc"), e.get("kokoro"), hib)))
    clean, phone = part(R, "clean", wide), part(R, "phone", wide)
    flag = f"{pct(clean['genuine_flagged'])} / {pct(phone['genuine_flagged'])}"
    det = f"{pct(clean['detection_rate'])} / {pct(phone['detection_rate'])}"
    nb = R.get("threshold_narrowband")
    thr = f"{R['threshold']:.4f}" + (f" / {nb:.4f}" if nb is not None else "")
    return f"| {name} | {cells[0]} | {cells[1]} | {thr} | {flag} | {det} |"


def conclusive(R: dict, cond: str, wide: bool) -> dict[str, tuple[float, float, bool]]:
    """file -> (p, label 1 = synthetic, flagged) for the files with a verdict. Flagged is the binary's verdict,
    which applied the threshold of the file's input rate (a split manifest has two)."""
    # portable(): older evaluations named files by absolute path
    return {portable(f["file"]): (f["p"], 1.0 if f["label"] == "spoof" else 0.0, f["verdict"] == "synthetic")
            for f in part(R, cond, wide)["files"] if f["verdict"] != "inconclusive"}


def paired(base: dict, other: dict, wide: bool, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    cells = []
    for cond in ("clean", "phone"):
        a, b = conclusive(base, cond, wide), conclusive(other, cond, wide)
        files = sorted(set(a) & set(b))
        y = np.array([a[f][1] for f in files])
        pa, pb = np.array([a[f][0] for f in files]), np.array([b[f][0] for f in files])
        fa, fb = np.array([a[f][2] for f in files]), np.array([b[f][2] for f in files])
        gen, syn = np.nonzero(y == 0)[0], np.nonzero(y == 1)[0]
        d_eer, d_det, d_flag = np.empty(BOOT), np.empty(BOOT), np.empty(BOOT)
        for i in range(BOOT):
            g, s = rng.choice(gen, len(gen)), rng.choice(syn, len(syn))
            idx = np.concatenate([g, s])
            d_eer[i] = eer(pb[idx], y[idx]) - eer(pa[idx], y[idx])
            d_det[i] = fb[s].mean() - fa[s].mean()
            d_flag[i] = fb[g].mean() - fa[g].mean()
        cells.append(f"{100 * np.median(d_eer):+.1f} [{100 * np.percentile(d_eer, 5):+.1f}, "
                     f"{100 * np.percentile(d_eer, 95):+.1f}], {100 * np.mean(d_eer < 0):.0f} %")
        for d in (d_det, d_flag):
            cells.append(f"{100 * np.median(d):+.1f} [{100 * np.percentile(d, 5):+.1f}, "
                         f"{100 * np.percentile(d, 95):+.1f}]")
    return " | ".join(cells)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--against", metavar="NAME=JSON", help="baseline for a paired bootstrap of the differences")
    ap.add_argument("--wide", action="store_true", help="use the wide dev set (see above)")
    ap.add_argument("models", nargs="+", metavar="NAME=JSON")
    a = ap.parse_args()
    print("| model | clean EER all / waveglow / vc / kokoro / hibari | phone EER all / waveglow / vc / kokoro / hibari "
          "| threshold | genuine flagged clean / phone | detected clean / phone |")
    print("|---|---|---|---|---|---|")
    for m in ([a.against] if a.against else []) + a.models:
        name, path = m.split("=", 1)
        print(row(name, path, a.wide))
    if not a.against:
        return
    base_name, base_path = a.against.split("=", 1)
    base = json.load(open(base_path))
    print(f"\nPaired bootstrap against {base_name} ({BOOT} draws of the {'wide ' if a.wide else ''}dev files): "
          "median difference [5th, 95th percentile], and for EER the share of draws in which the model is better "
          "(lower)")
    print()
    print("| model | clean EER diff, P(better) | clean detected diff | clean genuine flagged diff "
          "| phone EER diff, P(better) | phone detected diff | phone genuine flagged diff |")
    print("|---|---|---|---|---|---|---|")
    for m in a.models:
        name, path = m.split("=", 1)
        print(f"| {name} | {paired(base, json.load(open(path)), a.wide)} |")


if __name__ == "__main__":
    main()
