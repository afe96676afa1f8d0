"""``castline dub``: voice cue sheets per language and fit them to the picture.

Everything is validated (cue files parsed, languages, background, cast, voices) before Prefect
starts: bad input exits 2 with one line and writes nothing.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

EXIT_FAILED = 1


def add_dub_command(commands) -> None:
    """Register the ``dub`` subcommand on ``castline``'s subparsers."""
    dub = commands.add_parser("dub", help="dub a programme: voice subtitle cues per language, fit them to the picture")
    dub.add_argument("--cues", action="append", required=True, metavar="FILE",
                     help="a cue file per language (.srt or .vtt); repeat for more languages")
    dub.add_argument("--lang", action="append", default=[], metavar="CODE",
                     help="language of each --cues file, in order (default: from the file name, e.g. es.srt)")
    dub.add_argument("--background", metavar="FILE|none",
                     help="music-and-effects stem (WAV/FLAC); the mix has its length. With --video: default the "
                          "programme's own audio, dialogue ducked (voice-over); 'none' for dialogue only")
    dub.add_argument("--video", metavar="FILE",
                     help="the programme's video (any container ffmpeg reads): writes dubbed.mkv with one audio "
                          "and one subtitle track per language, the picture copied")
    dub.add_argument("--keep-original-audio", action="store_true",
                     help="with --video: keep the original audio as the first audio track")
    dub.add_argument("--mp4", action="store_true", help="with --video: also write dubbed.mp4")
    dub.add_argument("--audio-codec", default="aac", choices=["aac", "opus"],
                     help="dub tracks in the video (default: aac)")
    dub.add_argument("--translate-from", metavar="CODE",
                     help="the --cues files are in this language: translate them into each --lang first "
                          "(written beside them as <name>.<lang>.srt, for review)")
    dub.add_argument("--translate-only", action="store_true", help="stop after writing the translated cue sheets")
    dub.add_argument("--translator", default="apertium", metavar="apertium|marian:DIR|nllb:DIR:TOKEN",
                     help="translation engine (default: apertium, from Debian packages; nothing is downloaded)")
    dub.add_argument("--qa", default="warn", choices=["off", "warn", "strict"],
                     help="hear every take with Whisper and re-render failing ones; strict publishes nothing "
                          "while a take still fails (default: warn)")
    dub.add_argument("--cast", metavar="FILE", help="per-language cast YAML (speaker -> voice, cue -> speaker)")
    dub.add_argument("--out", default="output", help="store: folder path or file:// URI (default: output)")
    dub.add_argument("--programme", help="programme id (default: the background's file name)")
    dub.add_argument("--preset", default="ebu-r128", help="delivery preset (default: ebu-r128)")
    dub.add_argument("--format", default="wav", help="comma-separated: wav,flac,mp3,opus (default: wav)")
    dub.add_argument("--overrun", default="allow-overlap", choices=["allow-overlap", "truncate", "fail"],
                     help="what to do with speech that still does not fit (default: allow-overlap)")
    dub.add_argument("--max-rate", type=float, default=1.3, help="engine speed-up limit (default 1.3)")
    dub.add_argument("--max-stretch", type=float, default=1.25, help="time-stretch limit (default 1.25)")
    dub.add_argument("--min-gap-ms", type=int, default=80, help="silence kept before the next cue when borrowing")
    dub.add_argument("--max-borrow-ms", type=int, default=2000, help="most a cue may run past its slot")
    dub.add_argument("--stretcher", default="auto", choices=["auto", "rubberband", "atempo"])
    dub.add_argument("--duck-depth-db", type=float, default=12.0, help="background reduction under speech (dB)")
    dub.add_argument("--attack-ms", type=float, default=120.0, help="duck ramp before the speech onset (ms)")
    dub.add_argument("--release-ms", type=float, default=350.0, help="duck recovery after speech (ms)")
    dub.add_argument("--hold-ms", type=float, default=80.0, help="duck held after speech ends (ms)")
    dub.add_argument("--dialogue-lufs", type=float, default=-23.0,
                     help="dialogue loudness before mastering, relative to the background as delivered")
    dub.add_argument("--match-dialogue", metavar="FILE",
                     help="source dialogue stem: match the dub's dialogue loudness to it")
    dub.add_argument("--voices-dir", help="voice profiles folder (default: $CASTLINE_VOICES_DIR or ./voices)")
    dub.add_argument("--model", help="weights for engines that need them (vibevoice, pocket-tts)")
    dub.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    dub.add_argument("--seed", type=int, default=0)
    dub.add_argument("--quiet", action="store_true", help="no progress display")
    dub.add_argument("--force", action="store_true",
                     help="voice, mix and publish even if the published dub is up to date")
    dub.set_defaults(handler=run_dub_command)


