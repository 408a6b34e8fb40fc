"""Step 1: tables, augmented copies, phone-channel dev copies, Rust features (cached).

    python -m synthscan_train.prepare            (run from training/)
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import soundfile as sf

from . import augment
from . import config
from . import data
from . import datasums

PHONE = data.CACHE / "devphone"


def phone_path(path: str) -> Path:
    return PHONE / (data.stem(path) + ".wav")


def _phone_one(path: str) -> None:
    out = phone_path(path)
    if out.exists():
        return
    x = data.load16(path)
    y = augment.phone_channel(x, data.SR, "mu")
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
    p = data.CACHE / "draft_manifest.json"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(config.manifest(), indent=1))
    return p


def main() -> None:
    t0 = time.time()
    rows = data.all_rows()
    units = data.make_units(rows)
    print(f"rows {len(rows)}  units {len(units)}", flush=True)
    # the caches are keyed by path: drop what was made from a clip regenerated in place since the last run
    sums = datasums.refresh_caches(rows, units)
    variants = data.build_variants(units)
    data.write_csv(data.VARIANTS, variants)
    datasums.provenance_path(data.VARIANTS).write_text(json.dumps(datasums.provenance(sums), indent=1) + "\n")
    print(f"variants {len(variants)}  ({time.time() - t0:.0f}s)", flush=True)
    dev = dev_tables(rows)
    data.write_csv(data.DEV_TABLE, dev)
    print(f"dev files {len(dev)}  ({time.time() - t0:.0f}s)", flush=True)
    cfg = feature_config()
    data.extract_features([v["path"] for v in variants] + [d["path"] for d in dev], cfg)
    missing = [v["path"] for v in variants + dev if not data.feat_paths(v["path"])[1].exists()]
    print(f"features done, {len(missing)} missing  ({time.time() - t0:.0f}s)", flush=True)
    for m in missing[:5]:
        print("  missing:", m)


if __name__ == "__main__":
    main()
