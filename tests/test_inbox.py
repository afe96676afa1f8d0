"""The inbox: each script content rendered once, failures recorded, edits rendered again from cached chunks."""

from __future__ import annotations

import json

import pytest

from castline.inbox.scan import InboxScript, due, read_record, scan_inbox, write_record
from castline.storage import open_store

GOOD = "episode:\n  id: {id}\n  title: T\ncast:\n  host: {{voice: heart}}\nturns:\n" \
       "  - speaker: host\n    text: {text}\n"


def _write(folder, name, text):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text, encoding="utf-8")


def test_due_scripts_by_content_and_attempts(tmp_path):
    inbox, out = open_store(tmp_path / "inbox"), open_store(tmp_path / "out")
    _write(tmp_path / "inbox", "a.yaml", "one")
    _write(tmp_path / "inbox", "copy-of-a.yaml", "one")
    _write(tmp_path / "inbox", "b.txt", "two")
    _write(tmp_path / "inbox", "notes.md", "not a script")
    scripts = scan_inbox(inbox)
    assert [s.key for s in scripts] == ["a.yaml", "b.txt", "copy-of-a.yaml"]
    assert [s.key for s in due(out, scripts, max_attempts=2)] == ["a.yaml", "b.txt"]  # same content once
    a, b = scripts[0], scripts[1]
    write_record(out, a, succeeded=True, manifest="file:///m.json")
    write_record(out, b, succeeded=False, error="storage down")
    assert [s.key for s in due(out, scripts, max_attempts=2)] == ["b.txt"]  # a passing failure: retried
    assert read_record(out, b.sha256).attempts == 1
    write_record(out, b, succeeded=False, error="storage down")
    assert due(out, scripts, max_attempts=2) == []  # attempts used up
    c = InboxScript(key="c.yaml", uri="file:///c.yaml", sha256="c" * 64)
    write_record(out, c, succeeded=False, error="c.yaml:3: unknown voice", permanent=True)
    assert due(out, [c], max_attempts=5) == []  # the script's own fault: never retried as-is


@pytest.mark.slow
def test_process_inbox_renders_each_content_once(prefect_api, tmp_path, voices_dir):
    from castline_flows.process_inbox import process_inbox

    inbox, out = tmp_path / "inbox", tmp_path / "out"
    _write(inbox, "one.yaml", GOOD.format(id="one", text="The first script, short and sweet."))
    _write(inbox, "two.yaml", GOOD.format(id="two", text="The second script. It has two sentences."))
    _write(inbox, "two-again.yaml", GOOD.format(id="two", text="The second script. It has two sentences."))
    _write(inbox, "bad.yaml", "episode:\n  id: bad\ncast:\n  host: {voice: nobody}\nturns:\n"
                              "  - speaker: host\n    text: Hi.\n")
    params = dict(inbox=str(inbox), out=str(out), concurrency=2, voices_dir=str(voices_dir), qa={"policy": "off"})
    with pytest.raises(Exception, match="1 of 3 scripts failed"):
        process_inbox(**params)
    store = open_store(out)
    records = {json.loads(store.get_bytes(key))["script"].rsplit("/", 1)[-1]: json.loads(store.get_bytes(key))
               for key in store.list("_cache/inbox")}
    # two.yaml and two-again.yaml hold the same content: rendered once, under the first name
    assert set(records) == {"one.yaml", "two-again.yaml", "bad.yaml"}
    assert records["one.yaml"]["status"] == records["two-again.yaml"]["status"] == "done"
    assert records["bad.yaml"]["status"] == "failed" and records["bad.yaml"]["permanent"]
    assert "nobody" in records["bad.yaml"]["error"] and records["bad.yaml"]["error"].startswith(f"{inbox.as_uri()}/bad.yaml:4:")
    assert store.exists("one/manifest.json") and store.exists("two/manifest.json")

    # Nothing new: nothing rendered (the bad script's failure is its own: not retried as-is).
    assert process_inbox(**params) == {"found": 0, "done": 0, "failed": 0}

    # An edited script is new content: rendered again, its unchanged sentence from the chunk cache.
    _write(inbox, "two.yaml", GOOD.format(id="two", text="The second script. It has two sentences, edited."))
    assert process_inbox(**params) == {"found": 1, "done": 1, "failed": 0}
    render = json.loads(store.get_bytes("two/manifest.json"))["render"]
    assert render["chunks_rendered"] + render["chunks_reused"] >= 1 and render["chunks_rendered"] >= 1
