"""Markdown and EPUB manuscripts parsed into the typed script model, with located errors."""

from __future__ import annotations

import zipfile

import pytest

from castline.core.errors import ScriptError
from castline.script.load import load_script
from castline.script.manuscript_markdown import ManuscriptOptions, parse_markdown

VOICES = ["heart", "joe", "slt"]
PRESETS = ["podcast", "audiobook"]

BOOK_MD = """\
---
title: The Long Road
cast:
  narrator: heart
  Mara: joe
lexicons: [names.yaml]
---
# The Long Road

## Chapter One

It was late.
The train left at 10:30.

> Mara: We should go.

> **Mara:** Now.

***

Dr. Smith nodded.

### A smaller heading

More text.

## Chapter Two

```
print("not read")
```

She paid $9.99.
"""


def load(path, **kwargs):
    return load_script(path, known_voices=VOICES, known_presets=PRESETS, **kwargs)


def test_markdown_book(tmp_path):
    path = tmp_path / "book.md"
    path.write_text(BOOK_MD, encoding="utf-8")
    episode = load(path)
    assert episode.source_format == "markdown"
    assert episode.meta.title == "The Long Road" and episode.meta.episode_id == "book"
    assert episode.meta.lexicons == (str(tmp_path / "names.yaml"),)
    assert [(c.speaker, c.voice) for c in episode.cast] == [("narrator", "heart"), ("Mara", "joe")]
    assert [(t.speaker, t.text, t.source.line, t.scene_break_before) for t in episode.turns] == [
        ("narrator", "Chapter One", 10, False),
        ("narrator", "It was late. The train left at 10:30.", 12, False),
        ("Mara", "We should go.", 15, False),
        ("Mara", "Now.", 17, False),
        ("narrator", "Dr. Smith nodded.", 21, True),
        ("narrator", "A smaller heading", 23, True),
        ("narrator", "More text.", 25, False),
        ("narrator", "Chapter Two", 27, False),
        ("narrator", "She paid $9.99.", 33, False),
    ]
    assert [(c.title, c.first_turn) for c in episode.chapters] == [("Chapter One", 0), ("Chapter Two", 7)]
    assert any("29: code block is not read aloud" in w for w in episode.warnings)


def test_markdown_without_front_matter_assigns_voices_and_dialogue_pattern(tmp_path):
    path = tmp_path / "story.markdown"
    path.write_text("# One\n\nOpening.\n\nTOM: Hello there.\n\n# Two\n\nClosing.\n", encoding="utf-8")
    options = ManuscriptOptions(dialogue_pattern=r"(?P<speaker>[A-Z]+): (?P<text>.+)", narrator="reader")
    episode = load(path, cast={"TOM": "slt"}, manuscript_options=options)
    assert [(t.speaker, t.text) for t in episode.turns] == [
        ("reader", "One"), ("reader", "Opening."), ("TOM", "Hello there."), ("reader", "Two"), ("reader", "Closing.")]
    assert dict((c.speaker, c.voice) for c in episode.cast) == {"reader": "heart", "TOM": "slt"}
    assert [c.title for c in episode.chapters] == ["One", "Two"]


@pytest.mark.parametrize("text, message", [
    ("---\ntitle: x\n", r"book\.md:1: front matter starting with '---' is never closed"),
    ("---\ntitle: [x\n---\nHi.\n", r"book\.md:\d: invalid front matter"),
    ("---\ntitle: x\n\x07\n---\nHi.\n", r"book\.md:3: invalid front matter: control characters"),
    ("---\ntitle: " + "[" * 300 + "\n---\nHi.\n", r"book\.md: brackets are nested more than 200 deep"),
    ("---\ncolour: red\n---\nHi.\n", r"book\.md:2: colour: unknown front matter key"),
    ("---\ncast: [a, b]\n---\nHi.\n", r"book\.md:2: cast: must map speakers to voices"),
    ("---\ndialogue_pattern: '(?P<speaker>x'\n---\nHi.\n", r"book\.md:2: dialogue_pattern: not a valid regular"),
    ("---\ndialogue_pattern: '(?P<who>\\w+): (?P<text>.+)'\n---\nHi.\n",
     r"book\.md:2: dialogue_pattern: needs named groups"),
    ("# Only a heading\n\n```\ncode\n```\n", r"book\.md: has no paragraphs to read"),
    ("Fine.\n\n> no speaker here\n", r"book\.md:3: quote: a quote needs its speaker first"),
    ("---\ncast: {narrator: heart}\n---\nHi.\n\n> Bob: Hey.\n", r"book\.md:6: speaker 'Bob' is not in the front matter"),
    ("---\ncast: {narrator: nobody}\n---\nHi.\n", r"book\.md:1: cast\.narrator: unknown voice 'nobody'"),
    ("Text with a \x01 control.\n", r"book\.md: is a binary file|control character"),
])
def test_malformed_markdown_errors_name_file_and_line(tmp_path, text, message):
    path = tmp_path / "book.md"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ScriptError, match=message):
        load(path)


