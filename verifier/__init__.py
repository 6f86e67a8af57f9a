"""modelseal's trust core: verify a model inventory log offline.

Pure functions over bytes. Depends only on the standard library,
``cryptography`` and ``msgspec``.
"""

from .bundle import VerifiedInventory, encode_bundle, verify_bundle
from .canonical import canonical_json, check_json_value
from .checkpoint import Checkpoint, checkpoint_text
from .entry import (
    MAX_ENTRY_SIZE,
    Entry,
    Event,
    Genesis,
    Grant,
    MemberAdd,
    MemberRemove,
    ParsedEntry,
    Register,
    Revoke,
    Statement,
    TagMove,
    entry_bytes,
    model_hash,
    SignedStatement,
    parse_entry,
    parse_signed_statement,
    parse_statement,
    signed_statement_bytes,
    snapshot_hash,
    statement_bytes,
)
from .errors import (
    AuthorizationError,
    ChainError,
    ConsistencyError,
    MalformedInputError,
    RootMismatchError,
    RuleError,
    SignatureError,
    VerificationError,
    VerifierError,
)
from .keys import VerifierKey, key_id
from .merkle import EMPTY_ROOT, leaf_hash, node_hash, root, root_from_leaf_hashes
from .note import assemble_note, parse_note, signature_line, verify_note
from .proof_files import (
    format_add_checkpoint,
    format_tlog_proof,
    parse_add_checkpoint,
    parse_tlog_proof,
    verify_add_checkpoint,
    verify_tlog_proof,
)
from .proofs import (
    consistency_proof_length,
    inclusion_proof_length,
    root_from_consistency_proof,
    root_from_inclusion_proof,
    verify_consistency,
    verify_inclusion,
)
from .replay import Inventory, KeyRecord, ModelState, TimelineItem, replay
from .timeutil import from_ns, to_ns

__version__ = "0.1.0"

__all__ = [
    "EMPTY_ROOT", "MAX_ENTRY_SIZE", "AuthorizationError", "ChainError", "Checkpoint",
    "ConsistencyError", "Entry", "Event", "Genesis", "Grant", "Inventory", "KeyRecord",
    "MalformedInputError", "MemberAdd", "MemberRemove", "ModelState", "ParsedEntry", "Register",
    "Revoke", "RootMismatchError", "RuleError", "SignatureError", "Statement", "TagMove",
    "TimelineItem", "VerificationError", "VerifiedInventory", "VerifierError", "VerifierKey",
    "assemble_note", "canonical_json", "check_json_value", "checkpoint_text",
    "consistency_proof_length", "encode_bundle", "entry_bytes", "format_add_checkpoint",
    "format_tlog_proof", "from_ns", "inclusion_proof_length", "key_id", "leaf_hash",
    "model_hash", "node_hash", "parse_add_checkpoint", "parse_entry", "parse_note",
    "parse_signed_statement", "parse_statement", "SignedStatement", "signed_statement_bytes", "parse_tlog_proof", "replay", "root", "root_from_consistency_proof",
    "root_from_inclusion_proof", "root_from_leaf_hashes", "signature_line", "snapshot_hash",
    "statement_bytes", "to_ns", "verify_add_checkpoint", "verify_bundle", "verify_consistency",
    "verify_inclusion", "verify_note", "verify_tlog_proof",
]
