"""The cost of signing and verifying one request (ledger.httpsig), and of the same work
through http-message-signatures 3 (the library decision 16 measured and did not adopt).

Prints one JSON object: the median microseconds of ``sign_request`` and of
``verify_request`` (a fresh nonce each time, so the replay cache is exercised), for a
GET without a body and a POST with 1 KiB; the library's signer (prepare, then apply a
signature made by the same ActorKey) and verifier on the same requests, with the same
components and parameters; and a bare Ed25519 sign and verify (libsodium) for scale.

    python bench/bench_httpsig.py [--n 2000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ledger import ActorKey
from ledger import httpsig as hs
from ledger._sodium import sodium_verify

NOW = 1_750_000_000
URL = "https://log.example.com/v1/models/fraud-scorer/history?limit=100"
KEY = ActorKey.generate("auditor")
KEYID = hs.keyid_of(KEY.key)


def median_us(n: int, fn: Callable[[int], object]) -> float:
    times = []
    for i in range(n):
        t = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - t)
    return round(statistics.median(times) * 1e6, 1)


def ours(n: int, method: str, body: bytes) -> dict[str, float]:
    signed = [hs.sign_request(KEY, KEYID, method, URL, {}, body, NOW, f"{i:032x}")
              for i in range(n)]
    cache = hs.NonceCache()

    def verify(i: int) -> object:
        return hs.verify_request(method, URL, signed[i], body, now=NOW,
                                 resolve=lambda a: (KEY.public_bytes, "auditor"),
                                 may_read=lambda r: True, nonces=cache)

    return {"sign_us": median_us(n, lambda i: hs.sign_request(KEY, KEYID, method, URL, {},
                                                                body, NOW)),
            "verify_us": median_us(n, verify)}


def library(n: int, method: str, body: bytes) -> dict[str, Any]:
    try:
        import http_message_signatures as hms
    except ImportError:
        return {"skipped": "http-message-signatures is not installed"}

    class Msg:
        def __init__(self) -> None:
            self.method, self.url, self.headers = method, URL, {}

    class Keys(hms.HTTPSignatureKeyResolver):
        def resolve_public_key(self, key_id: str) -> Ed25519PublicKey:
            return Ed25519PublicKey.from_public_bytes(KEY.public_bytes)

    signer = hms.HTTPMessageSigner(signature_algorithm=hms.algorithms.ED25519)
    verifier = hms.HTTPMessageVerifier(signature_algorithm=hms.algorithms.ED25519,
                                       key_resolver=Keys())
    verifier.max_clock_skew = timedelta(days=36500)  # it reads the wall clock itself
    created = datetime.fromtimestamp(NOW, timezone.utc)

    def sign(i: int) -> Msg:
        msg = Msg()
        prepared = signer.prepare(msg, key_id=KEYID, created=created,
                                  expires=created + timedelta(seconds=300), nonce=f"{i:032x}",
                                  label="sig1", tag="modelseal",
                                  covered_component_ids=hs.COMPONENTS, body=body or None)
        signer.apply(msg, prepared, KEY.sign(prepared.signature_base))
        return msg

    signed = [sign(i) for i in range(n)]
    return {"sign_us": median_us(n, sign),
            "verify_us": median_us(n, lambda i: verifier.verify(
                signed[i], expect_tag="modelseal", max_age=None, body=body,
                require_components=hs.COMPONENTS))}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    n = parser.parse_args().n
    message = b"x" * 300
    signature = KEY.sign(message)
    out = {
        "n": n,
        "ed25519_libsodium": {"sign_us": median_us(n, lambda i: KEY.sign(message)),
                              "verify_us": median_us(n, lambda i: sodium_verify(
                                  KEY.public_bytes, signature, message))},
        "ledger.httpsig": {"GET": ours(n, "GET", b""), "POST 1 KiB": ours(n, "POST", b"y" * 1024)},
        "http-message-signatures": {"GET": library(n, "GET", b""),
                                    "POST 1 KiB": library(n, "POST", b"y" * 1024)},
    }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
