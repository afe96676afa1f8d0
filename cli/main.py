"""``castline`` command line: render episodes, list voices and engines.

User mistakes end with one line on stderr and a non-zero exit, never a traceback. Prefect is
imported only when a flow runs (after its environment is configured).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

from castline.core.errors import CastlineError
from castline.core.failpoint import install_from_environment as install_test_failpoint
from castline_cli.dub import add_dub_command
from castline_cli.lexicon import add_lexicon_command
from castline_cli.remote import add_remote_commands
from castline_cli.render_options import (DEFAULT_LISTEN_SPEED, DEFAULT_QUICK_MODEL, LISTEN_HELP, QUICK_MODEL_HELP,
                                         add_render_options, quick_model, render_options)
from castline_cli.server import add_server_command

EXIT_USAGE = 2
EXIT_FAILED = 1


def main(argv: list[str] | None = None) -> int:
    install_test_failpoint()  # CASTLINE_KILL_AT (resume tests) only; nothing otherwise
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return args.handler(args)
    except CastlineError as error:
        _fail(str(error))
        return EXIT_USAGE
    except ValueError as error:
        _fail(str(error).splitlines()[0] if str(error) else type(error).__name__)
        return EXIT_USAGE
    except KeyboardInterrupt:
        _fail("interrupted; run the same command again to resume (finished chunks are kept)")
        return 130
    except Exception as error:  # an internal failure: one line, the details in Prefect's logs
        if os.environ.get("CASTLINE_DEBUG"):
            raise
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        _fail(f"failed: {type(error).__name__}: {first} (set CASTLINE_DEBUG=1 for a traceback)")
        return EXIT_FAILED


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="castline", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(title="commands")

    render = commands.add_parser("render", help="render a script into a mastered episode")
    render.add_argument("script", help="script (.yaml, VibeVoice-style .txt) or manuscript (.md, .epub)")
    add_render_options(render)
    render.set_defaults(handler=_render)

    voices = commands.add_parser("voices", help="voice profiles")
    voice_commands = voices.add_subparsers(title="voices commands")
    voices_list = voice_commands.add_parser("list", help="list voices and whether they are usable here")
    voices_list.add_argument("--voices-dir")
    voices_list.set_defaults(handler=_voices_list)

    voices_add = voice_commands.add_parser("add", help="add a cloned voice from a reference clip (needs consent)")
    voices_add.add_argument("name", help="voice id (lowercase letters, digits, '.', '_', '-')")
    voices_add.add_argument("--ref", required=True, help="reference clip: any common format and rate, 3–30 s")
    voices_add.add_argument("--transcript", help="what the reference says (helps some engines)")
    consent = voices_add.add_mutually_exclusive_group(required=True)
    consent.add_argument("--consent", metavar="FILE", help="evidence of consent (signed form, recording…)")
    consent.add_argument("--consent-statement", metavar="TEXT", help="the speaker's consent, in words")
    voices_add.add_argument("--consent-who", help="who consented (default: the voice's name)")
    voices_add.add_argument("--consent-scope", help="what the consent covers (default: voice cloning for castline renders)")
    voices_add.add_argument("--engine", default="vibevoice", help="cloning engine for this voice (default: vibevoice)")
    voices_add.add_argument("--language", default="en")
    voices_add.add_argument("--display-name")
    voices_add.add_argument("--replace", action="store_true", help="replace an existing voice (new version)")
    voices_add.add_argument("--voices-dir")
    voices_add.set_defaults(handler=_voices_add)

    qa = commands.add_parser("qa", help="re-check an episode: hear every chunk, re-measure every file, new report")
    qa.add_argument("output", help="the episode's folder (or its manifest.json)")
    qa.add_argument("--policy", default="warn", choices=["warn", "strict"],
                    help="strict: exit non-zero when a chunk fails (default: warn)")
    qa.add_argument("--asr-model", help="faster-whisper model path or name (default: Whisper base from pip)")
    qa.add_argument("--wer-threshold", type=float, help="max word error rate per chunk (default: per engine)")
    qa.add_argument("--qa-listen-speed", type=float, default=DEFAULT_LISTEN_SPEED, metavar="X", help=LISTEN_HELP)
    qa.add_argument("--qa-quick-model", default=DEFAULT_QUICK_MODEL, metavar="MODEL", help=QUICK_MODEL_HELP)
    qa.set_defaults(handler=_qa)

    add_dub_command(commands)
    add_remote_commands(commands)
    add_lexicon_command(commands)
    engines = commands.add_parser("engines", help="text-to-speech engines")
    engine_commands = engines.add_subparsers(title="engines commands")
    engines_list = engine_commands.add_parser("list", help="list engines and whether they are usable here")
    engines_list.set_defaults(handler=_engines_list)
    feed = commands.add_parser("feed", help="rebuild a show's podcast feed (feed.xml) from its published episodes")
    feed.add_argument("show_file", metavar="SHOW_FILE", help="the show file (YAML)")
    feed.add_argument("--out", default="output", help="store the episodes were published to (default: output)")
    feed.set_defaults(handler=_feed)
    add_server_command(commands)  # last: wraps runs
    return parser


def _feed(args: argparse.Namespace) -> int:
    from castline.delivery.feed import load_show, rebuild_feed
    from castline.storage import open_store

    show = load_show(args.show_file)
    info = rebuild_feed(open_store(args.out), show)
    print(f"feed: {info.uri} ({show.url_for(info.key)})")
    return 0


def _render(args: argparse.Namespace) -> int:
    from castline.core.runtime import configure_prefect_environment
    from castline.delivery.uptodate import prepare_episode
    from castline.render.inputs import local_inputs
    from castline.storage.probe import check_writable

    options = render_options(args)
    # Plan and check once, before Prefect starts (it takes seconds): bad input fails fast and an
    # up-to-date episode starts nothing. The flow takes this plan over (run_render) instead of
    # planning again; the local copies of s3:// inputs stay open until it is done.
    with local_inputs(options) as local_options:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            prepared = prepare_episode(options, local_options)
        for message in list(prepared.plan.episode.warnings) + sorted({str(w.message) for w in caught}):
            print(f"warning: {message}", file=sys.stderr)
        started = time.perf_counter()
        if prepared.current is not None:
            print("up to date (nothing changed since the last render; --force to render anyway)")
            _print_summary(prepared.current, time.perf_counter() - started)
            return 0
        check_writable(options.out)  # a store it cannot write to answers now, not after Prefect starts
        if options.qa.policy != "off":
            from castline.qa.asr_model import check_models_installed

            check_models_installed(options.qa.asr_model, options.qa.quick_asr_model)  # a missing QA model answers now too
        configure_prefect_environment()
        manifest_uri = _run_with_progress(prepared, quiet=args.quiet)
    _print_summary(manifest_uri, time.perf_counter() - started)
    return 0


def _run_with_progress(prepared, *, quiet: bool) -> str:
    from castline.core.progress import ProgressEvent, listening

    if quiet or not sys.stderr.isatty():
        return _run_flow(prepared, quiet=quiet)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    labels = {"synthesise": "Synthesising chunks", "stitch": "Stitching", "master": "Mastering",
              "encode": "Encoding + verifying", "publish": "Publishing"}
    with Progress(TextColumn("{task.description:<22}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  transient=False) as progress:
        starting = progress.add_task("Starting Prefect", total=None)
        bars = {stage: progress.add_task(label, total=None, start=False, visible=False)
                for stage, label in labels.items()}

        def on_event(event: ProgressEvent) -> None:
            bar = bars.get(event.stage)
            if bar is None:
                return
            if progress.tasks[starting].visible:
                progress.update(starting, visible=False)
            if event.total is not None:
                progress.reset(bar, total=event.total, visible=True)
                progress.start_task(bar)
            if event.advance:
                progress.advance(bar, event.advance)

        with listening(on_event):
            return _run_flow(prepared, quiet=quiet)


def _run_flow(prepared, *, quiet: bool) -> str:
    from castline.core.progress import ProgressEvent, listening
    from castline_flows.render_episode import run_render

    def announce(event: ProgressEvent) -> None:
        # Without a terminal (CI, cron) print one line per stage instead of bars.
        if event.total is not None and not quiet and not sys.stderr.isatty():
            print(f"castline: {event.stage}: {event.total} steps", file=sys.stderr)

    with listening(announce):
        return run_render(prepared.options, prepared)


def _print_summary(manifest_uri: str, elapsed_s: float) -> None:
    from urllib.parse import urlparse
    from urllib.request import url2pathname

    from castline.delivery.manifest import EpisodeManifest

    parsed = urlparse(manifest_uri)
    if parsed.scheme != "file":
        print(f"manifest: {manifest_uri}")
        return
    manifest_path = Path(url2pathname(parsed.path))
    manifest = EpisodeManifest.from_json(manifest_path.read_bytes())
    render = manifest.render
    print(f"episode '{manifest.episode}' ({manifest.duration_seconds:.1f} s) rendered in {elapsed_s:.1f} s: "
          f"{render.chunks_rendered} chunks synthesised, {render.chunks_reused} reused")
    for item in manifest.files:
        path = url2pathname(urlparse(item.uri).path)
        print(f"  {item.format:<5} {item.integrated_lufs:7.2f} LUFS  {item.true_peak_dbtp:6.2f} dBTP  {path}")
    print(f"  manifest  {manifest_path}")
    for transcript in manifest.transcripts:
        print(f"  {transcript.format:<9} {url2pathname(urlparse(transcript.uri).path)}")
    qa = manifest.qa
    if qa:
        retried = f", {qa.retried} retried" if qa.retried else ""
        flags = f"; {', '.join(qa.episode_flags)}" if qa.episode_flags else ""
        report = next((url2pathname(urlparse(f.uri).path) for f in qa.files if f.name == "report.html"), "")
        print(f"  qa        {qa.verdict}: {qa.passed} of {qa.chunks} chunks passed{retried}{flags} — "
              f"{report}")
    lines = {turn.index: turn.source_line for turn in manifest.turns}
    skipped = sorted({lines[chunk.turn] for chunk in manifest.chunks if chunk.skipped and lines[chunk.turn]})
    if skipped:
        print(f"  skipped   line{'s' if len(skipped) > 1 else ''} {', '.join(map(str, skipped))}: "
              f"text its voice cannot speak, a pause in the master (flagged 'unspeakable')")


def _voices_list(args: argparse.Namespace) -> int:
    from castline.engines.registry import voice_usability
    from castline.voices.profiles import default_voices_dir, load_voice_library

    library = load_voice_library(args.voices_dir or default_voices_dir())
    rows = []
    for profile in library.profiles:
        usable = voice_usability(profile)
        rows.append((profile.voice_id, profile.display_name, profile.language, profile.engine, profile.engine_voice,
                     f"clone v{profile.version}" if profile.is_clone else "stock",
                     "yes" if usable.usable else f"no: {usable.reason}"))
    rows += [(entry.voice_id, "", "", "", "", "broken", f"no: {entry.reason}") for entry in library.broken]
    rows.sort(key=lambda row: row[0])
    _print_rows(f"voices in {library.root}",
                ("id", "name", "language", "engine", "engine voice", "kind", "usable here"), rows)
    return 0


def _print_rows(title: str, headers: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    """A rich table on a terminal; tab-separated lines when piped (nothing truncated, easy to parse)."""
    if not sys.stdout.isatty():
        for row in (headers, *rows):
            print("\t".join(row))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for header in headers:
        table.add_column(header)
    for row in rows:
        table.add_row(*row)
    Console().print(table)


def _voices_add(args: argparse.Namespace) -> int:
    from castline.voices.ingest import add_voice
    from castline.voices.profiles import default_voices_dir

    profile, report = add_voice(args.voices_dir or default_voices_dir(), args.name, args.ref, engine=args.engine,
                                consent_file=args.consent, consent_statement=args.consent_statement,
                                consent_who=args.consent_who, consent_scope=args.consent_scope,
                                transcript=args.transcript, language=args.language,
                                display_name=args.display_name, replace=args.replace)
    for message in report.warnings:
        print(f"warning: {args.ref}: {message}", file=sys.stderr)
    print(f"added voice '{profile.voice_id}' version {profile.version} ({report.duration_s:.1f} s, "
          f"{report.source_sample_rate} Hz → 24000 Hz mono, level {report.gain_db:+.1f} dB): {profile.source_path}")
    return 0


def _qa(args: argparse.Namespace) -> int:
    from castline.delivery.recheck import recheck_episode
    from castline.qa.settings import QASettings

    qa, report = recheck_episode(args.output, QASettings(policy=args.policy, asr_model=args.asr_model,
                                                          wer_threshold=args.wer_threshold,
                                                          listen_speed=args.qa_listen_speed,
                                                          quick_asr_model=quick_model(args.qa_quick_model)))
    print(f"QA {qa.verdict}: {qa.passed_count} of {len(qa.chunks)} chunks passed"
          + (f"; episode flags: {', '.join(qa.episode_flags)}" if qa.episode_flags else ""))
    for chunk in qa.chunks:
        if not chunk.passed or chunk.flags:
            wer = "n/a" if chunk.wer is None else f"{chunk.wer:.2f}"
            print(f"  chunk {chunk.index} (turn {chunk.turn}, {chunk.voice}): WER {wer} {', '.join(chunk.flags)}"
                  f" — {chunk.text[:60]!r}")
    print(f"report: {report}")
    return 1 if qa.verdict == "fail" else 0


def _engines_list(args: argparse.Namespace) -> int:
    from castline.engines.registry import engine_class, engine_names

    rows = []
    for name in engine_names():
        cls = engine_class(name)
        caps = cls.capabilities
        available = cls.availability()
        rows.append((name, ",".join(caps.languages), "yes" if caps.cloning else "no",
                     "windows of turns" if cls.windowed else "chunks", f"{caps.max_chars} chars",
                     str(caps.sample_rate), "yes" if caps.deterministic else "no",
                     "--model DIR|HUB_ID" if caps.cloning else "in the pip package",
                     "yes" if available.usable else f"no: {available.reason}"))
    _print_rows("engines", ("name", "languages", "cloning", "renders", "text budget", "rate (Hz)", "deterministic",
                            "weights", "usable here"), rows)
    return 0


def _fail(message: str) -> None:
    print(f"castline: error: {message}", file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
