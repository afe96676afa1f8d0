"""The render options shared by ``castline render`` and ``castline submit``: flags in, ``RenderOptions`` out."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from castline.qa.listening import DEFAULT_QUICK_SPEED as DEFAULT_LISTEN_SPEED
from castline.qa.listening import QUICK_MODEL
from castline_cli.lexicon import add_lexicon_options, with_lexicon_options

LISTEN_HELP = ("how many times faster QA's quick first listen hears each take (1.0–2.0, default 1.5); a take "
               "whose transcript fails it is heard again at natural speed; 1.0: natural speed only")


DEFAULT_QUICK_MODEL = QUICK_MODEL
QUICK_MODEL_HELP = ("Whisper model of QA's quick first listen of English takes (default tiny.en, bundled); a take it "
                    "doubts is heard again by --asr-model; 'same': the --asr-model listens quickly too")


def quick_model(value: str) -> str | None:
    """``--qa-quick-model``: 'same' means the careful model (None in ``QASettings``)."""
    return None if value == "same" else value


def add_render_options(parser: argparse.ArgumentParser) -> None:
    """Every option that shapes a render: shared by ``render`` and ``submit``."""
    parser.add_argument("--out", default="output", help="store: folder path, file:// or s3://bucket/prefix URI (default: output)")
    parser.add_argument("--preset", help="delivery preset: podcast, ebu-r128, atsc-a85, acx (default: the script's, "
                                         "else podcast)")
    parser.add_argument("--format", default="wav", help="comma-separated: wav,flac,mp3,opus,m4a,m4b (default: wav)")
    parser.add_argument("--package", choices=["audiobook"],
                        help="audiobook: also one M4B (chapters, cover) and ACX chapter MP3s, each checked")
    parser.add_argument("--meta", action="append", default=[], metavar="KEY=VALUE",
                        help="episode metadata (title, show, author, description, number, season, publish_date, "
                             "cover, explicit, copyright, person=NAME:ROLE); repeatable, overrides the script's")
    parser.add_argument("--cast", nargs="+", default=[], metavar="SPEAKER=VOICE",
                        help="voices per speaker, e.g. --cast 1=heart 2=joe")
    parser.add_argument("--engine", help="render every voice with this engine (e.g. vibevoice, pocket-tts)")
    parser.add_argument("--model", help="model for engines that need weights: a local directory or a Hub id")
    parser.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:N")
    parser.add_argument("--dtype", default="auto", help="auto (bfloat16 on cuda, float32 on cpu), float32, bfloat16, float16")
    parser.add_argument("--diffusion-steps", type=int, default=10, help="diffusion steps per frame (vibevoice)")
    parser.add_argument("--guidance-scale", type=float, default=1.3, help="classifier-free guidance (vibevoice)")
    parser.add_argument("--window-words", type=int, default=120,
                        help="words per multi-speaker window for windowed engines (default 120, ~50 s)")
    parser.add_argument("--window-batch", type=int, default=4, metavar="N",
                        help="windowed engines: windows per model call (default 4); on a GPU, larger batches "
                             "render faster for about the same time per step")
    parser.add_argument("--exact-timings", action="store_true",
                        help="windowed engines: one line per window, so every turn timing is exact")
    parser.add_argument("--workers", type=int, default=None, help="parallel synthesis workers (default: CPU count, max 4)")
    parser.add_argument("--seed", type=int, default=0, help="base seed for every chunk (default: 0)")
    parser.add_argument("--voices-dir", help="voice profiles folder (default: $CASTLINE_VOICES_DIR or ./voices)")
    parser.add_argument("--pause", nargs="+", default=[], metavar="NAME=MS",
                        help="pause lengths: lead_in, sentence, same_speaker_turn, speaker_change, scene, tail")
    parser.add_argument("--force", action="store_true",
                        help="stitch, master and publish even if the published episode is up to date")
    parser.add_argument("--qa", default="warn", choices=["off", "warn", "strict"],
                        help="automatic QA: off, warn (default: check, retry, publish with flags), strict "
                             "(exit non-zero and publish nothing when a chunk still fails)")
    parser.add_argument("--qa-attempts", type=int, default=3, help="takes per chunk, first included (default 3)")
    parser.add_argument("--asr-model", help="faster-whisper model path or name (default: Whisper base from pip)")
    parser.add_argument("--wer-threshold", type=float, help="max word error rate per chunk (default: per engine)")
    parser.add_argument("--qa-listen-speed", type=float, default=DEFAULT_LISTEN_SPEED, metavar="X", help=LISTEN_HELP)
    parser.add_argument("--qa-quick-model", default=DEFAULT_QUICK_MODEL, metavar="MODEL", help=QUICK_MODEL_HELP)
    parser.add_argument("--quiet", action="store_true", help="no progress display")
    parser.add_argument("--verbose", action="store_true", help="also show Prefect's own log lines")
    parser.add_argument("--s3-endpoint", metavar="URL",
                        help="S3-compatible endpoint for s3:// locations (MinIO, R2, Ceph…; default: boto3's "
                             "configuration, e.g. AWS_ENDPOINT_URL)")
    parser.add_argument("--s3-addressing", choices=["auto", "path", "virtual"],
                        help="S3 bucket addressing (default auto: path-style with a custom endpoint)")
    parser.add_argument("--runner", default="threads", choices=["threads", "dask"],
                        help="where chunk synthesis runs: threads here (default) or a Dask cluster")
    parser.add_argument("--dask-address", metavar="tcp://HOST:PORT",
                        help="Dask scheduler for --runner dask (default: a local cluster of --workers processes)")
    add_lexicon_options(parser)


def render_options(args: argparse.Namespace):
    """``RenderOptions`` from parsed ``add_render_options`` arguments (validated)."""
    from castline.engines.base import EngineOptions
    from castline.render.options import RenderOptions, parse_cast, parse_pauses
    from castline.qa.settings import QASettings

    # S3 settings travel as environment variables: every task, thread or Dask worker started from
    # here reads them the same way (castline.storage.s3_settings).
    if args.s3_endpoint:
        os.environ["CASTLINE_S3_ENDPOINT_URL"] = args.s3_endpoint
    if args.s3_addressing:
        os.environ["CASTLINE_S3_ADDRESSING"] = args.s3_addressing
    formats = tuple(part.strip().lower() for part in args.format.split(",") if part.strip())
    options_kwargs = dict(script=_location(args.script), out=args.out, preset=args.preset, formats=formats,
                          cast=parse_cast(args.cast), engine=args.engine, seed=args.seed, voices_dir=args.voices_dir,
                          pauses_ms=parse_pauses(args.pause), force=args.force,
                          engine_options=EngineOptions(model=args.model, device=args.device, dtype=args.dtype,
                                                       diffusion_steps=args.diffusion_steps,
                                                       guidance_scale=args.guidance_scale),
                          window_words=args.window_words, window_batch=args.window_batch,
                          exact_timings=args.exact_timings,
                          qa=QASettings(policy=args.qa, max_attempts=args.qa_attempts, asr_model=args.asr_model,
                                        wer_threshold=args.wer_threshold, listen_speed=args.qa_listen_speed,
                                        quick_asr_model=quick_model(args.qa_quick_model)),
                          runner=args.runner, dask_address=args.dask_address, meta=tuple(args.meta),
                          package=args.package)
    if args.workers is not None:
        options_kwargs["workers"] = args.workers
    return with_lexicon_options(args, RenderOptions(**options_kwargs))


def _location(text: str) -> str:
    """A script location as given: URIs stay URIs, paths are normalised."""
    return text if "://" in text else str(Path(text))
