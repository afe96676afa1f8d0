"""EPUB manuscripts (EPUB 2 and 3): spine order, TOC entries → chapters, paragraphs → turns.

Read with ``zipfile`` and expat (the XML parser under ``xml.etree``), which report line numbers:
errors name the book, the item inside it and the line, e.g. ``book.epub!/OEBPS/ch2.xhtml:14``.
Chapters come from the EPUB 3 navigation document (``<nav epub:type="toc">``) or the EPUB 2
NCX; without either, each ``h1``/``h2`` starts one. Front matter — spine items with
``linear="no"``, the navigation document, and items marked cover, title page, copyright page,
table of contents or front matter (by landmarks, the OPF guide or ``epub:type``) — is skipped
unless ``include_front_matter`` is set. Every paragraph is read by the narrator unless a
``dialogue_pattern`` names another speaker.
"""

from __future__ import annotations

import html.entities
import posixpath
import re
import xml.parsers.expat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urldefrag

from castline.core.errors import ScriptError
from castline.script.manuscript_markdown import (DEFAULT_NARRATOR, Manuscript, ManuscriptOptions, TurnBuilder,
                                                 compile_dialogue, split_dialogue)
from castline.script.model import SourceRef

MAX_EPUB_BYTES = 200 * 1024 * 1024
MAX_ITEM_BYTES = 20 * 1024 * 1024
FRONT_MATTER_TYPES = frozenset({"cover", "titlepage", "title-page", "copyright-page", "copyright", "toc",
                                "frontmatter", "halftitlepage", "imprint", "dedication"})
_BLOCKS = frozenset({"p", "h1", "h2", "h3", "h4", "h5", "h6", "li", "blockquote", "div", "section", "dt", "dd",
                     "pre", "td", "th", "tr", "figcaption", "caption", "aside", "header", "footer", "article",
                     "body", "table", "ul", "ol", "dl", "hr"})
_SKIP = frozenset({"script", "style", "head", "title", "svg", "math", "rt", "rp"})
_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_ENTITY = re.compile(r"&([A-Za-z][A-Za-z0-9]*);")
_XML_ENTITIES = frozenset({"amp", "lt", "gt", "quot", "apos"})
NS_OPF = "http://www.idpf.org/2007/opf"
NS_DC = "http://purl.org/dc/elements/1.1/"
NS_OPS = "http://www.idpf.org/2007/ops"
NS_NCX = "http://www.daisy.org/z3986/2005/ncx/"
NS_CONTAINER = "urn:oasis:names:tc:opendocument:xmlns:container"


@dataclass
class _Node:
    tag: str
    attrs: dict[str, str]
    line: int
    children: list["_Node"] = field(default_factory=list)
    text: list[str] = field(default_factory=list)


def _parse_xml(data: bytes, where: str) -> _Node:
    """A small element tree with line numbers (``tag`` is ``{namespace}local``)."""
    text = data.decode("utf-8-sig", errors="strict") if not data.startswith((b"\xff\xfe", b"\xfe\xff")) \
        else data.decode("utf-16")
    # XHTML 1.1 books use HTML entities (&nbsp;) that XML does not define without the DTD.
    text = _ENTITY.sub(lambda m: m.group(0) if m.group(1) in _XML_ENTITIES or m.group(1) not in
                       html.entities.name2codepoint else f"&#{html.entities.name2codepoint[m.group(1)]};", text)
    parser = xml.parsers.expat.ParserCreate(namespace_separator="}")
    root: list[_Node] = []
    stack: list[_Node] = []

    def start(name: str, attrs: dict[str, str]) -> None:
        node = _Node("{" + name if "}" in name else name, attrs, parser.CurrentLineNumber)
        if stack:
            stack[-1].children.append(node)
            stack[-1].text.append(node)  # type: ignore[arg-type]
        else:
            root.append(node)
        stack.append(node)

    def end(name: str) -> None:
        stack.pop()

    def chars(data: str) -> None:
        if stack:
            stack[-1].text.append(data)

    parser.StartElementHandler, parser.EndElementHandler, parser.CharacterDataHandler = start, end, chars
    try:
        parser.Parse(text.encode("utf-8"), True)
    except xml.parsers.expat.ExpatError as exc:
        raise ScriptError(f"is not well-formed XML: {xml.parsers.expat.errors.messages[exc.code]}",
                          source=where, line=exc.lineno) from exc
    return root[0]


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _iter(node: _Node):
    yield node
    for child in node.children:
        yield from _iter(child)


def _text_of(node: _Node) -> str:
    parts = []
    for piece in node.text:
        parts.append(piece if isinstance(piece, str) else _text_of(piece))
    return " ".join("".join(parts).split())


def _attr(node: _Node, name: str) -> str | None:
    for key, value in node.attrs.items():
        if key == name or key.endswith("}" + name) or key.endswith(" " + name):
            return value
    return None


