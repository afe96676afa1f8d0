"""Memory of a render with QA: peak RSS of the whole process, and per component, per length.

Cuts the 101-minute four-speaker demo script (``4p_climate_100min.txt``, cast onto the two
offline voices) to about ``--minutes`` each (the full script for 101) and renders each with
``--qa warn`` and ``--workers`` workers, every render in its own process against a temporary
Prefect server (``CASTLINE_SERVER=ephemeral``) and a fresh store. Inside that process a thread
samples the process's RSS every 20 ms (psutil) and tags each sample with the stage the
progress events say is running (plan/Prefect start-up, synthesise, stitch, master, encode,
episode QA, publish); it also reads the RSS at every finished chunk, so growth during
synthesis shows as MB per 100 chunks. A separate process measures what loading each model
adds to RSS (each engine on its voice, Whisper), on one thread and then from a second worker
thread through the model pool (a second copy, or nothing when the model is shared), how far
one call of each rises at its peak (each engine on the script's longest line of at most 390
characters, Whisper on 8 windows of speech), and what importing Prefect and the flow module adds.
hibari's G2P tables and the int8 copies of the Whisper models are built into the benchmark's
``$CASTLINE_HOME`` first, as a machine keeps them after its first render.

Per component, in the table:
- engines, Whisper: RSS growth on loading each (the components process);
- Prefect: RSS at the first synthesis event minus RSS before the command started (imports of
  Prefect and the flow, the client, the flow and plan task start), plus the temporary
  server's own process, shown apart (it is not the render's process);
- DSP: the peak during stitch + master + encode, and its growth over the RSS when stitching
  started (models are released before stitching);
- synthesis: RSS at 10 % and at 100 % of the chunks, and the slope.
- the highest sample: what each worker thread was running in castline's library at that moment
  (its two innermost functions there).

    .venv/bin/python bench/memory.py [--minutes 10 30 101] [--workers 2] [--trim] [--json FILE]
    .venv/bin/python bench/memory.py --minutes        # the models only, no render
    MALLOC_ARENA_MAX=2 .venv/bin/python bench/memory.py --minutes 10   # the environment reaches the renders
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("CASTLINE_SHARED_DIR", REPO.parent / "shared")) / "corpus" / "vibevoice-demo" / "scripts"
LONG_SCRIPT = "4p_climate_100min.txt"
LONG_SCRIPT_MINUTES = 101
CAST = ["1=heart", "2=joe", "3=heart", "4=joe"]
SAMPLE_S = 0.02
MB = 1024 * 1024


def excerpt(minutes: float, target: Path) -> Path:
    """The first ``minutes`` of the long demo script (by its words; all of it from 101 minutes)."""
    lines = [line for line in (CORPUS / LONG_SCRIPT).read_text(encoding="utf-8").splitlines() if line.strip()]
    total = sum(len(line.split()) - 2 for line in lines)
    wanted = total * min(1.0, minutes / LONG_SCRIPT_MINUTES)
    kept, count = [], 0
    for line in lines:
        kept.append(line)
        count += len(line.split()) - 2
        if count >= wanted:
            break
    target.write_text("\n\n".join(kept) + "\n", encoding="utf-8")
    return target


# --- the render process ---------------------------------------------------------------------------

class Sampler:
    """RSS of this process every ``SAMPLE_S``, tagged with the current stage; children's RSS too."""

    def __init__(self) -> None:
        import psutil

        self.process = psutil.Process()
        self.stage = "start"
        self.peaks: dict[str, int] = {}
        self.first: dict[str, int] = {}
        self.children_peak = 0
        self.children_names: dict[str, int] = {}
        self.chunk_rss: list[tuple[int, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._encode_total = self._encode_done = 0
        self._chunks_done = 0
        self.top_rss = 0
        self.top_where: list[str] = []

    def rss(self) -> int:
        return self.process.memory_info().rss

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def mark(self, stage: str) -> None:
        self.stage = stage
        self.first.setdefault(stage, self.rss())

    def on_event(self, event) -> None:
        if event.stage == "synthesise":
            if event.total is not None:
                self.mark("synthesise")
            if event.advance:
                self._chunks_done += event.advance
                self.chunk_rss.append((self._chunks_done, self.rss()))
        elif event.stage == "encode":
            if event.total is not None:
                self._encode_total = event.total
                self.mark("encode")
            self._encode_done += event.advance
            if self._encode_total and self._encode_done >= self._encode_total:
                self.mark("qa")  # the episode QA stage follows encoding (no event of its own)
        elif event.total is not None and event.stage in ("stitch", "master", "publish"):
            self.mark(event.stage)

    def _where(self) -> list[str]:
        """What each other thread is running in castline's library: its two innermost functions there."""
        here = threading.get_ident()
        where = []
        for ident, frame in sys._current_frames().items():
            names = []
            while frame is not None and ident != here and len(names) < 2:
                module = frame.f_globals.get("__name__", "")
                if module.startswith("castline."):
                    names.append(f"{module.rsplit('.', 1)[-1]}.{frame.f_code.co_name}")
                frame = frame.f_back
            if names:
                where.append(" < ".join(names))
        return sorted(where)

    def _run(self) -> None:
        import psutil

        tick = 0
        while not self._stop.is_set():
            rss = self.rss()
            stage = self.stage
            if rss > self.peaks.get(stage, 0):
                self.peaks[stage] = rss
            if rss > self.top_rss:
                self.top_rss, self.top_where = rss, self._where()
            if tick % 25 == 0:  # children (the temporary Prefect server, ffmpeg) every 0.5 s
                try:
                    children = self.process.children(recursive=True)
                    total = 0
                    for child in children:
                        try:
                            child_rss = child.memory_info().rss
                            name = " ".join(child.cmdline()[:3])[:80]
                        except psutil.Error:
                            continue
                        total += child_rss
                        self.children_names[name] = max(self.children_names.get(name, 0), child_rss)
                    self.children_peak = max(self.children_peak, total)
                except psutil.Error:
                    pass
            tick += 1
            time.sleep(SAMPLE_S)


def render_child(script: str, out: str, workers: int, trim: bool) -> dict:
    """Run ``castline render`` in this process under the sampler; returns the figures as a dict.
    ``trim``: call glibc's ``malloc_trim(0)`` after every chunk (a measurement: how much of the
    RSS is memory freed but kept by the allocator)."""
    import resource

    from castline.core.progress import subscribe

    sampler = Sampler()
    sampler.mark("start")
    sampler.start()
    subscribe(sampler.on_event)
    if trim:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        subscribe(lambda event: libc.malloc_trim(0) if event.stage == "synthesise" and event.advance else None)
    from castline_cli.main import main

    sampler.mark("command")
    started = time.perf_counter()
    code = main(["render", script, "--out", out, "--quiet", "--workers", str(workers),
                 "--voices-dir", str(REPO / "voices"), "--cast", *CAST, "--qa", "warn"])
    wall = time.perf_counter() - started
    sampler.mark("done")
    time.sleep(3 * SAMPLE_S)
    sampler.stop()
    if code != 0:
        raise SystemExit(f"render failed with exit code {code}")
    manifest = json.loads(next(Path(out).glob("*/manifest.json")).read_text(encoding="utf-8"))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"wall_s": wall, "audio_s": manifest["duration_seconds"], "chunks": len(sampler.chunk_rss) and
            sampler.chunk_rss[-1][0], "stages_s": dict(manifest["render"]["timings_s"]),
            "peak_rss": usage.ru_maxrss * 1024, "stage_peaks": sampler.peaks, "stage_first": sampler.first,
            "chunk_rss": sampler.chunk_rss, "children_peak": sampler.children_peak,
            "children": sampler.children_names, "qa": manifest.get("qa"),
            "top": {"rss": sampler.top_rss, "where": sampler.top_where}}


# --- the components process -------------------------------------------------------------------------

def components_child() -> dict:
    """RSS growth on loading each model, on one thread and then from a second thread."""
    import gc

    import psutil

    process = psutil.Process()

    def rss() -> int:
        gc.collect()
        return process.memory_info().rss

    from castline import PROJECT_SAMPLE_RATE
    from castline.audio.resample import resample
    from castline.engines.pool import get_engine, release_all
    from castline.qa.asr import get_transcriber, release_transcribers
    from castline.render.options import RenderOptions, parse_cast
    from castline.render.plan import prepare_render

    with tempfile.TemporaryDirectory(prefix="castline-bench-memory-") as folder:
        script = excerpt(0.5, Path(folder) / "episode.txt")
        plan = prepare_render(RenderOptions(script=str(script), cast=parse_cast(CAST), voices_dir=str(REPO / "voices")))
    figures: dict[str, object] = {"base": rss()}
    speech = None
    for name in sorted({job.engine for job in plan.jobs}):
        job = next(job for job in plan.jobs if job.engine == name)
        voice = plan.voice(job.voice_id)

        def synthesise():
            [audio] = get_engine(name, plan.options.engine_options).synthesize([job.spoken_text], voice, [job.seed])
            return audio

        before = rss()
        audio = synthesise()
        figures[f"engine {name}"] = rss() - before
        before = rss()
        worker = threading.Thread(target=synthesise)
        worker.start()
        worker.join()
        figures[f"engine {name}, second thread"] = rss() - before
        if speech is None:
            rate = get_engine(name, plan.options.engine_options).capabilities.sample_rate
            speech = resample(audio, rate, PROJECT_SAMPLE_RATE)

    def peak_during(work) -> int:
        """How far RSS rose above its level before ``work()`` at its highest (sampled every 2 ms)."""
        before, highest, done = rss(), [0], threading.Event()

        def watch():
            while not done.is_set():
                highest[0] = max(highest[0], process.memory_info().rss)
                time.sleep(0.002)

        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            work()
        finally:
            done.set()
            watcher.join()
        return max(0, highest[0] - before)

    lines = [line.split(":", 1)[1].strip() for line in (CORPUS / LONG_SCRIPT).read_text(encoding="utf-8").splitlines()
             if line.strip()]
    longest = max((line for line in lines if len(line) <= 390), key=len)
    for name in sorted({job.engine for job in plan.jobs}):
        voice = plan.voice(next(job for job in plan.jobs if job.engine == name).voice_id)
        engine = get_engine(name, plan.options.engine_options)
        figures[f"engine {name}, peak of one {len(longest)}-character line"] = peak_during(
            lambda: engine.synthesize([longest], voice, [0]))
    # Eight windows of speech, as a batch of chunks is heard: 8 hibari lines of ~19 s.
    hibari = get_engine("hibari")
    heart = plan.voice(next(job for job in plan.jobs if job.engine == "hibari").voice_id)
    clips = [resample(audio, hibari.capabilities.sample_rate, PROJECT_SAMPLE_RATE)[:19 * PROJECT_SAMPLE_RATE]
             for audio in hibari.synthesize([" ".join(lines[10 + 3 * i:13 + 3 * i])[:330] for i in range(8)],
                                            heart, list(range(8)))]

    def hear():
        get_transcriber(None).transcribe_batch([speech[:PROJECT_SAMPLE_RATE * 10]], PROJECT_SAMPLE_RATE)

    before = rss()
    hear()
    figures["whisper"] = rss() - before
    before = rss()
    worker = threading.Thread(target=hear)
    worker.start()
    worker.join()
    figures["whisper, second thread"] = rss() - before
    from castline.qa.asr import BATCH_SIZE

    figures[f"whisper, peak of one call of 8 windows ({BATCH_SIZE} decoded at a time)"] = peak_during(
        lambda: get_transcriber(None).transcribe_batch(clips, PROJECT_SAMPLE_RATE))
    before = rss()
    release_all()
    release_transcribers()
    figures["released (negative: returned)"] = rss() - before
    before = rss()
    import prefect  # noqa: F401
    import castline_flows.render_episode  # noqa: F401

    figures["prefect + flow imports"] = rss() - before
    figures["end"] = rss()
    return figures


# --- the parent ------------------------------------------------------------------------------------

def run_child(*args: str) -> dict:
    completed = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if completed.returncode != 0:
        raise SystemExit(f"child {args[0]} failed:\n{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def mb(value: float) -> str:
    return f"{value / MB:.0f}"


def report(components: dict, renders: list[tuple[float, dict]], workers: int, trim: bool) -> None:
    print(f"\nmemory benchmark: {workers} workers, QA on (warn), {os.cpu_count()} CPUs, "
          f"MALLOC_ARENA_MAX={os.environ.get('MALLOC_ARENA_MAX', 'unset')}{', malloc_trim per chunk' if trim else ''}\n")
    print("Loading models (RSS growth, MB; 'second thread': what a second worker thread adds through the pool):")
    for name, value in components.items():
        if name not in ("base", "end"):
            print(f"  {name:<40} {mb(value):>6}")
    print(f"  {'python + castline + models loaded, then released':<40} {mb(components['end']):>6} (process RSS)")
    if not renders:
        return
    print("\n| minutes | chunks | wall s | peak RSS MB | Prefect start MB | synthesis peak MB | at 10 % / 100 % of chunks MB "
          "| growth MB per 100 chunks | DSP peak MB (growth) | episode QA peak MB | publish peak MB | server MB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for minutes, figures in renders:
        peaks, first = figures["stage_peaks"], figures["stage_first"]
        series = figures["chunk_rss"]
        tenth = series[max(0, len(series) // 10 - 1)] if series else (0, 0)
        last = series[-1] if series else (0, 0)
        slope = (last[1] - tenth[1]) / max(1, last[0] - tenth[0]) * 100
        dsp_peak = max(peaks.get(stage, 0) for stage in ("stitch", "master", "encode"))
        dsp_growth = dsp_peak - first.get("stitch", dsp_peak)
        prefect = first.get("synthesise", 0) - first.get("command", 0)
        server = max((rss for name, rss in figures["children"].items() if "prefect" in name or "uvicorn" in name),
                     default=0)
        print(f"| {figures['audio_s'] / 60:.1f} | {figures['chunks']} | {figures['wall_s']:.0f} | "
              f"{mb(figures['peak_rss'])} | {mb(prefect)} | {mb(peaks.get('synthesise', 0))} | "
              f"{mb(tenth[1])} / {mb(last[1])} | {slope / MB:.1f} | {mb(dsp_peak)} ({mb(dsp_growth)}) | "
              f"{mb(peaks.get('qa', 0))} | {mb(peaks.get('publish', 0))} | {mb(server)} |")
    for minutes, figures in renders:
        qa = figures.get("qa") or {}
        print(f"\n{minutes:g} min: stages {json.dumps({k: round(v, 1) for k, v in figures['stages_s'].items()})}; "
              f"QA {qa.get('passed')} of {qa.get('chunks')} passed, {qa.get('retried')} retried")
        print("  peak RSS by stage (MB): " + ", ".join(f"{stage} {mb(value)}"
                                                      for stage, value in figures["stage_peaks"].items()))
        top = figures["top"]
        print(f"  at the highest sample ({mb(top['rss'])} MB) the worker threads were in: "
              + ("; ".join(top["where"]) or "nothing of castline's"))
        series = figures["chunk_rss"]
        if series:
            marks = [series[min(len(series) - 1, round(len(series) * f) - 1)] for f in (0.1, 0.25, 0.5, 0.75, 1.0)]
            print("  RSS after chunks: " + ", ".join(f"{done}: {mb(value)}" for done, value in marks))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--render-child":
        print(json.dumps(render_child(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5] == "trim")))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--components-child":
        print(json.dumps(components_child()))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs="*", default=[10, 30, 101])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", help="also write every figure to this file")
    parser.add_argument("--trim", action="store_true", help="malloc_trim(0) after every chunk (a measurement)")
    args = parser.parse_args()
    renders = []
    with tempfile.TemporaryDirectory(prefix="castline-bench-memory-") as folder:
        os.environ.setdefault("CASTLINE_HOME", str(Path(folder) / "home"))
        os.environ.setdefault("CASTLINE_SERVER", "ephemeral")
        # What a machine keeps after its first render: hibari's G2P tables and the int8 copies of
        # the Whisper models, built and stored.
        subprocess.run([sys.executable, "-c", "from castline.engines.hibari_tables import packed_g2p; "
                        "packed_g2p(british=False); from castline.qa.asr import get_transcriber; "
                        "from castline.qa.asr_model import TINY_EN; get_transcriber(None)._load(); "
                        "get_transcriber(TINY_EN)._load()"], check=True, cwd=REPO)
        components = run_child("--components-child")
        for minutes in args.minutes:
            script = excerpt(minutes, Path(folder) / f"episode_{minutes:g}min.txt")
            renders.append((minutes, run_child("--render-child", str(script), str(Path(folder) / f"out{minutes:g}"),
                                               str(args.workers), "trim" if args.trim else "")))
            print(f"rendered {minutes:g} min", file=sys.stderr)
    report(components, renders, args.workers, args.trim)
    if args.json:
        Path(args.json).write_text(json.dumps({"components": components, "renders": renders}, indent=1),
                                   encoding="utf-8")


if __name__ == "__main__":
    main()