def run_dub_command(args: argparse.Namespace) -> int:
    from castline.dub.options import DubOptions, DuckSettings, FitSettings
    from castline.dub.plan import prepare_dub
    from castline.engines.base import EngineOptions
    from castline.core.errors import DubError
    from castline.core.runtime import configure_prefect_environment

    formats = tuple(part.strip().lower() for part in args.format.split(",") if part.strip())
    cues, languages = tuple(args.cues), tuple(args.lang)
    if args.translate_from:
        from castline.dub.translate import translate_cue_files, translator_for

        written = translate_cue_files(cues, languages, args.translate_from, translator_for(args.translator))
        for path, language in written:
            print(f"translated {args.translate_from} → {language} ({args.translator}): {path}")
        if args.translate_only:
            return 0
        cues, languages = tuple(path for path, _ in written), tuple(language for _, language in written)
    elif args.translate_only:
        raise DubError("--translate-only needs --translate-from", field="--translate-only")
    options = DubOptions(
        cues=cues, languages=languages, background=args.background, cast=args.cast, out=args.out,
        programme=args.programme, preset=args.preset, formats=formats,
        fit=FitSettings(max_rate=args.max_rate, max_stretch=args.max_stretch, min_gap_ms=args.min_gap_ms,
                        max_borrow_ms=args.max_borrow_ms, policy=args.overrun, stretcher=args.stretcher),
        duck=DuckSettings(depth_db=args.duck_depth_db, attack_ms=args.attack_ms, release_ms=args.release_ms,
                          hold_ms=args.hold_ms),
        dialogue_lufs=args.dialogue_lufs, match_dialogue=args.match_dialogue, voices_dir=args.voices_dir,
        seed=args.seed, engine_options=EngineOptions(model=args.model, device=args.device), video=args.video,
        keep_original_audio=args.keep_original_audio, containers=("mkv", "mp4") if args.mp4 else ("mkv",),
        video_audio_codec=args.audio_codec, qa=args.qa)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plans = prepare_dub(options)
    for plan in plans:
        for message in plan.warnings:
            print(f"warning: {message}", file=sys.stderr)
    for message in sorted({str(w.message) for w in caught}):
        print(f"warning: {message}", file=sys.stderr)
    started = time.perf_counter()
    if not args.force:
        from castline.dub.uptodate import current_dub

        current = current_dub(plans)
        if current is not None:  # nothing changed: start nothing (no Prefect)
            print("up to date (nothing changed since the last dub; --force to dub anyway)")
            _print_summary(current, time.perf_counter() - started, verb="checked")
            return 0
    configure_prefect_environment()
    try:
        uris = _run_with_progress(options, plans, quiet=args.quiet)
    except DubError as error:
        # Input was valid; the dub itself failed (e.g. --overrun fail): exit 1, one line.
        print(f"castline: error: {error}", file=sys.stderr)
        return EXIT_FAILED
    _print_summary(uris, time.perf_counter() - started)
    return 0


def _run_with_progress(options, plans, *, quiet: bool) -> dict[str, str]:
    """Run the dub flow on the plans made before Prefect started (the flow does not plan again)."""
    from castline.core.progress import ProgressEvent, listening
    from castline_flows.dub_programme import run_dub

    if quiet or not sys.stderr.isatty():
        def announce(event: ProgressEvent) -> None:
            if event.total is not None and not quiet and event.stage.startswith("dub-voice:"):
                print(f"castline: {event.stage}: {event.total} cues", file=sys.stderr)

        with listening(announce):
            return run_dub(options, plans)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description:<22}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()) as bars:
        starting = bars.add_task("Starting Prefect", total=None)
        tasks: dict[str, int] = {}
        labels = {"dub-voice": "Voicing + fitting", "dub-mix": "Mixing + mastering"}

        def on_event(event: ProgressEvent) -> None:
            kind, _, language = event.stage.partition(":")
            if kind not in labels:
                return
            if bars.tasks[starting].visible:
                bars.update(starting, visible=False)
            if event.stage not in tasks:
                tasks[event.stage] = bars.add_task(f"{labels[kind]} [{language}]", total=event.total)
            elif event.total is not None:
                bars.reset(tasks[event.stage], total=event.total)
            if event.advance:
                bars.advance(tasks[event.stage], event.advance)

        with listening(on_event):
            return run_dub(options, plans)


def _print_summary(uris: dict[str, str], elapsed_s: float, *, verb: str = "dubbed") -> None:
    from castline.dub.manifest import DubManifest

    picture = uris.pop("picture", None)
    print(f"{verb} {len(uris)} language(s) in {elapsed_s:.1f} s")
    if picture:
        print(f"  video: {picture} (the dubbed video beside it)")
    for language, uri in uris.items():
        parsed = urlparse(uri)
        if parsed.scheme != "file":
            print(f"  {language}: {uri}")
            continue
        path = Path(url2pathname(parsed.path))
        manifest = DubManifest.from_json(path.read_bytes())
        fit, mix = manifest.fit, manifest.file("wav") or manifest.files[0]
        print(f"  {language}: {fit.cues} cues ({fit.stretched} stretched, {fit.borrowed} borrowed, "
              f"{fit.overrun} overrun), {mix.integrated_lufs:.2f} LUFS {mix.true_peak_dbtp:.2f} dBTP, "
              f"{manifest.duration_seconds:.1f} s")
        rendered = sum(cue.takes_rendered for cue in manifest.cues)
        reused = sum(cue.takes_reused for cue in manifest.cues)
        print(f"      takes: {rendered} synthesised, {reused} reused from the cache")
        print(f"      {path.parent}/ (mix, dialogue.wav, subtitles.srt/.vtt, manifest.json)")