# -- EPUB ---------------------------------------------------------------------------------------

CONTAINER = """<?xml version="1.0"?>
<container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">
  <rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/></rootfiles>
</container>"""


def xhtml(body: str, body_attrs: str = "") -> str:
    return ('<?xml version="1.0" encoding="utf-8"?>\n<html xmlns="http://www.w3.org/1999/xhtml" '
            f'xmlns:epub="http://www.idpf.org/2007/ops">\n<head><title>t</title></head>\n<body{body_attrs}>\n'
            f'{body}\n</body>\n</html>\n')


def opf(spine: str, manifest_extra: str = "", version: str = "3.0", spine_attrs: str = "", guide: str = "") -> str:
    return f"""<?xml version="1.0" encoding="utf-8"?>
<package xmlns="http://www.idpf.org/2007/opf" version="{version}" unique-identifier="id">
  <metadata xmlns:dc="http://purl.org/dc/elements/1.1/">
    <dc:identifier id="id">urn:x</dc:identifier><dc:title>A Tale</dc:title><dc:language>en-GB</dc:language>
  </metadata>
  <manifest>
    <item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" properties="nav"/>
    <item id="cover" href="text/cover.xhtml" media-type="application/xhtml+xml"/>
    <item id="copy" href="text/copyright.xhtml" media-type="application/xhtml+xml"/>
    <item id="c1" href="text/ch1.xhtml" media-type="application/xhtml+xml"/>
    <item id="c2" href="text/ch2.xhtml" media-type="application/xhtml+xml"/>
    <item id="css" href="style.css" media-type="text/css"/>
    {manifest_extra}
  </manifest>
  <spine{spine_attrs}>{spine}</spine>
  {guide}
</package>"""


NAV = xhtml("""<nav epub:type="toc"><ol>
  <li><a href="text/ch1.xhtml">The First Chapter</a></li>
  <li><a href="text/ch2.xhtml#part2">The Second Chapter</a></li>
</ol></nav>
<nav epub:type="landmarks"><ol><li><a epub:type="copyright-page" href="text/copyright.xhtml">©</a></li></ol></nav>""")

SPINE = ('<itemref idref="cover" linear="no"/><itemref idref="nav"/><itemref idref="copy"/>'
         '<itemref idref="c1"/><itemref idref="c2"/>')

CH1 = xhtml("""<h1>Chapter 1</h1>
<p>It was a &ldquo;dark&rdquo; night.</p>
<p>The rain
fell&nbsp;hard.<br/>Then it stopped.</p>
<blockquote><p>A quoted line.</p></blockquote>""")

CH2 = xhtml("""<p>Before the break.</p>
<h2 id="part2">Part Two</h2>
<p>After <em>the</em> break.</p>
<script>ignored()</script>""")


def make_epub(path, files: dict[str, str], *, mimetype: bool = True):
    with zipfile.ZipFile(path, "w") as book:
        if mimetype:
            book.writestr("mimetype", "application/epub+zip", compress_type=zipfile.ZIP_STORED)
        for name, text in files.items():
            book.writestr(name, text)
    return path


