"""VibeVoice engine benchmark: real-time factor and peak memory per window length × batch size.

Each (window length, batch size) runs in its own process: load the model, warm up (a one-frame
window per voice, which also fills the voice-prompt cache), then time a ``synthesize_windows`` call
of ``batch`` two-speaker windows of that length (the fastest of ``--repeats``). RTF = wall seconds /
audio seconds (lower is faster); peak memory is ``torch.cuda.max_memory_allocated`` on CUDA, the
process's peak RSS on CPU (model load included).

    .venv/bin/python bench/vibevoice.py --model DIR --device cpu|cuda [--windows-seconds 10 30 60] [--batch 1 2 4]

Without ``--model`` it benchmarks a model built here with random weights (nothing to download):

    .venv/bin/python bench/vibevoice.py --device cuda          # VibeVoice at the 1.5B configuration
    .venv/bin/python bench/vibevoice.py --tiny                 # CPU smoke check (tests/vibevoice_tiny.py)

builds the real transformers classes at the 1.5B configuration (Qwen2.5-1.5B backbone: 28 layers,
1536 wide, vocabulary 151,936; the released acoustic and semantic tokenizers; a 4-layer diffusion
head; bf16 on CUDA), saves it once to a temporary folder, then in one process measures
frames/s, real-time factor and peak GPU memory at batch 1, 4, 8 and 16 (``--batches``), each
window forced to exactly ``--window-seconds`` of audio, through three paths that take turns at each
batch size: castline's engine (``VibeVoiceEngine.synthesize_windows``: per-window seeded noise, voice
prompts processed once); the raw batched ``generate`` of the same checkpoint doing the same work
(``processor.apply_chat_template`` + ``model.generate``, guidance 1.0, so guidance acts in the diffusion
head only, as in castline); and the model card's call (guidance 1.3, which also adds token-level CFG).
Each row is timed on its second call (the first call's time is printed beside it), and castline's share
of raw throughput is printed. ``--attention`` restricts attention to one SDPA backend; ``--count-ops``
also prints the PyTorch operator calls per frame of each path (at small batches on a GPU the host
launching kernels sets the pace, so this count is what a step costs).
``--budget-s`` (default 540) starts no new row after that, so the run ends within 10 minutes.

``--force-frames`` is for random test models only (tests/vibevoice_tiny.py builds one): such a model
never chooses to speak, so each window is forced to exactly its length in frames (7.5 per second).
Reference clips are synthetic voiced-speech stand-ins unless ``--reference WAV`` is given (twice for
two speakers).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("CASTLINE_SHARED_DIR", REPO.parent / "shared")) / "corpus" / "vibevoice-demo" / "scripts"
FALLBACK_TEXT = ("We looked at the numbers again this morning, and honestly they tell a more interesting story than "
                 "the headline suggests. ")
CHARS_PER_SECOND = 14.0


def script_text(chars: int) -> list[str]:
    """About ``chars`` characters of dialogue, as lines (the demo corpus when present, else filler)."""
    source = CORPUS / "4p_climate_45min.txt"
    lines = []
    if source.is_file():
        for raw in source.read_text(encoding="utf-8").splitlines():
            if ":" in raw:
                lines.append(raw.split(":", 1)[1].strip())
    lines = [line for line in lines if line] or [FALLBACK_TEXT * 2]
    picked, total = [], 0
    while total < chars:
        line = lines[len(picked) % len(lines)][: max(20, chars - total)]
        picked.append(line)
        total += len(line)
    return picked


def references(folder: Path, given: list[str]) -> list[Path]:
    if given:
        return [Path(path) for path in given]
    import soundfile

    made = []
    for seed in (1, 2):
        path = folder / f"reference_{seed}.wav"
        soundfile.write(path, voiced_stand_in(8.0, seed), 24_000, subtype="FLOAT")
        made.append(path)
    return made


def voiced_stand_in(seconds: float, seed: int, sample_rate: int = 24_000):
    """A gliding harmonic series with syllable-rate modulation at about −20 dBFS (float32)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    time_s = np.arange(int(seconds * sample_rate)) / sample_rate
    f0 = 120 + 30 * seed + 30 * np.sin(2 * np.pi * 0.4 * time_s + rng.uniform(0, 6.3))
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    voiced = sum(np.sin(k * phase) / k ** 2 for k in range(1, 20))
    envelope = 0.2 + 0.8 * np.abs(np.sin(2 * np.pi * 2.0 * time_s))
    signal = voiced * envelope + 0.01 * rng.standard_normal(time_s.size)
    return (0.1 * signal / np.sqrt(np.mean(signal ** 2))).astype(np.float32)


