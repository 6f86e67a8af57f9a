"""cli/infile.py: what the commands read whole is read only up to a bound; and a payload's
JSON may not give one member twice."""

from __future__ import annotations

import io
import os
import threading
import time
import json
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from cli.infile import read_at_most

from .cli_support import Store, ok, refused, registered_store


class _Trickle(io.RawIOBase):
    """A stream that gives at most ``step`` bytes a read, as a pipe may."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data, self._step = data, step

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        n = self._step if size < 0 else min(size, self._step)
        chunk, self._data = self._data[:n], self._data[n:]
        return chunk


@given(data=st.binary(max_size=300), limit=st.integers(0, 200), step=st.integers(1, 50))
def test_read_at_most_reads_up_to_one_byte_past_the_limit(data: bytes, limit: int,
                                                          step: int) -> None:
    stream = _Trickle(data, step)
    got = read_at_most(stream, limit)  # type: ignore[arg-type]
    assert got == data[:limit + 1]
    assert (len(got) > limit) == (len(data) > limit)


@settings(max_examples=25, deadline=None)
@given(data=st.binary(max_size=300), limit=st.integers(0, 200))
def test_read_at_most_from_a_file(data: bytes, limit: int) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "f"
        path.write_bytes(data)
        assert read_at_most(path, limit) == data[:limit + 1]


def _store(tmp_path: Path) -> Store:
    return registered_store(tmp_path)


def test_a_payload_member_given_twice_is_refused(tmp_path: Path) -> None:
    store = _store(tmp_path)
    refused(store.run("record", "fraud_scoring", "--event", "validated", "--payload",
                      '{"result": "pass", "result": "fail"}'), 2, "'result' is given twice")
    refused(store.run("record", "fraud_scoring", "--event", "validated", "--payload",
                      '{"a": {"b": 1, "b": 2}}'), 2, "'b' is given twice")
    # the same names in different objects are fine, and nothing was written before
    ok(store.run("record", "fraud_scoring", "--event", "validated", "--payload",
                 '{"a": {"b": 1}, "c": {"b": 2}}'))
    hist = ok(store.run("history", "fraud_scoring", "--json")).json()
    assert [e["event_type"] for e in hist] == ["registered", "validated"], hist


def test_a_payload_over_the_read_bound_is_refused_before_it_is_read_whole(
        tmp_path: Path) -> None:
    store = _store(tmp_path)
    big = tmp_path / "metrics.json"
    big.write_text(json.dumps({"rows": "x" * (1 << 21)}))
    refused(store.run("record", "fraud_scoring", "--event", "validated", "--payload-file",
                      big), 2, "larger than 1,048,576 bytes", hint="at most 65,535 bytes")


def test_a_fifo_with_no_writer_reads_as_empty_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "nobody.fifo"
    os.mkfifo(fifo)
    started = time.monotonic()
    assert read_at_most(fifo, 100) == b""
    assert time.monotonic() - started < 5


def test_a_pipe_whose_writer_is_slow_is_read_to_its_end() -> None:
    r, w = os.pipe()  # what `--payload-file <(cmd)` names as /dev/fd/N

    def write() -> None:
        time.sleep(0.3)
        os.write(w, b'{"auc": ')
        time.sleep(0.2)
        os.write(w, b"0.9}")
        os.close(w)

    t = threading.Thread(target=write)
    t.start()
    try:
        assert read_at_most(Path(f"/dev/fd/{r}"), 100) == b'{"auc": 0.9}'
    finally:
        t.join(10)
        os.close(r)
