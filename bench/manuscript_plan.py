"""Seconds to plan a 100,000-word book (Markdown and EPUB), with a lexicon and normalisation.

Usage: python bench/manuscript_plan.py [--words 100000] [--rules 200]

Writes a synthetic book (40 chapters; paragraphs with numbers, dates, money and dialogue) as
Markdown and as EPUB 3 into a temporary folder, then times, best of 3: parsing alone, and
``prepare_render`` (parse, cast the hibari voice 'heart', apply ``--rules`` lexicon rules and
spoken-form normalisation, split into chunks and key every chunk). No audio is made.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
import zipfile
from pathlib import Path

from castline.render.options import RenderOptions
from castline.render.plan import prepare_render
from castline.script.manuscript import parse_manuscript

WORDS = ("the harbour light turned slowly over grey water while gulls argued on the pier and a boat "
         "came home late with nets full of silver fish and tired hands").split()


def paragraphs(total_words: int, seed: int = 0):
    rng = random.Random(seed)
    written = 0
    while written < total_words:
        words = [rng.choice(WORDS) for _ in range(rng.randint(40, 120))]
        words[rng.randrange(len(words))] = rng.choice(["42", "1,250", "$9.99", "40%", "10:30", "3rd", "Dr.",
                                                       "March 3, 2025", "5 km", "Nguyen", "SQL"])
        text = " ".join(words).capitalize() + "."
        written += len(words)
        yield ("Mara", text) if rng.random() < 0.15 else (None, text)


def write_books(folder: Path, total_words: int, chapters: int = 40) -> tuple[Path, Path]:
    items = list(paragraphs(total_words))
    per = len(items) // chapters + 1
    md = ["---", "title: Bench Book", "cast: {narrator: heart, Mara: heart}", "---", ""]
    xhtml_files = []
    for number in range(chapters):
        chunk = items[number * per:(number + 1) * per]
        md += [f"# Chapter {number + 1}", ""]
        body = [f"<h1>Chapter {number + 1}</h1>"]
        for speaker, text in chunk:
            md += [f"> {speaker}: {text}" if speaker else text, ""]
            body.append(f"<p>{text}</p>")
        xhtml_files.append("<?xml version='1.0' encoding='utf-8'?>\n<html xmlns='http://www.w3.org/1999/xhtml'>"
                           "<head><title>c</title></head><body>\n" + "\n".join(body) + "\n</body></html>")
    markdown = folder / "book.md"
    markdown.write_text("\n".join(md), encoding="utf-8")
    epub = folder / "book.epub"
    with zipfile.ZipFile(epub, "w", zipfile.ZIP_DEFLATED) as book:
        book.writestr("mimetype", "application/epub+zip", compress_type=zipfile.ZIP_STORED)
        book.writestr("META-INF/container.xml", "<container version='1.0' xmlns='urn:oasis:names:tc:opendocument:"
                      "xmlns:container'><rootfiles><rootfile full-path='content.opf'/></rootfiles></container>")
        manifest = "".join(f"<item id='c{i}' href='c{i}.xhtml' media-type='application/xhtml+xml'/>"
                           for i in range(chapters))
        spine = "".join(f"<itemref idref='c{i}'/>" for i in range(chapters))
        book.writestr("content.opf", "<package xmlns='http://www.idpf.org/2007/opf' version='3.0'><metadata "
                      "xmlns:dc='http://purl.org/dc/elements/1.1/'><dc:title>Bench</dc:title><dc:language>en"
                      f"</dc:language></metadata><manifest>{manifest}</manifest><spine>{spine}</spine></package>")
        for i, text in enumerate(xhtml_files):
            book.writestr(f"c{i}.xhtml", text)
    return markdown, epub


def best_of(runs: int, action) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(runs):
        started = time.perf_counter()
        result = action()
        best = min(best, time.perf_counter() - started)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--words", type=int, default=100_000)
    parser.add_argument("--rules", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        markdown, epub = write_books(folder, args.words)
        rules = ["rules:", "  - {grapheme: Nguyen, alias: Win}", "  - {grapheme: SQL, alias: sequel, case_sensitive: true}"]
        rules += [f"  - {{grapheme: Name{i}, alias: Nay {i}}}" for i in range(args.rules - 2)]
        lexicon = folder / "names.yaml"
        lexicon.write_text("\n".join(rules) + "\n", encoding="utf-8")
        for path in (markdown, epub):
            parse_s, book = best_of(3, lambda: parse_manuscript(path))
            words = sum(len(turn.text.split()) for turn in book.turns)
            options = RenderOptions(script=str(path), lexicons=(str(lexicon),), normalise=True)
            plan_s, plan = best_of(3, lambda: prepare_render(options))
            rewritten = sum(1 for job in plan.jobs if job.spoken_text != job.text)
            print(f"{path.suffix}: {words} words, {len(book.turns)} turns, {len(book.chapters)} chapters; "
                  f"parse {parse_s:.2f} s; plan (lexicon of {args.rules} rules + normalisation + chunking) "
                  f"{plan_s:.2f} s: {len(plan.jobs)} chunks, {rewritten} rewritten")


if __name__ == "__main__":
    main()