def measure_one(args: argparse.Namespace) -> dict:
    """Runs in a child process: one (window length, batch size) measurement, printed as JSON."""
    from castline.engines.base import EngineOptions, Window, WindowLine
    from castline.engines.vibevoice import VibeVoiceEngine
    from castline.voices.profiles import ReferenceAudio, VoiceProfile

    voices = tuple(VoiceProfile(voice_id=f"speaker{slot}", display_name=f"speaker{slot}", language="en",
                                engine="vibevoice", engine_voice="clone",
                                reference=ReferenceAudio(path=str(path), sha256=f"bench-{slot}"),
                                profile_hash=f"bench-{slot}-{path}")
                   for slot, path in enumerate(args.reference_paths))
    engine = VibeVoiceEngine(EngineOptions(model=args.model, device=args.device, dtype=args.dtype,
                                           diffusion_steps=args.diffusion_steps))
    frames = round(args.windows_seconds[0] * 7.5)
    if args.force_frames:
        sys.path.insert(0, str(REPO / "tests"))
        from vibevoice_tiny import ForceAudioFrames

        engine.logits_processor_factory = lambda windows: [
            ForceAudioFrames([1 if window.estimated_seconds == 0 else frames for window in windows])]
    started = time.perf_counter()
    engine.load()
    load_s = time.perf_counter() - started
    warm = [Window(lines=(WindowLine(0, "Warm up."), WindowLine(1, "Ready.")), voices=voices, seed=0,
                   estimated_seconds=0)]
    engine.synthesize_windows(warm)
    lines = script_text(int(args.windows_seconds[0] * CHARS_PER_SECOND))
    windows = [Window(lines=tuple(WindowLine(index % len(voices), line) for index, line in enumerate(lines)),
                      voices=voices, seed=100 + number, estimated_seconds=args.windows_seconds[0])
               for number in range(args.batch[0])]
    import torch

    cuda = args.device.startswith("cuda")
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    error, walls = "", []
    for _ in range(args.repeats):
        started = time.perf_counter()
        try:
            audio = engine.synthesize_windows(windows, batch_size=args.batch[0])
        except Exception as failure:  # reported in the table, not fatal for the other rows
            audio, error = [], str(failure)
            break
        if cuda:
            torch.cuda.synchronize()
        walls.append(time.perf_counter() - started)
    wall_s = min(walls) if walls else 0.0
    audio_s = sum(len(samples) for samples in audio) / engine.capabilities.sample_rate
    peak_mib = (torch.cuda.max_memory_allocated() if cuda
                else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024) / 2**20
    return {"load_s": load_s, "wall_s": wall_s, "audio_s": audio_s, "peak_mib": peak_mib, "error": error,
            "device": str(engine._loaded.device), "dtype": str(engine._loaded.dtype).replace("torch.", "")}


