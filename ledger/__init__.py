"""The modelseal writer: LMDB store, Merkle node store, signed checkpoints, keys.

Every byte format and rule comes from ``verifier`` (its public names only); this package
defines none again. The public API is what ``__all__`` lists; modules whose names start
with an underscore are internal.
"""

from .batch import Batch
from .errors import (
    AuditError, EncryptedKeyError, InsecureKeyFileError, KeyFileError, LedgerError,
    StoreBusyError, StoreError, StoreFullError, StoreLimitError, WrongPassphraseError,
)
from .keys import ActorKey, LogKey, WitnessSigner
from .ledger import Ledger
from .results import ConsistencyProof, InclusionProof, ModelRef, Receipt, Snapshot, Tag
from .statements import sign_statement

__all__ = [
    "ActorKey", "AuditError", "Batch", "ConsistencyProof", "EncryptedKeyError", "InclusionProof",
    "InsecureKeyFileError", "KeyFileError", "Ledger", "LedgerError", "LogKey", "ModelRef",
    "Receipt", "Snapshot", "StoreBusyError", "StoreError", "StoreFullError", "StoreLimitError",
    "Tag", "WitnessSigner", "WrongPassphraseError", "sign_statement",
]
