"""``Client``: the ledger's API over HTTP (specs/api.md), verifying what the server shows."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from datetime import datetime
from typing import IO
from urllib.parse import quote, urlsplit

import httpx

from verifier import (
    Checkpoint,
    ModelState,
    ParsedEntry,
    Register,
    VerifierError,
    VerifierKey,
    model_hash,
    parse_entry,
    parse_tlog_proof,
    statement_model,
    to_ns,
)

from ..keys import ActorKey
from ..results import ConsistencyProof, InclusionProof, Snapshot, Tag, tag_moves, tags_of
from . import _verify, _wire
from ._auth import signer
from ._errors import NotFoundError, ServerMisbehaviourError, ServerUnavailableError
from ._http import Answer, Http, Sign
from ._state import FileState, MemoryState
from ._writes import Writes, members_of

MAX_ENTRY_ANSWER = 1 << 17
MAX_LIST_ANSWER = 1 << 30
_HEX = frozenset("0123456789abcdef")


class Client(Writes):
    """The log of one modelseal server, used as a ``Ledger`` is: the same verbs, reads and
    errors, over HTTP. Every receipt, checkpoint and proof the server shows is verified
    against the pinned ``log_key`` and the kept checkpoint (specs/api.md §2, §4); a failed
    check raises ServerMisbehaviourError (ForkError, RollbackError) and keeps the old state.

    ``url``: the server's base URL (http or https). ``log_key``: the log's verifier key
    (``origin+hex8+base64``), pinned, never taken from the server. ``actor``: the key that
    signs statements and protected reads (None: public reads only). ``state_file``: where
    the kept checkpoint lives, shared safely by processes (None: in memory). ``timeout``:
    seconds one call may take, whole (connecting, TLS, the answer's headers and body) and
    retries included; ``retries``: resends after a transient
    failure. One keep-alive pool; safe to share between threads; a context manager.
    """

    def __init__(self, url: str, *, log_key: str, actor: ActorKey | None = None,
                 state_file: str | os.PathLike[str] | None = None, timeout: float = 30,
                 retries: int = 5, transport: httpx.BaseTransport | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"the server URL must be http(s)://host[:port][/base], not "
                             f"{url!r}")
        if parts.query or parts.fragment:
            raise ValueError("the server URL takes no query or fragment")
        try:
            parts.port  # noqa: B018 - urlsplit checks the port only when asked
        except ValueError:
            raise ValueError(f"the server URL's port is not a number in 0-65535: {url!r}"
                             ) from None
        try:
            self._key = VerifierKey.parse(log_key)
        except (VerifierError, TypeError) as exc:
            raise ValueError(f"log_key is not a verifier key: {exc}") from None
        if actor is not None and not isinstance(actor, ActorKey):
            raise TypeError(f"actor is an ActorKey, not {type(actor).__name__}")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) \
                or not 0 < timeout <= 86_400:
            raise ValueError("timeout is a number of seconds in (0, 86400]")
        if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 100:
            raise ValueError("retries is an int in 0..100")
        self.url = url.rstrip("/")
        self.log_vkey = log_key
        self.actor = actor
        self._clock = clock
        self._state = MemoryState() if state_file is None else FileState(state_file, self._key)
        self._http = Http(self.url, timeout=float(timeout), retries=retries,
                          transport=transport)
        self._sign: Sign | None = None
        self._info: _wire.LogInfo | None = None
        self._lock = threading.Lock()
        self._model_hashes: dict[str, str] = {}

    # -- life --------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connections. The kept checkpoint stays (in its file, if any)."""
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the log -----------------------------------------------------------------------

    def log_info(self) -> _wire.LogInfo:
        """``GET /log`` once: the log's origin and id. Its key must be the pinned one and
        its origin the key's name, else ServerMisbehaviourError."""
        with self._lock:
            if self._info is None:
                info = _wire.log_info(self._get("/log").body)
                self._check_identity(info)
                self._info = info
            return self._info

    def _check_identity(self, info: _wire.LogInfo) -> None:
        try:
            theirs = VerifierKey.parse(info.log_key)
        except VerifierError:
            theirs = None
        if theirs is None or (theirs.name, theirs.public_key) != (self._key.name,
                                                                   self._key.public_key):
            raise ServerMisbehaviourError(
                f"the server's log key {_wire_text(info.log_key)} is not the pinned one "
                f"{self.log_vkey}: another log, or the wrong server")
        if info.origin != self._key.name:
            raise ServerMisbehaviourError(f"the server's origin {info.origin!r} is not the "
                                          f"pinned key's {self._key.name!r}")

    @property
    def origin(self) -> str:
        """The log's origin (the pinned key's name)."""
        return self._key.name

    @property
    def log_id(self) -> str:
        """The log's id (its genesis snapshot hash), as the server gave it."""
        return self.log_info().log_id

    @property
    def size(self) -> int:
        """The number of entries now (``GET /log``, asked afresh)."""
        info = _wire.log_info(self._get("/log").body)
        self._check_identity(info)
        if info.log_id != self.log_id:
            raise ServerMisbehaviourError("the server's log id changed")
        return info.size

    def kept_checkpoint(self) -> bytes | None:
        """The note of the checkpoint kept (the latest verified), or None."""
        kept = self._state.get()
        return None if kept is None else kept.note

    def checkpoint(self) -> bytes:
        """The latest checkpoint note, byte for byte, verified (pinned key, consistent with
        the kept one) and then kept."""
        self.log_info()
        note = self._get("/checkpoint").body
        self._observe(_verify.checkpoint(note, self._key, self.origin, "/checkpoint"))
        return note

    def _observe(self, cp: Checkpoint) -> None:
        """Check ``cp`` against the kept checkpoint and keep it if it is newer."""
        self._state.update(lambda kept: _verify.advance(kept, cp, self._key, self._consistency),
                           self._http.timeout)

    def _consistency(self, old: int, new: int) -> bytes:
        return self._get("/proof/consistency", {"old": str(old), "new": str(new)}).body

    # -- HTTP ---------------------------------------------------------------------------

    def _get(self, path: str, params: dict[str, str] | None = None, *, signed: bool = False,
             max_bytes: int = 1 << 20) -> Answer:
        return self._http.call("GET", path, params=params, max_bytes=max_bytes,
                               sign=self._signer() if signed else None)

    def _signer(self) -> Sign | None:
        if self.actor is None:
            return None  # the server answers 401: UnauthenticatedError
        with self._lock:
            if self._sign is None:
                self._sign = signer(self.actor, self._clock)
            return self._sign

    # -- protected reads -----------------------------------------------------------------

    def entry(self, ref: int | str) -> bytes:
        """The exact bytes of an entry, by index or snapshot hash; NotFoundError (a
        KeyError) if there is none. Checked to be the entry asked for."""
        if isinstance(ref, bool) or not isinstance(ref, (int, str)):
            raise TypeError("give an entry index (int) or a snapshot hash (hex str)")
        if isinstance(ref, int) and ref < 0:
            raise NotFoundError(f"no entry {ref}", status=404, name="NotFound")
        text = str(ref).lower()
        data = self._get(f"/entry/{quote(text, safe='')}", signed=True,
                         max_bytes=MAX_ENTRY_ANSWER).body
        p = _parse(data, f"entry {text}")
        if (p.entry.index != ref) if isinstance(ref, int) else \
                not p.snapshot_hash.startswith(text):
            raise ServerMisbehaviourError(f"asked for entry {text}, the server sent entry "
                                          f"{p.entry.index} {p.snapshot_hash[:16]}")
        return data

    def history(self, name: str) -> list[Snapshot]:
        """Every entry of a model's chain, oldest first ([] for an unknown model). Checked:
        each entry parses, belongs to the model and links to the one before."""
        if not isinstance(name, str):
            raise TypeError(f"a model name is a str, not {type(name).__name__}")
        try:
            answer = self._get(f"/history/{quote(name, safe='')}", signed=True,
                               max_bytes=MAX_LIST_ANSWER)
        except NotFoundError:
            return []
        doc, raw = _wire.entry_list(answer.body, "entries", "history")
        if doc.get("model") != name:
            raise ServerMisbehaviourError(f"asked for the history of {name!r}, the server "
                                          f"sent another model's")
        parsed = [_parse(data, f"history of {name!r}") for data in raw]
        if not parsed:
            return []
        _check_chain(name, parsed)
        first = parsed[0]
        assert isinstance(first.statement, Register)
        mh = model_hash(name, first.statement.owner, first.entry.recorded_at)
        self._model_hashes[name] = mh
        return [Snapshot.from_entry(p, mh) for p in parsed]

    def inventory_at(self, when: datetime | None = None) -> dict[str, ModelState]:
        """Every model as it stood at ``when`` (timezone-aware; default: now), as the
        server computes it (a bundle is what proves an inventory)."""
        params = None if when is None else {"at": _wire.rfc3339(to_ns(when))}
        answer = _wire.inventory(self._get("/inventory", params, signed=True,
                                           max_bytes=MAX_LIST_ANSWER).body)
        for name, state in answer.models.items():
            self._model_hashes.setdefault(name, state.model_hash)
        return answer.models

    def tags(self, name: str) -> dict[str, Tag]:
        """The model's tags now, by tag name."""
        return tags_of(name, self.history(name))

    def tag_history(self, name: str, tag: str) -> list[Tag]:
        """Every move of ``tag``, oldest first."""
        return tag_moves(name, tag, self.history(name))

    def latest(self, name: str, tag: str | None = None) -> Snapshot | None:
        """The model's newest snapshot, or the one ``tag`` points at; None if none."""
        snaps = self.history(name)
        if tag is None:
            found = [s for s in snaps if s.op in ("register", "event")]
            return found[-1] if found else None
        target = self.tags(name).get(tag) if snaps else None
        return next((s for s in snaps if target and s.snapshot_hash == target.target), None)

    def members(self, group: str, at: datetime | None = None) -> dict[str, str | None]:
        """The members of ``group`` (and their roles) now or at ``at``."""
        if at is not None:
            state = self.inventory_at(at).get(group)
            return {} if state is None else dict(state.members)
        return members_of(self.history(group))

    def groups(self, member: str, at: datetime | None = None) -> list[str]:
        """The groups that hold ``member`` now or at ``at``."""
        return sorted(n for n, s in self.inventory_at(at).items() if member in s.members)

    # -- proofs and bundles --------------------------------------------------------------

    def prove_inclusion(self, ref: Snapshot | int | str, size: int | None = None
                        ) -> InclusionProof:
        """The inclusion proof of an entry (a Snapshot, its hash, or an index: those two
        are looked up with ``entry``) in the tree of ``size`` (default: the latest, as
        ``Ledger.prove_inclusion``); verified, and its checkpoint checked against the kept
        one."""
        if isinstance(ref, Snapshot):
            snapshot = ref.snapshot_hash
        elif isinstance(ref, str) and len(ref) == 64 and set(ref) <= _HEX:
            snapshot = ref
        else:
            snapshot = parse_entry(self.entry(ref)).snapshot_hash
        if size is None:
            size = self.size
        elif isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError("size must be a positive int")
        params = {"snapshot": snapshot, "size": str(size)}
        body = self._get("/proof/inclusion", params, signed=True).body
        index = _proof_index(body)
        cp = _verify.inclusion(body, bytes.fromhex(snapshot), index, self._key, self.origin,
                               "the inclusion proof", size)
        self._observe(cp)
        return InclusionProof(index, cp.size, parse_tlog_proof(body).hashes, cp.note)

    def prove_consistency(self, old_size: int, new_size: int | None = None
                          ) -> ConsistencyProof:
        """The consistency proof from ``old_size`` to ``new_size`` (default: the latest);
        its checkpoint verified and checked against the kept one."""
        if isinstance(old_size, bool) or not isinstance(old_size, int) or old_size < 0:
            raise ValueError("old size must be an int >= 0")
        params = {"old": str(old_size)}
        if new_size is not None:
            params["new"] = str(new_size)
        body = self._get("/proof/consistency", params).body
        hashes, cp = _verify.consistency_body(body, old_size, new_size, self._key,
                                              self.origin)
        self._observe(cp)
        return ConsistencyProof(old_size, cp.size, hashes, cp.note)

    def export_bundle(self, at: datetime | None = None, size: int | None = None,
                      trusted_size: int | None = None, *, out: IO[bytes]) -> int:
        """Stream the proof bundle (specs/bundle.md) the server makes with these arguments
        (``Ledger.export_bundle``'s) into the binary file ``out``, never whole in memory;
        returns the bytes written. ``timeout`` bounds each attempt until the answer's
        headers are in; then each ``timeout`` must bring 64 KiB (or the rest), so a
        bundle of any size comes at a fair pace and a trickle ends (Http.paced). A transfer cut
        short is retried from the start if ``out`` can seek, else raises
        ServerUnavailableError. The bundle is not verified here: that is
        ``modelseal-verify``'s work."""
        params: dict[str, str] = {}
        if at is not None:
            params["at"] = _wire.rfc3339(to_ns(at))
        for key, value in (("size", size), ("trusted", trusted_size)):
            if value is not None:
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise ValueError(f"{key} must be a positive int")
                params[key] = str(value)
        start = out.tell() if out.seekable() else None
        written = [0]

        def read(resp: httpx.Response) -> int:
            framed = ("content-length" in resp.headers
                      or "chunked" in resp.headers.get("transfer-encoding", "").lower())
            if not framed:  # its end would be the connection's: a cut would look whole
                raise ServerMisbehaviourError("the bundle's answer has neither a length nor "
                                              "chunked framing, so a cut could not be told "
                                              "from its end")
            if written[0]:
                if start is None:
                    raise ServerUnavailableError("the bundle's transfer broke off and the "
                                                 "output cannot be rewound; run it again")
                out.seek(start)
                out.truncate()
                written[0] = 0
            for chunk in self._http.paced(resp):
                out.write(chunk)
                written[0] += len(chunk)
            return written[0]

        return self._http.stream("GET", "/bundle", read, params=params, sign=self._signer())


def _wire_text(text: str) -> str:
    return repr(text[:120])


def _parse(data: bytes, what: str) -> ParsedEntry:
    try:
        return parse_entry(data)
    except VerifierError as exc:
        raise ServerMisbehaviourError(f"the server's {what} does not parse: {exc}") from None


def _check_chain(name: str, parsed: list[ParsedEntry]) -> None:
    """A model's chain: a register first, every entry of the model, linked by ``prev``."""
    if not isinstance(parsed[0].statement, Register) or parsed[0].entry.prev is not None:
        raise ServerMisbehaviourError(f"the history of {name!r} does not start with its "
                                      f"registration")
    for before, p in zip(parsed, parsed[1:], strict=False):
        if (statement_model(p.statement) != name or p.entry.prev != before.snapshot_hash
                or p.entry.index <= before.entry.index):
            raise ServerMisbehaviourError(f"the history of {name!r} is not one chain: entry "
                                          f"{p.entry.index} does not follow entry "
                                          f"{before.entry.index}")


def _proof_index(body: bytes) -> int:
    try:
        return parse_tlog_proof(body).index
    except VerifierError as exc:
        raise ServerMisbehaviourError(f"the inclusion proof does not parse: {exc}") from None