def main() -> None:
    sys.path.insert(0, str(REPO))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="checkpoint directory or Hub id (default: random weights, see --tiny)")
    parser.add_argument("--tiny", action="store_true", help="random tiny model instead of the 1.5B configuration "
                                                            "(a CPU smoke check of this script)")
    parser.add_argument("--batches", type=int, nargs="+",
                        help="random-weights mode: batch sizes (default 1 4 8 16; --tiny: 1 4)")
    parser.add_argument("--window-seconds", type=float,
                        help="random-weights mode: audio per window, forced (default 10 s = 75 frames; --tiny: 1 s)")
    parser.add_argument("--budget-s", type=float, default=540.0,
                        help="random-weights mode: start no new row after this many seconds (default 540)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--count-ops", action="store_true",
                        help="random-weights mode: also print PyTorch operator calls per frame for each path")
    parser.add_argument("--attention", default="default", choices=("default", "flash", "cudnn", "math"),
                        help="random-weights mode: restrict scaled-dot-product attention to one backend")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--windows-seconds", type=float, nargs="+", default=[10, 30, 60])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--diffusion-steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=2, help="timed calls per row; the fastest is reported")
    parser.add_argument("--reference", action="append", default=[], help="reference WAV (24 kHz mono); repeat")
    parser.add_argument("--force-frames", action="store_true",
                        help="random test models only: force each window to exactly its length in frames")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--reference-paths", nargs="*", default=[], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure_one(args)))
        return
    if not args.model:
        args.batches = args.batches or ([1, 4] if args.tiny else [1, 4, 8, 16])
        args.window_seconds = args.window_seconds or (1.0 if args.tiny else 10.0)
        random_weights_benchmark(args)
        return
    rows = []
    with tempfile.TemporaryDirectory(prefix="castline-bench-vibevoice-") as folder:
        paths = [str(path) for path in references(Path(folder), args.reference)]
        for seconds in args.windows_seconds:
            for batch in args.batch:
                command = [sys.executable, __file__, "--one", "--model", args.model, "--device", args.device,
                           "--dtype", args.dtype, "--windows-seconds", str(seconds), "--batch", str(batch),
                           "--diffusion-steps", str(args.diffusion_steps), "--repeats", str(args.repeats),
                           "--reference-paths", *paths]
                if args.force_frames:
                    command.append("--force-frames")
                done = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
                if done.returncode != 0:
                    tail = (done.stderr.strip().splitlines() or ["?"])[-1]
                    rows.append((seconds, batch, {"error": tail}))
                else:
                    rows.append((seconds, batch, json.loads(done.stdout.strip().splitlines()[-1])))
                print(f"  {seconds:g} s × {batch}: done", file=sys.stderr)
    first = next((result for _, _, result in rows if "device" in result), {})
    print(f"\nvibevoice benchmark: model {args.model}, {first.get('device', args.device)} "
          f"{first.get('dtype', args.dtype)}, {args.diffusion_steps} diffusion steps, {os.cpu_count()} CPUs, "
          f"fastest of {args.repeats}"
          f"{', forced frames (random test model)' if args.force_frames else ''}\n")
    memory = "peak GPU memory (MiB)" if args.device.startswith("cuda") else "peak RSS (MiB)"
    print(f"| window (s) | batch | audio (s) | wall (s) | RTF | {memory} | load (s) | note |")
    print("|---|---|---|---|---|---|---|---|")
    for seconds, batch, result in rows:
        if "wall_s" not in result or result.get("error"):
            print(f"| {seconds:g} | {batch} | | | | | | {result.get('error', '')} |")
            continue
        rtf = result["wall_s"] / result["audio_s"] if result["audio_s"] else float("nan")
        print(f"| {seconds:g} | {batch} | {result['audio_s']:.1f} | {result['wall_s']:.2f} | {rtf:.3f} | "
              f"{result['peak_mib']:.0f} | {result['load_s']:.2f} | |")


# --- random weights: the 1.5B configuration (or tiny), castline's windows vs raw generate ---------

# VibeVoice-1.5B: a Qwen2.5-1.5B backbone; the acoustic (64-dim latents) and semantic (128-dim)
# tokenizers and the diffusion head as released (transformers' defaults for the tokenizers).
TEXT_1_5B = dict(model_type="qwen2", vocab_size=151_936, hidden_size=1536, intermediate_size=8960,
                 num_hidden_layers=28, num_attention_heads=12, num_key_value_heads=2,
                 max_position_embeddings=65_536, rope_theta=1_000_000.0, tie_word_embeddings=True)
