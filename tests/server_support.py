"""A served world for the log server's tests: a store with an admin, a writer, a reader
and a registered model ``m0``, served in process by Starlette's TestClient, and its
fixture ``w``. Test-only."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from ledger import ActorKey, Ledger, LogKey, sign_statement
from ledger.httpsig import keyid_of, sign_request
from ledger.server import Limits, build_app

ORIGIN = "example.org/served"
BASE = "http://testserver"


class World:
    """A store with an admin, a writer, a reader and a registered model ``m0``."""

    def __init__(self, path: Path, limits: Limits | None = None, reader_name: str = "examiner",
                 client: bool = True) -> None:
        self.log_key = LogKey.generate()
        self.admin = ActorKey.generate("risk-admin")
        self.writer = ActorKey.generate("ml-pipeline")
        self.reader = ActorKey.generate(reader_name)
        self.path = path
        self.led = Ledger.create(path, origin=ORIGIN, log_key=self.log_key, admin=self.admin)
        self.led.signer = self.admin
        self.led.grant(self.writer.vkey, role="writer")
        self.led.grant(self.reader.vkey, role="reader")
        self.led.register(name="m0", owner="risk", model_type="ml_model", tier="high",
                          purpose="scores")
        self.limits = limits
        self.client: TestClient | None = None
        if client:
            self.client = TestClient(build_app(self.led, limits), base_url=BASE,
                                     raise_server_exceptions=False)

    def statement(self, actor: ActorKey | None = None, model: str = "m0", **over: Any) -> bytes:
        body: dict[str, Any] = dict(model=model, event_type="evaluated", payload={"auc": 0.9})
        body.update(over)
        return sign_statement(actor or self.writer, ORIGIN, "event", log_id=self.led.log_id,
                              claimed_at=datetime.now(timezone.utc), **body)

    def post(self, data: bytes, ctype: str = "application/json", **headers: str
             ) -> httpx.Response:
        assert self.client is not None
        return self.client.post("/add", content=data,
                                headers={"Content-Type": ctype, **headers})

    def sign(self, path: str, key: ActorKey | None = None, base: str = BASE,
             now: datetime | None = None, method: str = "GET", body: bytes | None = None,
             **extra: Any) -> dict[str, str]:
        key = key or self.reader
        return sign_request(key, keyid_of(key.key), method, base + path, {}, body,
                            now or datetime.now(timezone.utc), **extra)

    def signed_get(self, path: str, key: ActorKey | None = None,
                   now: datetime | None = None, **extra: Any) -> httpx.Response:
        assert self.client is not None
        return self.client.get(path, headers=self.sign(path, key, now=now, **extra))

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
        self.led.close()


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    """Fixture: a World under ``tmp_path``, closed afterwards (a test module binds it to
    the name ``w``)."""
    world = World(tmp_path / "store")
    yield world
    world.close()