def standard_files(**overrides):
    files = {"META-INF/container.xml": CONTAINER, "OEBPS/content.opf": opf(SPINE), "OEBPS/nav.xhtml": NAV,
             "OEBPS/text/cover.xhtml": xhtml("<p>COVER</p>"),
             "OEBPS/text/copyright.xhtml": xhtml("<p>Copyright 2025.</p>"),
             "OEBPS/text/ch1.xhtml": CH1, "OEBPS/text/ch2.xhtml": CH2, "OEBPS/style.css": "p {}"}
    files.update(overrides)
    return files


def test_epub3_spine_nav_and_front_matter(tmp_path):
    episode = load(make_epub(tmp_path / "tale.epub", standard_files()))
    assert episode.source_format == "epub"
    assert episode.meta.title == "A Tale" and episode.meta.language == "en-GB"
    texts = [t.text for t in episode.turns]
    assert texts == ["Chapter 1", "It was a “dark” night.", "The rain fell hard. Then it stopped.",
                     "A quoted line.", "Before the break.", "Part Two", "After the break."]
    assert [(c.title, c.first_turn) for c in episode.chapters] == [("The First Chapter", 0),
                                                                   ("The Second Chapter", 5)]
    assert {t.speaker for t in episode.turns} == {"narrator"}
    first = episode.turns[1].source
    assert first.path.endswith("tale.epub!/OEBPS/text/ch1.xhtml") and first.line == 6
    assert any("skipped front matter" in w and "copyright.xhtml" in w for w in episode.warnings)


def test_epub_front_matter_included_when_asked(tmp_path):
    episode = load(make_epub(tmp_path / "tale.epub", standard_files()),
                   manuscript_options=ManuscriptOptions(include_front_matter=True))
    texts = [t.text for t in episode.turns]
    assert texts[0] == "COVER" and "Copyright 2025." in texts and "The First Chapter" in texts


def test_epub2_ncx_and_guide(tmp_path):
    ncx = """<?xml version="1.0"?>
<ncx xmlns="http://www.daisy.org/z3986/2005/ncx/" version="2005-1"><navMap>
  <navPoint id="a" playOrder="1"><navLabel><text>One</text></navLabel><content src="text/ch1.xhtml"/></navPoint>
  <navPoint id="b" playOrder="2"><navLabel><text>Two</text></navLabel><content src="text/ch2.xhtml"/></navPoint>
</navMap></ncx>"""
    spine = '<itemref idref="cover"/><itemref idref="c1"/><itemref idref="c2"/>'
    package = opf(spine, '<item id="ncx" href="toc.ncx" media-type="application/x-dtbncx+xml"/>', version="2.0",
                  spine_attrs=' toc="ncx"', guide='<guide><reference type="cover" href="text/cover.xhtml"/></guide>')
    package = package.replace('properties="nav"', "")
    files = standard_files(**{"OEBPS/content.opf": package, "OEBPS/toc.ncx": ncx})
    episode = load(make_epub(tmp_path / "old.epub", files))
    assert [(c.title, c.first_turn) for c in episode.chapters] == [("One", 0), ("Two", 4)]
    assert episode.turns[0].text == "Chapter 1"


def test_epub_body_marked_front_matter_is_skipped(tmp_path):
    files = standard_files(**{"OEBPS/text/ch1.xhtml": xhtml("<p>Dedicated to you.</p>",
                                                            ' epub:type="frontmatter dedication"')})
    episode = load(make_epub(tmp_path / "tale.epub", files))
    assert "Dedicated to you." not in [t.text for t in episode.turns]