DIFFUSION_1_5B = dict(hidden_size=1536, intermediate_size=4608, num_hidden_layers=4, latent_size=64)
RAW = "raw generate"
RAW_MODEL_CARD = "raw generate, guidance 1.3"


def build_random_checkpoint(folder: Path, *, tiny: bool, device: str, dtype_name: str) -> tuple[Path, int]:
    """Save a random-weights VibeVoice (+ byte-level processor) in ``folder``; returns (path, parameters).

    The token ids of the processor's special tokens (256–259 in the byte tokenizer) are written into
    the config; the vocabulary keeps its real size, so every weight matrix has its real shape."""
    import torch

    sys.path.insert(0, str(REPO / "tests"))
    import vibevoice_tiny

    if tiny:
        path = vibevoice_tiny.build_tiny_vibevoice(folder / "tiny")
        from transformers import VibeVoiceConfig

        config = VibeVoiceConfig.from_pretrained(path)
        return path, _parameters_of(config)
    from transformers import (VibeVoiceAcousticTokenizerFeatureExtractor, VibeVoiceConfig,
                              VibeVoiceForConditionalGeneration, VibeVoiceProcessor)

    ids = vibevoice_tiny
    config = VibeVoiceConfig(text_config=dict(TEXT_1_5B), diffusion_head_config=dict(DIFFUSION_1_5B),
                             pad_token_id=ids.END_ID, eos_token_id=ids.END_ID, audio_bos_token_id=ids.AUDIO_BOS_ID,
                             audio_eos_token_id=ids.AUDIO_EOS_ID, audio_token_id=ids.AUDIO_ID)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(getattr(torch, dtype_name))  # build in the target dtype: half the memory
    try:
        with torch.device(device):
            torch.manual_seed(0)
            model = VibeVoiceForConditionalGeneration(config).eval()
    finally:
        torch.set_default_dtype(previous)
    parameters = sum(parameter.numel() for parameter in model.parameters())
    generation = model.generation_config
    generation.noise_scheduler_class = "DPMSolverMultistepScheduler"
    generation.noise_scheduler_config = {"beta_schedule": "squaredcos_cap_v2", "prediction_type": "v_prediction"}
    generation._from_model_config = False
    path = folder / "vibevoice-1.5b-random"
    model.save_pretrained(path)
    del model
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    VibeVoiceProcessor(feature_extractor=VibeVoiceAcousticTokenizerFeatureExtractor(),
                       tokenizer=vibevoice_tiny._tokenizer(), chat_template=vibevoice_tiny.CHAT_TEMPLATE
                       ).save_pretrained(path)
    return path, parameters


def _parameters_of(config) -> int:
    import torch
    from transformers import VibeVoiceForConditionalGeneration

    with torch.device("meta"):
        return sum(parameter.numel() for parameter in VibeVoiceForConditionalGeneration(config).parameters())


class _Clock:
    def __init__(self, device: str) -> None:
        import torch

        self.torch, self.cuda = torch, device.startswith("cuda")

    def reset(self) -> None:
        self.resident = 0
        if self.cuda:
            self.torch.cuda.synchronize()
            self.torch.cuda.reset_peak_memory_stats()
            self.resident = self.torch.cuda.memory_allocated()

    def stop(self) -> float:
        if self.cuda:
            self.torch.cuda.synchronize()
        return time.perf_counter()

    def peak_mib(self) -> float:
        if self.cuda:
            return self.torch.cuda.max_memory_allocated() / 2**20
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def working_mib(self) -> float | None:
        """GPU memory a call took above what was allocated before it (both models' weights, the prompt
        cache); None on the CPU, where the process's RSS does not separate them."""
        if self.cuda:
            return (self.torch.cuda.max_memory_allocated() - self.resident) / 2**20
        return None


