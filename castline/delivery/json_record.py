"""Frozen records that read and write themselves as JSON, driven by their fields' types.

A manifest record is a frozen dataclass; ``record_to_json`` and ``record_from_json`` walk its
fields in order, so a field is declared once (name, type, default) and serialises with no other
code. Supported field types: ``str``, ``int``, ``float``, ``bool``, ``None`` and unions of them,
other such records, ``tuple[X, ...]`` (a JSON list) and ``JsonObject`` (a JSON object kept as is:
an immutable mapping of plain JSON values, for data another module owns the shape of).

Field metadata (``dataclasses.field(metadata=...)``):

* ``OMIT_NONE``: the key is left out of the JSON when the value is ``None`` (and is ``None`` when
  the key is absent). Fields added to a published schema use it, so documents written before the
  field existed read back and round-trip unchanged.

Reading is strict: a missing required key is a ``KeyError``, a value of the wrong JSON type a
``TypeError`` and an unknown key a ``ValueError`` (unless the record class sets
``json_ignore_unknown = True``: a projection that reads only the few keys it names). Unknown keys are refused rather than kept in an
``extra`` bag: every key the schema has is a named field, so ``to_json(from_json(doc)) == doc``
holds for every document this code can read, and a document from a newer castline says so
instead of losing its new keys silently.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterator, Mapping
from functools import cache
from typing import Any, TypeVar

OMIT_NONE = types.MappingProxyType({"omit_none": True})
"""Field metadata: leave the key out of the JSON when the value is None."""

R = TypeVar("R")


class JsonObject(Mapping[str, Any]):
    """An immutable JSON object: nested objects are ``JsonObject`` and lists are tuples.

    Hashable and picklable, so it can sit in a frozen record that crosses process boundaries."""

    __slots__ = ("_items",)

    def __init__(self, data: Mapping[str, Any] | None = None) -> None:
        items = {} if data is None else {str(key): freeze_json(value) for key, value in data.items()}
        object.__setattr__(self, "_items", items)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("JsonObject is immutable")

    def __getitem__(self, key: str) -> Any:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(tuple(self._items.items()))

    def __repr__(self) -> str:
        return f"JsonObject({self._items!r})"

    def __reduce__(self):
        return (JsonObject, (self._items,))

    def thaw(self) -> dict[str, Any]:
        """A plain, mutable ``dict`` copy (nested objects and lists too)."""
        return thaw_json(self)


def freeze_json(value: Any) -> Any:
    """Plain JSON data (dicts, lists) as immutable data (``JsonObject``, tuples)."""
    if isinstance(value, JsonObject):
        return value
    if isinstance(value, Mapping):
        return JsonObject(value)
    if isinstance(value, (list, tuple)):
        return tuple(freeze_json(item) for item in value)
    return value


def thaw_json(value: Any) -> Any:
    """Immutable JSON data back to plain dicts and lists (what ``json.dumps`` writes)."""
    if isinstance(value, Mapping):
        return {key: thaw_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [thaw_json(item) for item in value]
    return value


def record_to_json(record: Any) -> dict[str, Any]:
    """A record as plain JSON data, keys in field order."""
    return _dump(record)


def record_from_json(cls: type[R], data: Any) -> R:
    """A record of type ``cls`` from plain JSON data (see the module doc for what is refused)."""
    return _load(cls, data, cls.__name__)


def _dump(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {}
        for spec in dataclasses.fields(value):
            item = getattr(value, spec.name)
            if item is None and spec.metadata.get("omit_none"):
                continue
            out[spec.name] = _dump(item)
        return out
    if isinstance(value, Mapping):
        return {key: _dump(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_dump(item) for item in value]
    return value


@cache
def _field_types(cls: type) -> tuple[tuple[dataclasses.Field, Any], ...]:
    hints = typing.get_type_hints(cls)
    return tuple((spec, hints[spec.name]) for spec in dataclasses.fields(cls))


def _load(kind: Any, data: Any, where: str) -> Any:
    if dataclasses.is_dataclass(kind):
        if not isinstance(data, Mapping):
            raise TypeError(f"{where}: expected an object, got {type(data).__name__}")
        values = {}
        known = set()
        for spec, hint in _field_types(kind):
            known.add(spec.name)
            if spec.name in data:
                values[spec.name] = _load(hint, data[spec.name], f"{where}.{spec.name}")
            elif spec.metadata.get("omit_none"):
                values[spec.name] = None
            elif spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
                raise KeyError(f"{where}.{spec.name}")
        unknown = sorted(set(data) - known)
        if unknown and not getattr(kind, "json_ignore_unknown", False):
            raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)}")
        return kind(**values)
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        arms = typing.get_args(kind)
        if data is None:
            if type(None) in arms:
                return None
            raise TypeError(f"{where}: null where a value is required")
        errors = []
        for arm in arms:
            if arm is type(None):
                continue
            try:
                return _load(arm, data, where)
            except (TypeError, ValueError, KeyError) as error:
                errors.append(error)
        raise TypeError(f"{where}: {data!r} matches none of {kind}") from errors[0] if errors else None
    if origin is tuple:
        args = typing.get_args(kind)
        if not isinstance(data, (list, tuple)):
            raise TypeError(f"{where}: expected a list, got {type(data).__name__}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_load(args[0], item, f"{where}[{i}]") for i, item in enumerate(data))
        if len(args) != len(data):
            raise TypeError(f"{where}: expected {len(args)} items, got {len(data)}")
        return tuple(_load(arg, item, f"{where}[{i}]") for i, (arg, item) in enumerate(zip(args, data)))
    if kind is JsonObject:
        if not isinstance(data, Mapping):
            raise TypeError(f"{where}: expected an object, got {type(data).__name__}")
        return JsonObject(data)
    if kind is Any:
        return freeze_json(data)
    if kind is float:
        # JSON has one number type: 7 and 7.0 both read as a float field (kept as written).
        if isinstance(data, (int, float)) and not isinstance(data, bool):
            return data
    elif kind is int:
        if isinstance(data, int) and not isinstance(data, bool):
            return data
    elif kind in (str, bool):
        if isinstance(data, kind):
            return data
    else:
        raise TypeError(f"{where}: unsupported field type {kind!r}")
    raise TypeError(f"{where}: expected {kind.__name__}, got {type(data).__name__} {data!r}")
