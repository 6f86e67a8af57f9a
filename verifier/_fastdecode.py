"""A faster way to decode into msgspec Structs whose string fields carry regex patterns.

msgspec calls a pattern's ``search`` for every such field of every value, although most
values repeat (actors, origins, owners, the log id). ``FastDecoder`` decodes into twins
of the Structs with the patterns left out (every other type and constraint kept), checks
each pattern itself, remembering strings that matched (a bounded set per pattern), and
builds the real Struct from the fields. It only ever accepts: when it cannot tell, or the
input is refused, it answers None and the caller decodes with the schema's own decoder
(so refusals and their messages stay exactly those of the schema).
"""

from __future__ import annotations

import re
import types
from collections.abc import Sequence
from typing import Annotated, Any, Generic, TypeVar, Union, get_args, get_origin

import msgspec

__all__ = ["FastDecoder"]

T = TypeVar("T")
_MEMORY = 4096
"""Strings remembered per pattern before that memory is cleared."""
_NONE = type(None)


class _Pattern:
    """One pattern and the strings already found to match it."""

    def __init__(self, pattern: str) -> None:
        self.search = re.compile(pattern).search
        self.known: set[str] = set()

    def ok(self, value: object) -> bool:
        """Whether ``value`` (a str from the twin decoder) matches, as msgspec checks it."""
        if type(value) is not str:
            return False
        if value in self.known:
            return True
        if self.search(value) is None:
            return False
        if len(self.known) >= _MEMORY:
            self.known.clear()
        self.known.add(value)
        return True


def _plain_str(tp: Any) -> tuple[Any, str | None]:
    """``Annotated[str, Meta(pattern=..., min/max_length)]`` without its pattern, and the
    pattern; anything else unchanged with None."""
    if get_origin(tp) is not Annotated:
        return tp, None
    base, *metas = get_args(tp)
    if base is not str or len(metas) != 1 or not isinstance(metas[0], msgspec.Meta):
        return tp, None
    meta = metas[0]
    others = [a for a in ("ge", "gt", "le", "lt", "multiple_of", "tz", "title", "description",
                          "examples", "extra", "extra_json_schema")
              if getattr(meta, a) is not None]
    if meta.pattern is None or others:
        return tp, None
    if meta.min_length is None and meta.max_length is None:
        return str, meta.pattern
    plain = msgspec.Meta(min_length=meta.min_length, max_length=meta.max_length)
    return Annotated[str, plain], meta.pattern


def _without_pattern(tp: Any) -> tuple[Any, str | None, bool]:
    """(the field type without its pattern, the pattern, whether None is also allowed)
    for ``S`` or ``S | None`` where ``S`` is a patterned str; else (tp, None, False)."""
    origin = get_origin(tp)
    if origin is Union or origin is types.UnionType:
        args = get_args(tp)
        if len(args) == 2 and _NONE in args:
            inner = args[0] if args[1] is _NONE else args[1]
            plain, pattern = _plain_str(inner)
            if pattern is not None:
                return plain | None, pattern, True
        return tp, None, False
    plain, pattern = _plain_str(tp)
    return plain, pattern, False


class _Twin:
    """A Struct class's twin (patterns left out) and how to check and convert back."""

    def __init__(self, cls: type[msgspec.Struct], patterns: dict[str, _Pattern]) -> None:
        cfg = cls.__struct_config__
        fields: list[Any] = []
        self.checks: list[tuple[str, _Pattern, bool]] = []
        for f in msgspec.structs.fields(cls):
            if f.encode_name != f.name or f.default_factory is not msgspec.NODEFAULT:
                raise TypeError(f"{cls.__name__}.{f.name}: not supported by FastDecoder")
            ftype, pattern, optional = _without_pattern(f.type)
            if pattern is not None:
                self.checks.append((f.name, patterns.setdefault(pattern, _Pattern(pattern)),
                                    optional))
            fields.append((f.name, ftype) if f.default is msgspec.NODEFAULT
                          else (f.name, ftype, f.default))
        self.cls = cls
        self.twin = msgspec.defstruct(
            f"_Twin{cls.__name__}", fields, tag_field=cfg.tag_field, tag=cfg.tag,
            forbid_unknown_fields=cfg.forbid_unknown_fields, kw_only=True,
            omit_defaults=cfg.omit_defaults, array_like=cfg.array_like, frozen=True)

    def convert(self, value: Any) -> Any:
        """The real Struct with ``value``'s fields, or None if a pattern does not match."""
        fields = msgspec.structs.asdict(value)
        for name, pattern, optional in self.checks:
            item = fields[name]
            if item in pattern.known or (optional and item is None) or pattern.ok(item):
                continue
            return None
        return self.cls(**fields)


class FastDecoder(Generic[T]):
    """Decodes JSON into one Struct class or a tagged union of them, as
    ``msgspec.json.Decoder(schema)`` would, faster; ``decode`` answers None when the
    schema's decoder must be asked (always so for input it refuses)."""

    def __init__(self, classes: Sequence[type[msgspec.Struct]]) -> None:
        """``classes``: the Struct classes of the schema (one, or a tagged union's members);
        their fields are plain (no rename, no default factory)."""
        patterns: dict[str, _Pattern] = {}
        twins = [_Twin(cls, patterns) for cls in classes]
        self._by_twin: dict[type, _Twin] = {t.twin: t for t in twins}
        target: Any = twins[0].twin if len(twins) == 1 else Union[tuple(t.twin for t in twins)]
        self._decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(target)

    def decode(self, data: bytes) -> T | None:
        """The value ``data`` decodes to under the schema, or None (ask the schema)."""
        try:
            value = self._decoder.decode(data)
        except (msgspec.DecodeError, RecursionError, UnicodeError):
            return None
        twin = self._by_twin.get(type(value))
        if twin is None:  # pragma: no cover - the decoder yields only twins
            return None
        out: T | None = twin.convert(value)
        return out
