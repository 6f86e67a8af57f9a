"""The modelseal writer: LMDB store, Merkle node store, signed checkpoints, keys.

Every byte format comes from ``verifier``; this package defines none again.
"""

from .errors import AuditError, KeyFileError, LedgerError, StoreError
from .keys import ActorKey, LogKey
from .ledger import Ledger
from .results import ConsistencyProof, InclusionProof, ModelRef, Snapshot, Tag
from .statements import sign_statement

__all__ = [
    "ActorKey", "AuditError", "ConsistencyProof", "InclusionProof", "KeyFileError", "Ledger",
    "LedgerError", "LogKey", "ModelRef", "Snapshot", "StoreError", "Tag", "sign_statement",
]