@pytest.mark.parametrize("mutate, message", [
    (lambda f: f.pop("META-INF/container.xml"), r"tale\.epub: is not an EPUB: META-INF/container\.xml is missing"),
    (lambda f: f.update({"OEBPS/text/ch2.xhtml": xhtml("<p>Open <em>tag</p>")}),
     r"tale\.epub!/OEBPS/text/ch2\.xhtml:5: is not well-formed XML: mismatched tag"),
    (lambda f: f.pop("OEBPS/text/ch1.xhtml"),
     r"tale\.epub!/OEBPS/content\.opf:\d+: refers to 'OEBPS/text/ch1\.xhtml', which is not in the book"),
    (lambda f: f.update({"OEBPS/content.opf": opf(SPINE + '<itemref idref="ghost"/>')}),
     r"tale\.epub!/OEBPS/content\.opf:\d+: spine item 6 refers to 'ghost', which is not in the manifest"),
    (lambda f: f.update({"OEBPS/content.opf": "<package><spine>"}),
     r"tale\.epub!/OEBPS/content\.opf:1: is not well-formed XML"),
    (lambda f: f.update({"OEBPS/text/ch1.xhtml": xhtml("<p>Bad \x01 char</p>")}),
     r"tale\.epub!/OEBPS/text/ch1\.xhtml:5: is not well-formed XML"),
    (lambda f: f.update({"OEBPS/text/ch1.xhtml": xhtml(""), "OEBPS/text/ch2.xhtml": xhtml("")}),
     r"tale\.epub: has no text to read \(skipped front matter"),
])
def test_malformed_epub_errors_name_item_and_line(tmp_path, mutate, message):
    files = standard_files()
    mutate(files)
    with pytest.raises(ScriptError, match=message):
        load(make_epub(tmp_path / "tale.epub", files))


def test_not_a_zip(tmp_path):
    path = tmp_path / "tale.epub"
    path.write_text("just text", encoding="utf-8")
    with pytest.raises(ScriptError, match=r"tale\.epub: is not an EPUB: not a ZIP archive"):
        load(path)


def test_epub_paragraph_errors_name_the_paragraph(tmp_path):
    files = standard_files(**{"OEBPS/text/ch2.xhtml": xhtml("<p>Fine.</p>\n<p>Bad &#x7f; char</p>")})
    with pytest.raises(ScriptError, match=r"tale\.epub!/OEBPS/text/ch2\.xhtml:6: paragraph 2: contains control"):
        load(make_epub(tmp_path / "tale.epub", files))


def test_markdown_and_epub_share_one_model(tmp_path):
    md = tmp_path / "same.md"
    md.write_text("# The First Chapter\n\nIt was night.\n", encoding="utf-8")
    files = standard_files(**{"OEBPS/text/ch1.xhtml": xhtml("<h1>The First Chapter</h1>\n<p>It was night.</p>"),
                              "OEBPS/text/ch2.xhtml": xhtml("")})
    from_md, from_epub = load(md), load(make_epub(tmp_path / "same.epub", files))
    assert [(t.speaker, t.text) for t in from_md.turns] == [(t.speaker, t.text) for t in from_epub.turns]
    assert [c.title for c in from_md.chapters] == [c.title for c in from_epub.chapters]


def test_parse_markdown_directly_keeps_lines_after_front_matter():
    book = parse_markdown("---\ntitle: T\n---\n\nFirst.\n\nSecond.\n", "x.md")
    assert [(t.text, t.source.line) for t in book.turns] == [("First.", 5), ("Second.", 7)]


@pytest.mark.slow
def test_render_a_markdown_book(prefect_api, tmp_path, capsys):
    import json

    from castline_cli.main import main

    book = tmp_path / "short-book.md"
    book.write_text("---\ncast: {narrator: heart, Mara: heart}\n---\n# Short Book\n\n## One\n\nIt was late.\n\n"
                    "> Mara: We should go.\n\n## Two\n\nThey went home at 10:30.\n", encoding="utf-8")
    out = tmp_path / "out"
    assert main(["render", str(book), "--out", str(out), "--qa", "off", "--quiet", "--normalise"]) == 0
    assert "5 chunks synthesised, 0 reused" in capsys.readouterr().out
    manifest = json.loads((out / "short-book" / "manifest.json").read_text(encoding="utf-8"))
    assert (manifest["episode"], manifest["title"]) == ("short-book", "Short Book")
    assert [chapter["title"] for chapter in manifest["chapters"]] == ["One", "Two"]
    last = manifest["chunks"][-1]
    assert (last["text"], last["spoken_text"]) == ("They went home at 10:30.", "They went home at ten thirty.")
