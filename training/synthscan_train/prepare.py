"""Step 1: tables, augmented copies, phone-channel dev copies, Rust features (cached).

    python -m synthscan_train.prepare            (run from training/)
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import soundfile as sf

from . import augment as A
from . import config as C
from . import data as D
from . import datasums as S

PHONE = D.CACHE / "devphone"


def phone_path(path: str) -> Path:
    return PHONE / (D.stem(path) + ".wav")


def _phone_one(path: str) -> None:
    out = phone_path(path)
    if out.exists():
        return
    x = D.load16(path)
    y = A.phone_channel(x, D.SR, "mu")
    sf.write(out, y, 8000, subtype="ULAW")  # 8 kHz G.711 mu-law WAV, decoded by the Rust front end


def dev_tables(rows: list[dict]) -> list[dict]:
    PHONE.mkdir(parents=True, exist_ok=True)
    dev = [r for r in rows if r["role"] in ("dev", "dev_extra", "dev_demo")]
    with ProcessPoolExecutor(2) as ex:
        list(ex.map(_phone_one, [r["path"] for r in dev], chunksize=16))
    out = []
    for r in dev:
        base = {k: r[k] for k in ("label", "family", "system", "speaker", "role", "source", "dataset")}
        out.append({**base, "condition": "clean", "path": r["path"], "orig": r["path"]})
        out.append({**base, "condition": "phone", "path": str(phone_path(r["path"])), "orig": r["path"]})
    return out


def feature_config() -> Path:
    p = D.CACHE / "draft_manifest.json"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(C.manifest(), indent=1))
    return p


def main() -> None:
    t0 = time.time()
    rows = D.all_rows()
    units = D.make_units(rows)
    print(f"rows {len(rows)}  units {len(units)}", flush=True)
    # the caches are keyed by path: drop what was made from a clip regenerated in place since the last run
    sums = S.refresh_caches(rows, units)
    variants = D.build_variants(units)
    D.write_csv(D.VARIANTS, variants)
    S.provenance_path(D.VARIANTS).write_text(json.dumps(S.provenance(sums), indent=1) + "\n")
    print(f"variants {len(variants)}  ({time.time() - t0:.0f}s)", flush=True)
    dev = dev_tables(rows)
    D.write_csv(D.DEV_TABLE, dev)
    print(f"dev files {len(dev)}  ({time.time() - t0:.0f}s)", flush=True)
    cfg = feature_config()
    D.extract_features([v["path"] for v in variants] + [d["path"] for d in dev], cfg)
    missing = [v["path"] for v in variants + dev if not D.feat_paths(v["path"])[1].exists()]
    print(f"features done, {len(missing)} missing  ({time.time() - t0:.0f}s)", flush=True)
    for m in missing[:5]:
        print("  missing:", m)


if __name__ == "__main__":
    main()
