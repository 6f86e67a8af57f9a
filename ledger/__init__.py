"""The modelseal writer: LMDB store, Merkle node store, signed checkpoints, keys.

Every byte format comes from ``verifier``; this package defines none again.
"""

from .errors import (
    AuditError, EncryptedKeyError, InsecureKeyFileError, KeyFileError, LedgerError, StoreError,
    WrongPassphraseError,
)
from .keys import ActorKey, LogKey
from .ledger import Ledger
from .results import ConsistencyProof, InclusionProof, ModelRef, Snapshot, Tag
from .statements import sign_statement

__all__ = [
    "ActorKey", "AuditError", "ConsistencyProof", "EncryptedKeyError", "InclusionProof",
    "InsecureKeyFileError", "KeyFileError", "Ledger", "LedgerError", "LogKey", "ModelRef",
    "Snapshot", "StoreError", "Tag", "WrongPassphraseError", "sign_statement",
]