def random_weights_benchmark(args: argparse.Namespace) -> None:
    import torch

    began = time.perf_counter()
    device = args.device
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device here (use --tiny for a CPU smoke check)")
    dtype_name = args.dtype if args.dtype != "auto" else ("bfloat16" if device.startswith("cuda") else "float32")
    frames = max(1, round(args.window_seconds * 7.5))
    clock = _Clock(device)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="castline-bench-vibevoice-") as folder:
        folder = Path(folder)
        path, parameters = build_random_checkpoint(folder, tiny=args.tiny, device=device, dtype_name=dtype_name)
        built_s = time.perf_counter() - began
        print(f"built and saved a random {'tiny' if args.tiny else '1.5B-configuration'} VibeVoice "
              f"({parameters / 1e6:,.1f} M parameters) in {built_s:.0f} s", file=sys.stderr)
        reference_paths = references(folder, args.reference)
        import soundfile

        reference_audio = [soundfile.read(str(reference), dtype="float32")[0] for reference in reference_paths]
        lines = script_text(int(args.window_seconds * CHARS_PER_SECOND))
        over = lambda: time.perf_counter() - began > args.budget_s  # noqa: E731

        # castline's engine: windows of two cloned speakers, forced to `frames` frames each.
        from castline.engines.base import EngineOptions, Window, WindowLine
        from castline.engines.vibevoice import VibeVoiceEngine
        from castline.voices.profiles import ReferenceAudio, VoiceProfile
        from vibevoice_tiny import ForceAudioFrames

        voices = tuple(VoiceProfile(voice_id=f"speaker{slot}", display_name=f"speaker{slot}", language="en",
                                    engine="vibevoice", engine_voice="clone",
                                    reference=ReferenceAudio(path=str(reference), sha256=f"bench-{slot}"),
                                    profile_hash=f"bench-{slot}")
                       for slot, reference in enumerate(reference_paths))
        engine = VibeVoiceEngine(EngineOptions(model=str(path), device=device, dtype=dtype_name,
                                               diffusion_steps=args.diffusion_steps))
        engine.logits_processor_factory = lambda windows: [ForceAudioFrames(
            [1 if window.estimated_seconds == 0 else frames for window in windows])]
        started = time.perf_counter()
        engine.load()
        print(f"castline's engine loaded in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        engine.synthesize_windows([Window(lines=(WindowLine(0, "Warm up."), WindowLine(1, "Ready.")), voices=voices,
                                          seed=0, estimated_seconds=0)])

        def castline_windows(batch: int, one_frame: bool = False) -> list:
            return engine.synthesize_windows([
                Window(lines=tuple(WindowLine(index % 2, line) for index, line in enumerate(lines)), voices=voices,
                       seed=100 + number, estimated_seconds=0 if one_frame else args.window_seconds)
                for number in range(batch)], batch_size=batch)

        # Raw batched generate of the same checkpoint, as the model card calls it, on its own copy.
        from castline.engines.vibevoice import DpmSolverScheduler
        from transformers import VibeVoiceForConditionalGeneration, VibeVoiceProcessor

        processor = VibeVoiceProcessor.from_pretrained(path)
        processor.tokenizer.padding_side = "left"
        model = VibeVoiceForConditionalGeneration.from_pretrained(path, dtype=getattr(torch, dtype_name)).to(device)
        model.eval()
        config = model.generation_config.noise_scheduler_config

        def raw_generate(batch: int, frame_count: int, guidance_scale: float) -> list:
            conversations = []
            for number in range(batch):
                messages = []
                for index, line in enumerate(lines if frame_count > 1 else lines[:2]):
                    speaker = index % 2
                    content = [{"type": "text", "text": line}]
                    if index < 2:
                        content.insert(0, {"type": "audio", "audio": reference_audio[speaker]})
                    messages.append({"role": str(speaker), "content": content})
                conversations.append(messages)
            inputs = processor.apply_chat_template(conversations, tokenize=True, return_dict=True,
                                                   return_tensors="pt",
                                                   processor_kwargs={"padding": True, "sampling_rate": 24_000})
            # Audio features come as float32; a bf16 model needs them in its own dtype.
            inputs = {key: (value.to(device, model.dtype) if value.is_floating_point() else value.to(device))
                      if torch.is_tensor(value) else value for key, value in inputs.items()}
            with torch.inference_mode():
                output = model.generate(**inputs, max_new_tokens=frame_count + 3, guidance_scale=guidance_scale,
                                        num_diffusion_steps=args.diffusion_steps,
                                        noise_scheduler=DpmSolverScheduler(**config),
                                        logits_processor=[ForceAudioFrames(frame_count)], return_dict_in_generate=True)
            return [audio.detach().float().cpu().numpy().reshape(-1) for audio in output.audio]

        raw_generate(1, 1, 1.0)  # warm-up
        # castline, then the same work through raw generate (guidance in the diffusion head only), then the
        # model card's call, whose guidance_scale=1.3 also makes generate() add token-level CFG: one more
        # unbatched forward pass per frame. The paths take turns at each batch size, and each row is timed
        # on its second call: by then its shapes (attention plans, kernel choices) have been met once, so
        # no path's figure depends on which path met them first.
        paths = {"castline": castline_windows,
                 RAW: lambda batch: raw_generate(batch, frames, 1.0),
                 RAW_MODEL_CARD: lambda batch: raw_generate(batch, frames, 1.3)}
        with attention_backends(args.attention):
            for batch in args.batches:
                for name, call in paths.items():
                    if over():
                        rows.append({"path": name, "batch": batch, "skipped": True})
                        continue
                    rows.append(_timed_row(name, batch, clock, lambda: call(batch), 24_000))
                    _report(rows[-1])
            if args.count_ops:  # last: the profiler raises the process's peak RSS
                _print_ops_per_frame(frames, {"castline": lambda count: castline_windows(1, one_frame=count == 1),
                                              RAW: lambda count: raw_generate(1, count, 1.0)})
    _print_random_table(args, device, dtype_name, parameters, frames, rows, time.perf_counter() - began)


