"""Translate a cue sheet for review (``castline dub --translate-from en --cues en.srt --lang es``).

A translator is any object with ``name`` and ``translate(texts, source, target) -> list[str]``
(one output per input, in order). Two ship here, neither downloads anything at run time:

- ``ApertiumTranslator``: Apertium's rule-based pairs from Debian packages (``apertium`` plus
  e.g. ``apertium-eng-spa``). Offline and fast; rough drafts only (word-for-word errors are
  common: "The cat sleeps." came out "Los sueños de gato.").
- ``TransformersTranslator``: a local Marian or NLLB seq2seq model folder (weights the user has),
  greedy decoding so a run is repeatable. Quality is the model's: opus-mt Marian models give
  usable drafts for common pairs; they still need a human pass before voicing.

``translated_srt`` keeps every cue's timing, dialogue dashes and speaker prefixes; only the
spoken text is translated.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence

from castline.core.errors import DubError
from castline.dub.cues import CueSheet


class Translator(Protocol):
    name: str

    def translate(self, texts: Sequence[str], source: str, target: str) -> list[str]: ...


def _alpha3(code: str) -> str:
    import pycountry

    primary = code.split("-")[0].lower()
    record = pycountry.languages.get(alpha_2=primary) if len(primary) == 2 else None
    return record.alpha_3 if record is not None else primary


@dataclass(frozen=True)
class ApertiumTranslator:
    """Apertium through its command line (``apertium -u PAIR``: unknown words unmarked)."""

    binary: str = "apertium"
    name: str = "apertium"

    def pairs(self) -> list[str]:
        found = shutil.which(self.binary)
        if found is None:
            return []
        completed = subprocess.run([found, "-l"], capture_output=True, text=True)
        return [line.strip() for line in completed.stdout.splitlines() if line.strip()]

    def pair(self, source: str, target: str) -> str:
        available = self.pairs()
        if not available:
            raise DubError("Apertium is not installed (apt-get install apertium apertium-eng-spa, for example)",
                           field="--translator")
        for candidate in (f"{_alpha3(source)}-{_alpha3(target)}", f"{source.split('-')[0]}-{target.split('-')[0]}"):
            if candidate in available:
                return candidate
        raise DubError(f"no Apertium pair for {source} → {target} (installed: {', '.join(available)}); install "
                       f"apertium-{_alpha3(source)}-{_alpha3(target)} or its reverse", field="--translator")

    def translate(self, texts: Sequence[str], source: str, target: str) -> list[str]:
        if not texts:
            return []
        pair = self.pair(source, target)
        # One process for the sheet: one text per line (Apertium keeps line breaks in txt mode).
        lines = [" ".join(text.split()) for text in texts]
        completed = subprocess.run([shutil.which(self.binary) or self.binary, "-u", pair],
                                   input="\n".join(lines) + "\n", capture_output=True, text=True)
        output = completed.stdout.rstrip("\n").split("\n")
        if completed.returncode != 0 or len(output) != len(lines):
            raise DubError(f"apertium {pair} failed: {(completed.stderr or completed.stdout).strip()[-200:]}",
                           field="--translator")
        return [line.strip() for line in output]


@dataclass(frozen=True)
class TransformersTranslator:
    """A local seq2seq model folder (Marian ``opus-mt-*``, NLLB) read with transformers'
    Auto classes, ``local_files_only``. For NLLB, ``target_token`` is the target language token
    (e.g. ``spa_Latn``); Marian models are one pair each and need none."""

    model_dir: str
    target_token: str | None = None
    batch_size: int = 16
    max_new_tokens: int = 256
    name: str = "transformers"

    def translate(self, texts: Sequence[str], source: str, target: str) -> list[str]:
        from castline.engines.cloning import from_transformers

        if not Path(self.model_dir).is_dir():
            raise DubError("translation model folder not found", source=self.model_dir, field="--translator")
        auto_tokenizer, auto_model = from_transformers("AutoTokenizer", "AutoModelForSeq2SeqLM")
        import torch

        try:
            tokenizer = auto_tokenizer.from_pretrained(self.model_dir, local_files_only=True)
            model = auto_model.from_pretrained(self.model_dir, local_files_only=True).eval()
        except (OSError, ValueError) as error:
            raise DubError(f"cannot load a translation model: {str(error).splitlines()[0][:160]}",
                           source=self.model_dir, field="--translator") from error
        extra = {}
        if self.target_token:
            extra["forced_bos_token_id"] = tokenizer.convert_tokens_to_ids(self.target_token)
        results: list[str] = []
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                batch = list(texts[start:start + self.batch_size])
                encoded = tokenizer(batch, return_tensors="pt", padding=True, truncation=True)
                generated = model.generate(**encoded, num_beams=1, do_sample=False,
                                           max_new_tokens=self.max_new_tokens, **extra)
                results.extend(text.strip() for text in tokenizer.batch_decode(generated, skip_special_tokens=True))
        return results


def translator_for(spec: str) -> Translator:
    """``apertium``, or ``marian:DIR`` / ``transformers:DIR`` (``nllb:DIR:spa_Latn`` for NLLB)."""
    kind, _, rest = spec.partition(":")
    if kind == "apertium" and not rest:
        return ApertiumTranslator()
    if kind in ("marian", "transformers") and rest:
        return TransformersTranslator(rest)
    if kind == "nllb" and rest.count(":") >= 1:
        folder, _, token = rest.rpartition(":")
        return TransformersTranslator(folder, target_token=token)
    raise DubError(f"unknown translator '{spec}' (apertium, marian:DIR, nllb:DIR:TOKEN)", field="--translator")


def translated_srt(sheet: CueSheet, translator: Translator, source: str, target: str) -> str:
    """The sheet as SRT with its spoken text translated (timings, dashes, speakers kept)."""
    texts = [utterance.text for cue in sheet.cues for utterance in cue.utterances]
    translated = iter(translator.translate(texts, source, target))
    blocks = []
    for number, cue in enumerate(sheet.cues, start=1):
        lines = []
        for utterance in cue.utterances:
            text = next(translated)
            said = f"{utterance.speaker}: {text}" if utterance.speaker else text
            lines.append(f"- {said}" if len(cue.utterances) > 1 else said)
        blocks.append(f"{number}\n{_clock(cue.start_ms)} --> {_clock(cue.end_ms)}\n" + "\n".join(lines) + "\n")
    return "\n".join(blocks)


def _clock(ms: int) -> str:
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d},{millis:03d}"


def translate_cue_files(cues: Sequence[str], targets: Sequence[str], source: str,
                        translator: Translator) -> list[tuple[str, str]]:
    """Translate each cue file into its target language (one file and several languages: into
    each; otherwise one language per file), written beside the source as ``<stem>.<lang>.srt``.
    Returns ``(path, language)`` pairs, ready for dubbing."""
    from castline.dub.cast import normalise_language
    from castline.dub.cues import load_cue_sheet

    if not targets:
        raise DubError("--translate-from needs the target language(s): --lang es", field="--lang")
    if len(cues) == 1:
        pairs = [(cues[0], target) for target in targets]
    elif len(cues) == len(targets):
        pairs = list(zip(cues, targets))
    else:
        raise DubError("--translate-from: give one --lang per --cues file, or one --cues file", field="--lang")
    written = []
    for path, target in pairs:
        try:
            language = normalise_language(target)
        except ValueError as error:
            raise DubError(str(error), field="--lang") from error
        sheet = load_cue_sheet(path)
        out = Path(path).with_name(f"{Path(path).stem}.{language}.srt")
        out.write_text(translated_srt(sheet, translator, source, language), encoding="utf-8")
        written.append((str(out), language))
    return written
