"""One line per evaluated model (training/evaluate.py output): file-level EER through the Rust binary,
clean / phone, overall and per family (waveglow, vc, kokoro jm_kumo, hibari held-out), genuine flagged
at the manifest threshold.

    python -m synthscan_train.compare NAME=path/to/dev_eval.json ...
"""
import json
import sys


def pct(v):
    return "-" if v is None or v != v else f"{100 * v:.1f}"


def row(name: str, path: str) -> str:
    R = json.load(open(path))
    cells = []
    for c in ("clean", "phone"):
        e = R[c]["eer"]
        hib = R.get("gen_dev", {}).get("hibari_heart", {}).get("eer" if c == "clean" else "eer_phone")
        cells.append(" / ".join(pct(x) for x in (e["all"], e.get("waveglow"), e.get("vc"), e.get("kokoro"), hib)))
    flag = f"{pct(R['clean']['genuine_flagged'])} / {pct(R['phone']['genuine_flagged'])}"
    det = f"{pct(R['clean']['detection_rate'])} / {pct(R['phone']['detection_rate'])}"
    return f"| {name} | {cells[0]} | {cells[1]} | {R['threshold']:.4f} | {flag} | {det} |"


def main():
    print("| model | clean EER all / waveglow / vc / kokoro / hibari | phone EER all / waveglow / vc / kokoro / hibari "
          "| threshold | genuine flagged clean / phone | detected clean / phone |")
    print("|---|---|---|---|---|---|")
    for a in sys.argv[1:]:
        name, path = a.split("=", 1)
        print(row(name, path))


if __name__ == "__main__":
    main()
