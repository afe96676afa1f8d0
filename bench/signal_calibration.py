"""Calibration of castline.qa.signal_checks thresholds: clean hibari/piper renders vs the same
with a chord bed / pink / white noise, time-compressed, padded, clipped.

Run from the repository root: ``.venv/bin/python bench/signal_calibration.py``."""
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
import numpy as np
from speaker_separation import SENTENCES, corpus_segments
from castline.engines.registry import engine_class
from castline.voices.profiles import load_voice_library
from castline.audio.resample import resample
from castline.qa.signal_checks import (active_frames, clipping_check, frame_levels_db, long_silence_check,
                                     loudness_spread, non_speech_energy_check, quiet_tonal_persistence,
                                     silence_check, speech_rate_check, speech_to_pause_db,
                                     sustained_tone_fraction)
RATE = 24000

def chord_bed(seconds, seed=0, rate=RATE):
    rng=np.random.default_rng(seed); n=int(seconds*rate); out=np.zeros(n); t0=0
    roots=[130.81,146.83,164.81,174.61,196.0,220.0]
    while t0<n:
        dur=int(rng.uniform(1.5,2.5)*rate); seg=np.arange(min(dur,n-t0))/rate
        root=rng.choice(roots); notes=[root, root*2**(4/12), root*2**(7/12), root*2]
        env=np.minimum(1, seg/0.05)*np.minimum(1,(seg[-1]-seg+1e-9)/0.1) if seg.size else seg
        out[t0:t0+seg.size]+=sum(sum(np.sin(2*np.pi*f*k*seg+rng.uniform(0,6.3))/k**1.5 for k in range(1,5)) for f in notes)*env
        t0+=dur
    return (out/np.sqrt(np.mean(out**2))).astype(np.float32)
def pink(n, seed=0):
    rng=np.random.default_rng(seed); f=np.fft.rfft(rng.standard_normal(n)); k=np.arange(f.size); k[0]=1
    p=np.fft.irfft(f/np.sqrt(k), n); return (p/np.sqrt(np.mean(p**2))).astype(np.float32)
def white(n, seed=0): return np.random.default_rng(seed).standard_normal(n).astype(np.float32)
def speech_rms(x):
    lv=frame_levels_db(x,RATE); act=active_frames(lv); return float(np.sqrt(np.mean(10**(lv[act]/10))))
def mix(x, bed, snr_db): return (x + bed[:x.size]*speech_rms(x)*10**(-snr_db/20)).astype(np.float32)

lib = load_voice_library(REPO / 'voices')
clips = []  # (voice, text, audio)
for name, v in [('hibari','heart'),('piper','joe')]:
    e = engine_class(name)(); r = e.capabilities.sample_rate
    texts = list(SENTENCES[:12]) + [' '.join(SENTENCES[12+3*k:15+3*k]) for k in range(6)]
    for t, a in zip(texts, e.synthesize(texts, lib.get(v), list(range(len(texts))))):
        clips.append((v, t, resample(a, r, RATE)))
def rng_(name, vals): vals=np.array(vals, float); print(f"  {name:34s} {vals.min():9.3f} .. {vals.max():9.3f}  (median {np.median(vals):.3f}, n={vals.size})")
print("clean renders")
for kind, sel in (("single sentences", lambda t: t.count('.')+t.count('?') <= 1), ("three-sentence chunks", lambda t: t.count('.')+t.count('?') > 1)):
    sub=[(v,t,a) for v,t,a in clips if sel(t)]
    print(f" {kind}")
    rng_("speech rate (wpm)", [speech_rate_check(a,RATE,t).value for v,t,a in sub])
    rng_("longest inner pause (ms)", [long_silence_check(a,RATE).value for v,t,a in sub])
    rng_("speech-to-pause (dB)", [speech_to_pause_db(a,RATE) for v,t,a in sub])
    rng_("held-note fraction", [sustained_tone_fraction(a,RATE) for v,t,a in sub])
    rng_("quiet tonal persistence", [quiet_tonal_persistence(a,RATE) for v,t,a in sub])
    rng_("clipped fraction", [clipping_check(a,RATE).value for v,t,a in sub])
    rng_("audible fraction", [silence_check(a,RATE).value for v,t,a in sub])
for v in ('heart','joe'):
    ls = loudness_spread({v: [a for vv,t,a in clips if vv==v and t.count('.')+t.count('?')<=1]}, RATE)[0]
    print(f"  loudness spread {v}: {ls.spread_lu:.2f} LU (p10-p90 of 12 sentences), max-min {max(ls.chunk_lufs)-min(ls.chunk_lufs):.2f}")
print("contaminated (all 36 clips)")
for snr in (0,10,20,30,40):
    m=[mix(a, chord_bed(a.size/RATE+1, i), snr) for i,(v,t,a) in enumerate(clips)]
    print(f" chords {snr} dB under speech"); rng_("speech-to-pause (dB)", [speech_to_pause_db(x,RATE) for x in m]); rng_("held-note fraction", [sustained_tone_fraction(x,RATE) for x in m]); rng_("quiet tonal persistence", [quiet_tonal_persistence(x,RATE) for x in m]); print("   flags", {f: [non_speech_energy_check(x,RATE).flag for x in m].count(f) for f in (None,'music','noise')})
for snr in (20,30,40):
    for nm, gen in (("pink", pink), ("white", white)):
        m=[mix(a, gen(a.size, i), snr) for i,(v,t,a) in enumerate(clips)]
        print(f" {nm} {snr} dB under speech"); rng_("speech-to-pause (dB)", [speech_to_pause_db(x,RATE) for x in m]); rng_("held-note fraction", [sustained_tone_fraction(x,RATE) for x in m]); rng_("quiet tonal persistence", [quiet_tonal_persistence(x,RATE) for x in m]); print("   flags", {f: [non_speech_energy_check(x,RATE).flag for x in m].count(f) for f in (None,'music','noise')})
print("real references (9 s pieces)")
for n,a,r in corpus_segments(9.0):
    x=resample(a,r,RATE); f=non_speech_energy_check(x,RATE); print(f"  {n:20s} {f.flag!s:6s} {f.detail}")
print("time-compressed / stretched (resample), clipped")
for factor in (0.6, 0.7, 1.3, 1.5):
    rng_(f"speech rate x{factor}", [speech_rate_check(resample(a, int(RATE*factor), RATE), RATE, t).value for v,t,a in clips])
for gain_db in (6, 12, 20):
    rng_(f"clipped fraction +{gain_db} dB", [clipping_check(np.clip(a*10**(gain_db/20),-1,1),RATE).value for v,t,a in clips])
