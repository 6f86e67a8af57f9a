"""A witness key's name is bounded by what readers accept of its verifier key
(verifier/keys.py MAX_VKEY_LEN): keygen refuses a longer one, never writes a key no one
could pin."""

from __future__ import annotations

import pytest

from ledger.keys import WitnessSigner
from verifier import WitnessKey
from verifier.keys import MAX_VKEY_LEN


def test_the_longest_name_readers_accept_is_the_longest_keygen_makes() -> None:
    base = "w.example/"
    longest = base + "x" * (MAX_VKEY_LEN - len(WitnessSigner.generate(base).vkey))
    key = WitnessSigner.generate(longest)
    assert len(key.vkey) == MAX_VKEY_LEN
    assert WitnessKey.parse(key.vkey) == key.witness_key
    with pytest.raises(ValueError, match="readers accept"):
        WitnessSigner.generate(longest + "x")