@dataclass(frozen=True)
class _Paragraph:
    kind: str
    text: str
    line: int
    anchors: tuple[str, ...]
    front: bool


def _paragraphs(root: _Node) -> tuple[list[_Paragraph], bool]:
    """Block-level text of an XHTML document in order, and whether its body is front matter."""
    out: list[_Paragraph] = []
    buffer: list[str] = []
    anchors: list[str] = []
    state = {"line": 0, "kind": "p", "front": False}
    body_front = False

    def flush() -> None:
        text = " ".join("".join(buffer).split())
        if text:
            out.append(_Paragraph(state["kind"], text, state["line"], tuple(anchors), state["front"]))
            anchors.clear()
        buffer.clear()

    def walk(node: _Node, front: bool) -> None:
        nonlocal body_front
        name = _local(node.tag).lower()
        if name in _SKIP:
            return
        types = set((_attr(node, "type") or "").split())
        front = front or bool(types & FRONT_MATTER_TYPES)
        if name == "body":
            body_front = front
        node_id = node.attrs.get("id")
        block = name in _BLOCKS
        if block:
            flush()
            state.update(line=node.line, kind=name if name in _HEADINGS else "p", front=front)
        if node_id:
            anchors.append(node_id)
        if name == "br":
            buffer.append(" ")
        for piece in node.text:
            if isinstance(piece, str):
                if piece.strip() and not "".join(buffer).strip():
                    state["line"] = node.line
                buffer.append(piece)
            else:
                walk(piece, front)
        if block:
            flush()
            state.update(kind="p")

    walk(root, False)
    flush()
    return out, body_front


