"""The name profile (specs/entry.md §3.4): what a model, group, tag or actor name may be.

Conservative on purpose: names are shown side by side in tables, so two names
that look alike must not both be valid. A name is NFC; every character is
printable ASCII or a letter of one of a few scripts listed by code point (no
combining marks, no bidi or invisible controls, no right-to-left scripts, no
Latin letters that look like others); letters of one script per name, except
Han with Kana or with Hangul. The ranges are explicit so the profile does not move with the
Unicode version of the Python that checks it.
"""

from __future__ import annotations

import re
import unicodedata

# (first, last, script) of the letters allowed beyond ASCII. ASCII letters are Latin.
# Latin: Latin-1 letters and Extended-A without its look-alikes (dotless i U+0131, the
# ligatures U+0132-0133, kra U+0138, middle-dot L U+013F-0140, U+0149, long s U+017F),
# the Romanian and Vietnamese letters of Extended-B, and the Vietnamese block.
_RANGES: tuple[tuple[int, int, str], ...] = (
    (0x00C0, 0x00D6, "Latin"), (0x00D8, 0x00F6, "Latin"), (0x00F8, 0x0130, "Latin"),
    (0x0134, 0x0137, "Latin"), (0x0139, 0x013E, "Latin"), (0x0141, 0x0148, "Latin"),
    (0x014A, 0x017E, "Latin"), (0x01A0, 0x01A1, "Latin"), (0x01AF, 0x01B0, "Latin"),
    (0x0218, 0x021B, "Latin"), (0x1EA0, 0x1EF9, "Latin"),
    (0x0386, 0x0386, "Greek"), (0x0388, 0x038A, "Greek"), (0x038C, 0x038C, "Greek"),
    (0x038E, 0x03A1, "Greek"), (0x03A3, 0x03CE, "Greek"),
    (0x0400, 0x0481, "Cyrillic"), (0x048A, 0x04FF, "Cyrillic"),
    (0x3041, 0x3096, "Kana"), (0x309D, 0x309F, "Kana"), (0x30A1, 0x30FA, "Kana"),
    (0x30FC, 0x30FF, "Kana"),
    (0x4E00, 0x9FFF, "Han"),
    (0xAC00, 0xD7A3, "Hangul"),
)
# Scripts that may appear together in one name; every other mix is refused.
# (Latin letters do not mix with Han either: U+4E00 looks like a dash between them.)
_ALLOWED_MIXES: tuple[frozenset[str], ...] = (
    frozenset({"Latin"}),
    frozenset({"Greek"}),
    frozenset({"Cyrillic"}),
    frozenset({"Han", "Kana"}),
    frozenset({"Han", "Hangul"}),
)
_ASCII_NAME = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?")
_ASCII_LETTER = re.compile(r"[A-Za-z]")
EVENT_TYPE_RE = re.compile(r"[a-z][a-z0-9_]{0,63}")
# What histories show for the log's own kinds of entry: never a plain event's type, nor a
# type a policy lists (specs/entry.md §3.5, §3.8).
RESERVED_EVENTS = frozenset({"registered", "tag_moved", "member_added", "member_removed"})
MAX_NAME = 200
MAX_NAME_BYTES = 400  # in UTF-8: what the store can key by


def _script(ch: str) -> str | None:
    code = ord(ch)
    for first, last, script in _RANGES:
        if first <= code <= last:
            return script
    return None


_CACHE_MAX = 8192
"""Names remembered as inside the profile, per ``spaces`` flag, before the memory is
cleared: actors, owners and model names repeat across a log, and a hit costs one lookup."""
_valid: dict[bool, set[str]] = {True: set(), False: set()}


def name_problem(name: str, *, spaces: bool = True) -> str | None:
    """Why ``name`` is outside the profile, or None if it is inside.

    ``spaces=False`` (key names) also refuses U+0020. A result depends on ``name`` and
    ``spaces`` alone, so names found inside are remembered (a bounded set) and answered
    at once next time; refusals are always worked out afresh.
    """
    known = _valid[bool(spaces)]
    exact = type(name) is str  # a subclass could hash or compare differently: never cached
    if exact and name in known:
        return None
    problem = _name_problem(name, spaces=spaces)
    if problem is None and exact:
        if len(known) >= _CACHE_MAX:
            known.clear()
        known.add(name)
    return problem


def _name_problem(name: str, *, spaces: bool = True) -> str | None:
    """``name_problem`` worked out from the profile, with no memory."""
    if not 1 <= len(name) <= MAX_NAME:
        return f"must be 1 to {MAX_NAME} characters"
    if "  " in name:
        return "must not contain two spaces in a row"
    if name.isascii():
        if not _ASCII_NAME.fullmatch(name):
            return "must be printable characters, with no space at either end"
        if not spaces and " " in name:
            return "must not contain spaces"
        return None
    if name[0] == " " or name[-1] == " " or (not spaces and " " in name):
        return "must not contain spaces" if not spaces else "must not start or end with a space"
    scripts: set[str] = {"Latin"} if _ASCII_LETTER.search(name) else set()
    for ch in name:
        if ch.isascii():
            if not " " <= ch <= "~":
                return f"must not contain control character U+{ord(ch):04X}"
            continue
        script = _script(ch)
        if script is None:
            return (f"contains U+{ord(ch):04X}, which is outside the name profile "
                    f"(printable ASCII and letters of Latin, Greek, Cyrillic, Han, Kana, Hangul)")
        scripts.add(script)
    if not any(scripts <= mix for mix in _ALLOWED_MIXES):
        return f"mixes letters of {' and '.join(sorted(scripts))}, which can look alike"
    if not unicodedata.is_normalized("NFC", name):
        return "must be in Unicode normal form C (NFC)"
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        return f"must be at most {MAX_NAME_BYTES} bytes in UTF-8"
    return None


def check_name(name: str, what: str, *, spaces: bool = True) -> None:
    """Raise ValueError unless ``name`` is inside the name profile."""
    if type(name) is str and name in _valid[bool(spaces)]:
        return  # found inside before (name_problem's memory)
    problem = name_problem(name, spaces=spaces)
    if problem is not None:
        raise ValueError(f"{what} {name!r} {problem}")


_event_types: set[str] = set()


def check_event_type(event_type: str) -> None:
    """Raise ValueError unless ``event_type`` is a lower-case identifier (a-z, 0-9, _).
    Types found valid are remembered (a bounded set), like names."""
    exact = type(event_type) is str
    if exact and event_type in _event_types:
        return
    if not EVENT_TYPE_RE.fullmatch(event_type):
        raise ValueError(f"event type {event_type!r} must be a lower-case identifier: a letter, "
                         f"then up to 63 of a-z, 0-9 and _")
    if exact:
        if len(_event_types) >= _CACHE_MAX:
            _event_types.clear()
        _event_types.add(event_type)


_INVISIBLE = {"Cc", "Cf", "Co", "Cs", "Zl", "Zp"}


def visible(text: str) -> str:
    """``text`` for display: control, format (bidi, zero-width), private-use and surrogate
    characters shown as ``\\uXXXX`` so they cannot reorder or hide what is around them.
    Newline and tab are kept."""
    if text.isascii() and text.isprintable():
        return text
    return "".join(
        ch if ch in "\n\t" or unicodedata.category(ch) not in _INVISIBLE
        else f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08x}"
        for ch in text)

