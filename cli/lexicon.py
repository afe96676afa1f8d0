"""``castline lexicon check SCRIPT`` and the pronunciation options every render takes.

Lexicons apply in this order (first = highest precedence; see ``castline.render.plan.lexicon_files``):
``--lexicon`` files as given, the script's ``episode.lexicons``, the voice profile's
``lexicons``, the show file's ``lexicons``.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path


def add_lexicon_options(parser: argparse.ArgumentParser) -> None:
    """Options that change what the engines are sent (shared by ``render``, ``submit`` and ``lexicon check``)."""
    parser.add_argument("--lexicon", action="append", default=[], metavar="FILE",
                        help="pronunciation lexicon (YAML rules or W3C PLS); repeatable, first wins between "
                             "equally long matches; before the script's, the voices' and the show's")
    parser.add_argument("--normalise", action="store_true",
                        help="spell out numbers, dates, times, money, units and abbreviations (en, es, de) "
                             "before synthesis")
    parser.add_argument("--narrator", help="manuscripts (.md, .epub): the narrator's speaker name (default narrator)")
    parser.add_argument("--dialogue-pattern", metavar="REGEX",
                        help="manuscripts: paragraphs matching this (with (?P<speaker>…) and (?P<text>…) "
                             "groups) go to that character")
    parser.add_argument("--front-matter", action="store_true",
                        help="EPUB: also read the cover, title and copyright pages")


def with_lexicon_options(args: argparse.Namespace, options):
    """``options`` with the lexicon, normalisation and manuscript options and the show file's lexicons."""
    options = replace(options, lexicons=tuple(str(Path(item)) for item in getattr(args, "lexicon", []) or []),
                      normalise=bool(getattr(args, "normalise", False)),
                      narrator=getattr(args, "narrator", None),
                      dialogue_pattern=getattr(args, "dialogue_pattern", None),
                      front_matter=bool(getattr(args, "front_matter", False)))
    return replace(options, show_lexicons=show_lexicons(options))


def show_lexicons(options) -> tuple[str, ...]:
    """The ``lexicons:`` of the show file this episode names (``--meta show=`` or ``episode.show``)."""
    from castline.delivery.metadata import is_uri, metadata_from_script
    from castline.script.lexicon import show_lexicon_files
    from castline.script.textio import read_script_text

    show = None
    for item in options.meta:
        key, _, value = item.partition("=")
        if key.strip() == "show" and value.strip():
            show = value.strip()
    script = options.script
    if show is None and "://" not in script and Path(script).suffix.lower() in (".yaml", ".yml"):
        try:
            show = metadata_from_script(read_script_text(script), script).show
        except Exception:  # the planner reports a broken script with its own, better error
            return ()
    if show is None or is_uri(show) or not Path(show).is_file():
        return ()
    return show_lexicon_files(show)


def add_lexicon_command(commands) -> None:
    lexicon = commands.add_parser("lexicon", help="pronunciation lexicons")
    sub = lexicon.add_subparsers(title="lexicon commands")
    check = sub.add_parser("check", help="proof-read a script: words an engine may get wrong, what lexicons and "
                                         "normalisation will change")
    check.add_argument("script", help="script or manuscript (.yaml, .txt, .md, .epub)")
    check.add_argument("--cast", nargs="+", default=[], metavar="SPEAKER=VOICE", help="voices per speaker")
    check.add_argument("--engine", help="check as this engine would read it")
    check.add_argument("--voices-dir", help="voice profiles folder (default: $CASTLINE_VOICES_DIR or ./voices)")
    check.add_argument("--meta", action="append", default=[], metavar="KEY=VALUE", help="e.g. show=show.yaml")
    add_lexicon_options(check)
    check.set_defaults(handler=_check)


def _check(args: argparse.Namespace) -> int:
    from castline.engines.vocabulary import engine_vocabulary
    from castline.render.options import RenderOptions, parse_cast
    from castline.render.plan import lexicon_files, prepare_plan_episode
    from castline.script.lexicon import load_lexicon
    from castline.script.lexicon_check import check_episode

    options = with_lexicon_options(args, RenderOptions(script=str(Path(args.script)), cast=parse_cast(args.cast),
                                                       engine=args.engine, voices_dir=args.voices_dir,
                                                       meta=tuple(args.meta)))
    episode, voices = prepare_plan_episode(options)
    loaded: dict[str, object] = {}
    per_speaker, engines, voice_ids, vocabularies = {}, {}, {}, {}
    for speaker, voice in voices.items():
        files = lexicon_files(options, episode, voice)
        for path in files:
            if path not in loaded:
                loaded[path] = load_lexicon(path)
        per_speaker[speaker] = tuple(loaded[path] for path in files)
        engines[speaker] = options.engine or voice.engine
        voice_ids[speaker] = voice.voice_id
        vocabularies.setdefault(engines[speaker], engine_vocabulary(engines[speaker], voice.engine_voice))
    report = check_episode(episode, per_speaker, engines=engines, voices=voice_ids, normalise=options.normalise,
                           vocabulary=vocabularies)
    print(f"{episode.source_path}: {len(episode.turns)} turns, language {episode.meta.language}; lexicons: "
          f"{', '.join(str(path) for path in loaded) or 'none'}")
    for line in report.lines():
        print(line)
    return 0