def _timed_row(path: str, batch: int, clock: _Clock, call, sample_rate: int) -> dict:
    """Calls ``call`` twice and times the second; ``first_s`` is the first call's wall time."""
    clock.reset()
    walls = []
    try:
        for _ in range(2):
            started = time.perf_counter()
            audio = call()
            walls.append(clock.stop() - started)
    except Exception as failure:  # one failed row (e.g. out of memory) does not stop the others
        return {"path": path, "batch": batch, "error": str(failure).splitlines()[0][:120]}
    wall_s = walls[-1]
    samples = sum(len(item) for item in audio)
    frames = samples / 3200
    return {"path": path, "batch": batch, "first_s": walls[0], "wall_s": wall_s, "audio_s": samples / sample_rate,
            "frames": frames, "frames_per_s": frames / wall_s, "rtf": wall_s / (samples / sample_rate),
            "peak_mib": clock.peak_mib(), "working_mib": clock.working_mib()}


def _print_ops_per_frame(frames: int, paths: dict) -> None:
    """PyTorch operator calls per generated frame for each path at batch 1: the difference between a
    ``frames``-frame call and a one-frame call, divided by the extra frames. Where launching kernels
    sets the pace (a GPU at small batches), this count is what a step costs."""
    from torch.profiler import ProfilerActivity, profile

    def operators(call) -> int:
        with profile(activities=[ProfilerActivity.CPU]) as profiler:
            call()
        return sum(event.count for event in profiler.key_averages() if event.key.startswith("aten::"))

    for name, call in paths.items():
        one, many = operators(lambda: call(1)), operators(lambda: call(frames))
        print(f"  {name}: {(many - one) / (frames - 1):,.0f} operator calls per frame "
              f"({one:,} for one frame, {many:,} for {frames})", file=sys.stderr)