def parse_epub(path: str, options: ManuscriptOptions | None = None) -> Manuscript:
    """Parse an EPUB file into turns and chapters; errors name the item and line."""
    options = options or ManuscriptOptions()
    narrator = options.narrator or DEFAULT_NARRATOR
    dialogue = compile_dialogue(options.dialogue_pattern, path)
    try:
        if Path(path).stat().st_size > MAX_EPUB_BYTES:
            raise ScriptError(f"is larger than {MAX_EPUB_BYTES // 2**20} MB", source=path)
        book = zipfile.ZipFile(path)
    except FileNotFoundError as exc:
        raise ScriptError("no such file", source=path) from exc
    except zipfile.BadZipFile as exc:
        raise ScriptError("is not an EPUB: not a ZIP archive", source=path) from exc
    with book:
        names = set(book.namelist())

        def read(name: str, referenced_from: str, line: int | None = None) -> bytes:
            if name not in names:
                raise ScriptError(f"refers to '{name}', which is not in the book", source=referenced_from,
                                  line=line)
            if book.getinfo(name).file_size > MAX_ITEM_BYTES:
                raise ScriptError("is too large for a book item", source=f"{path}!/{name}")
            return book.read(name)

        if "META-INF/container.xml" not in names:
            raise ScriptError("is not an EPUB: META-INF/container.xml is missing", source=path)
        container = _parse_xml(book.read("META-INF/container.xml"), f"{path}!/META-INF/container.xml")
        rootfile = next((n for n in _iter(container) if _local(n.tag) == "rootfile"), None)
        if rootfile is None or not rootfile.attrs.get("full-path"):
            raise ScriptError("has no <rootfile full-path=...>", source=f"{path}!/META-INF/container.xml")
        opf_name = rootfile.attrs["full-path"]
        opf_where = f"{path}!/{opf_name}"
        opf = _parse_xml(read(opf_name, f"{path}!/META-INF/container.xml", rootfile.line), opf_where)
        base = posixpath.dirname(opf_name)

        def resolve(href: str, relative_to: str = base) -> str:
            return posixpath.normpath(posixpath.join(relative_to, unquote(href))) if relative_to else \
                posixpath.normpath(unquote(href))

        title = next((_text_of(n) for n in _iter(opf) if n.tag == f"{{{NS_DC}}}title"), None) or None
        language = next((_text_of(n) for n in _iter(opf) if n.tag == f"{{{NS_DC}}}language"), None) or None
        manifest: dict[str, _Node] = {n.attrs.get("id", ""): n for n in _iter(opf) if _local(n.tag) == "item"}
        spine = next((n for n in _iter(opf) if _local(n.tag) == "spine"), None)
        if spine is None:
            raise ScriptError("has no <spine>", source=opf_where)
        front_files: set[str] = set()
        for ref in (n for n in _iter(opf) if _local(n.tag) == "reference"):  # EPUB 2 guide
            if (ref.attrs.get("type") or "").lower() in FRONT_MATTER_TYPES and ref.attrs.get("href"):
                front_files.add(resolve(urldefrag(ref.attrs["href"])[0]))
        nav_item = next((item for item in manifest.values()
                         if "nav" in (item.attrs.get("properties") or "").split()), None)
        toc: list[tuple[str, str, str]] = []  # (file, fragment, title)
        nav_file = None
        if nav_item is not None:
            nav_file = resolve(nav_item.attrs["href"])
            nav_root = _parse_xml(read(nav_file, opf_where, nav_item.line), f"{path}!/{nav_file}")
            nav_dir = posixpath.dirname(nav_file)
            for nav in (n for n in _iter(nav_root) if _local(n.tag) == "nav"):
                kind = _attr(nav, "type") or ""
                links = [(a.attrs.get("href", ""), _text_of(a)) for a in _iter(nav) if _local(a.tag) == "a"]
                for href, text in links:
                    target, fragment = urldefrag(href)
                    if not target:
                        continue
                    if "toc" in kind.split():
                        toc.append((resolve(target, nav_dir), fragment, text))
                    elif "landmarks" in kind.split() and href:
                        a_node = next(a for a in _iter(nav) if _local(a.tag) == "a" and a.attrs.get("href") == href)
                        if set((_attr(a_node, "type") or "").split()) & FRONT_MATTER_TYPES:
                            front_files.add(resolve(target, nav_dir))
        ncx_id = spine.attrs.get("toc")
        if not toc and ncx_id and ncx_id in manifest:
            ncx_file = resolve(manifest[ncx_id].attrs["href"])
            ncx = _parse_xml(read(ncx_file, opf_where, manifest[ncx_id].line), f"{path}!/{ncx_file}")
            ncx_dir = posixpath.dirname(ncx_file)
            for point in (n for n in _iter(ncx) if _local(n.tag) == "navPoint"):
                label = next((_text_of(n) for n in _iter(point) if _local(n.tag) == "text"), "")
                content = next((n for n in point.children if _local(n.tag) == "content"), None)
                if content is not None and content.attrs.get("src"):
                    target, fragment = urldefrag(content.attrs["src"])
                    toc.append((resolve(target, ncx_dir), fragment, label))

        builder = TurnBuilder(path)
        toc_by_file: dict[str, list[tuple[str, str]]] = {}
        for file, fragment, text in toc:
            toc_by_file.setdefault(file, []).append((fragment, text))
        skipped = []
        for position, itemref in enumerate(n for n in spine.children if _local(n.tag) == "itemref"):
            idref = itemref.attrs.get("idref", "")
            if idref not in manifest:
                raise ScriptError(f"spine item {position + 1} refers to '{idref}', which is not in the manifest",
                                  source=opf_where, line=itemref.line)
            item = manifest[idref]
            file = resolve(item.attrs.get("href", ""))
            where = f"{path}!/{file}"
            linear = itemref.attrs.get("linear", "yes") != "no"
            is_front = not linear or file == nav_file or file in front_files
            if is_front and not options.include_front_matter:
                skipped.append(file)
                continue
            media = item.attrs.get("media-type", "")
            if "html" not in media:
                continue
            document = _parse_xml(read(file, opf_where, itemref.line), where)
            paragraphs, body_front = _paragraphs(document)
            if body_front and not options.include_front_matter:
                skipped.append(file)
                continue
            pending = list(toc_by_file.get(file, ()))
            anchors = {anchor for paragraph in paragraphs for anchor in paragraph.anchors}
            for number, paragraph in enumerate(paragraphs, start=1):
                if paragraph.front and not options.include_front_matter:
                    continue
                ref = SourceRef(where, paragraph.line)
                while pending and (not pending[0][0] or pending[0][0] in paragraph.anchors
                                   or pending[0][0] not in anchors):
                    builder.chapter(pending.pop(0)[1] or title or file, ref)
                if not toc and paragraph.kind in ("h1", "h2"):
                    builder.chapter(paragraph.text, ref)
                    if not options.speak_headings:
                        continue
                elif toc and paragraph.kind in _HEADINGS and not options.speak_headings:
                    continue
                found = split_dialogue(paragraph.text, dialogue)
                speaker, spoken = found if found else (narrator, paragraph.text)
                try:
                    builder.add(speaker, spoken, ref, f"paragraph {number}")
                except ScriptError as exc:
                    raise ScriptError(exc.message, source=where, line=paragraph.line,
                                      field=f"paragraph {number}") from exc
    if not builder.turns:
        raise ScriptError("has no text to read" + (f" (skipped front matter: {', '.join(skipped)}; "
                                                   "include it to read it)" if skipped else ""), source=path)
    warnings = list(builder.warnings)
    if skipped:
        warnings.append(f"{path}: skipped front matter {', '.join(skipped)}")
    return Manuscript(title=title, episode_id=None, language=language, preset=None, narrator=narrator, cast=(),
                      turns=tuple(builder.turns), chapters=tuple(builder.chapters), warnings=tuple(warnings))