def attention_backends(name: str):
    """``torch.nn.attention.sdpa_kernel`` restricted to one backend, or no restriction for "default"."""
    import contextlib

    if name == "default":
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    # No "efficient": PyTorch's memory-efficient kernel cannot take the backbone's grouped-query heads
    # (12 query heads, 2 key/value heads) unexpanded, so every call fails with "No available kernel".
    return sdpa_kernel([{"flash": SDPBackend.FLASH_ATTENTION, "cudnn": SDPBackend.CUDNN_ATTENTION,
                         "math": SDPBackend.MATH}[name]])


def _report(row: dict) -> None:
    """One row's figures as soon as it is measured, so a run cut short still shows what it measured."""
    if "wall_s" in row:
        print(f"  {row['path']} × {row['batch']}: {row['frames_per_s']:.1f} frames/s, RTF {row['rtf']:.3f} "
              f"(first call {row['first_s']:.2f} s, second {row['wall_s']:.2f} s), "
              f"peak {row['peak_mib']:.0f} MiB{_working(row)}", file=sys.stderr)
    else:
        print(f"  {row['path']} × {row['batch']}: {row.get('error', 'skipped')}", file=sys.stderr)


def _working(row: dict) -> str:
    return f" ({row['working_mib']:.0f} MiB above what was allocated before)" if row.get("working_mib") is not None \
        else ""


def _print_random_table(args, device: str, dtype_name: str, parameters: int, frames: int, rows: list[dict],
                        total_s: float) -> None:
    import torch

    name = torch.cuda.get_device_name(device) if device.startswith("cuda") else f"CPU ({os.cpu_count()} cores)"
    cuda = device.startswith("cuda")
    memory = "peak GPU memory (MiB) | of which the call's own (MiB)" if cuda else "peak RSS (MiB)"
    print(f"\nvibevoice benchmark, random weights at the {'tiny' if args.tiny else '1.5B'} configuration "
          f"({parameters / 1e6:,.1f} M parameters): {name}, {dtype_name}, {args.diffusion_steps} diffusion steps, "
          f"each window forced to {frames} frames ({frames / 7.5:.1f} s); whole run {total_s:.0f} s\n")
    print(f"| path | batch | audio (s) | first call (s) | wall (s) | frames/s | RTF | {memory} |")
    print("|---|---|---|---|---|---|---|---|" + ("---|" if cuda else ""))
    for row in rows:
        if "wall_s" not in row:
            note = "skipped (time budget)" if row.get("skipped") else row.get("error", "")
            print(f"| {row['path']} | {row['batch']} | | | | | | {'| ' if cuda else ''}{note} |")
            continue
        own = f" | {row['working_mib']:.0f}" if cuda else ""
        print(f"| {row['path']} | {row['batch']} | {row['audio_s']:.1f} | {row['first_s']:.2f} | {row['wall_s']:.2f} | "
              f"{row['frames_per_s']:.1f} | {row['rtf']:.3f} | {row['peak_mib']:.0f}{own} |")
    print()
    for reference, label in ((RAW, "raw generate, the same work (goal ≥ 80 %)"),
                             (RAW_MODEL_CARD, "the model card's call, guidance 1.3")):
        raw = {row["batch"]: row for row in rows if row["path"] == reference and "wall_s" in row}
        shares = [(row["batch"], row["frames_per_s"] / raw[row["batch"]]["frames_per_s"])
                  for row in rows if row["path"] == "castline" and "wall_s" in row and row["batch"] in raw]
        if shares:
            print(f"castline's throughput as a share of {label}: "
                  + ", ".join(f"batch {batch}: {share:.0%}" for batch, share in shares))
    print("RTF = wall seconds / audio seconds (lower is faster); frames/s counts every row's frames "
          "(7.5 frames = 1 s of audio).")
    if cuda:
        print("Peak GPU memory includes both models' weights (castline's engine and raw generate's own copy stay "
              "loaded throughout); the call's own is the peak above what was allocated before the row.")


if __name__ == "__main__":
    main()
