"""The verifier's public names, loaded on first use through ``verifier`` (PEP 562). Internal:
import them from ``verifier``."""

from __future__ import annotations

from .bundle import VerifiedInventory, bundle_chunks, encode_bundle, verify_bundle
from .compact_bundle import (
    compact_bundle_chunks,
    compact_from_json,
    json_from_compact,
    verify_bundle_file,
)
from .sigpool import SignatureStats
from .canonical import canonical_json, check_json_value
from .checkpoint import Checkpoint, checkpoint_text, time_line
from .witnessed import WITNESS_DELAY, WITNESS_SKEW
from .cosignature import (
    COSIGNATURE_V1,
    Cosignature,
    WitnessKey,
    cosignature_line,
    cosignature_message,
    require_witnesses,
    split_cosignature,
    verify_cosignatures,
    witness_time_text,
    witness_key_id,
)
from .entry import (
    MAX_ENTRY_SIZE,
    ROLES,
    Entry,
    Event,
    Genesis,
    Grant,
    MemberAdd,
    MemberRemove,
    ParsedEntry,
    Register,
    Revoke,
    SetPolicy,
    Statement,
    TagMove,
    build_entry,
    entry_bytes,
    model_hash,
    SignedStatement,
    parse_entry,
    parse_signed_statement,
    parse_statement,
    signed_statement_bytes,
    snapshot_hash,
    encode_statement,
    statement_bytes,
    op_name,
    statement_model,
)
from .errors import (
    AuthorizationError,
    ChainError,
    ConsistencyError,
    IncompleteError,
    MalformedInputError,
    RootMismatchError,
    PolicyError,
    RuleError,
    SignatureError,
    TimeBoundError,
    VerificationError,
    VerifierError,
    WitnessError,
)
from .keys import MAX_VKEY_LEN, VerifierKey, key_id
from .merkle import EMPTY_ROOT, leaf_hash, node_hash, root, root_from_leaf_hashes
from .note import NoteSignature, assemble_note, parse_note, signature_line, verify_note
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
from .encoding import check_key_name
from .names import EVENT_TYPE_RE, name_problem
from .replay import (
    RETIRE_EVENT,
    UPDATE_EVENT,
    VALIDATION_EVENT,
    Inventory,
    KeyRecord,
    ModelState,
    Replayer,
    TimelineItem,
    may_read,
    replay,
)
from .policy import EventRule, Policy, make_policy, policy_from_doc
from .scope import (
    OPS,
    Scope,
    ScopeExcess,
    describe_scope,
    glob_covers,
    glob_match,
    make_scope,
    preset,
    scope_contains,
    scope_excess,
)
from .state import (
    LogParams,
    MemoryState,
    PolicyRecord,
    ReplayState,
    SignatureCheck,
    check_signature,
)
from .timeutil import from_ns, iso, parse_time, to_ns


__all__ = [
    "assemble_note", "AuthorizationError", "canonical_json", "ChainError", "check_json_value",
    "Checkpoint", "checkpoint_text", "time_line", "consistency_proof_length", "ConsistencyError",
    "EMPTY_ROOT", "bundle_chunks", "compact_bundle_chunks", "compact_from_json",
    "IncompleteError", "json_from_compact", "SignatureStats", "verify_bundle_file",
    "encode_bundle", "Entry", "entry_bytes", "encode_statement",
    "Event",
    "format_add_checkpoint", "parse_time", "format_tlog_proof", "from_ns", "Genesis", "Grant",
    "inclusion_proof_length", "Inventory", "key_id", "KeyRecord", "leaf_hash",
    "MalformedInputError", "MAX_ENTRY_SIZE", "MemberAdd", "MemberRemove", "model_hash",
    "ModelState", "node_hash", "parse_add_checkpoint", "parse_entry", "parse_note",
    "parse_signed_statement", "parse_statement", "parse_tlog_proof", "ParsedEntry", "Register",
    "replay", "Revoke", "root", "root_from_consistency_proof", "root_from_inclusion_proof",
    "root_from_leaf_hashes", "RootMismatchError", "RuleError", "signature_line", "SignatureError",
    "signed_statement_bytes", "SignedStatement", "snapshot_hash", "Statement", "statement_bytes",
    "TagMove", "TimeBoundError", "TimelineItem", "to_ns", "VerificationError", "VerifiedInventory",
    "VerifierError", "VerifierKey", "verify_add_checkpoint", "verify_bundle", "verify_consistency",
    "verify_inclusion", "verify_note", "verify_tlog_proof",
    # the replay seam (verifier/state.py) and what a writer needs besides
    "build_entry", "check_signature", "iso", "LogParams", "MemoryState", "Replayer",
    "ReplayState", "SignatureCheck", "statement_model", "op_name", "check_key_name",
    "RETIRE_EVENT", "UPDATE_EVENT", "VALIDATION_EVENT",
    # the keyring's roles, and which of them a log server lets read
    "may_read", "ROLES",
    # witnesses: C2SP tlog-cosignature (cosignature/v1)
    "COSIGNATURE_V1", "Cosignature", "WitnessKey", "cosignature_line", "cosignature_message",
    "require_witnesses", "verify_cosignatures", "witness_key_id", "WitnessError",
    "witness_time_text", "WITNESS_DELAY", "WITNESS_SKEW", "MAX_VKEY_LEN",
    "split_cosignature", "NoteSignature",
    # the name profile and event types, for an importer that maps names onto them
    "EVENT_TYPE_RE", "name_problem",
    # scoped grants and the controlled vocabulary (specs/entry.md §3.7, §3.8)
    "describe_scope", "EventRule", "glob_match", "make_policy", "make_scope", "OPS", "Policy",
    "policy_from_doc", "PolicyError", "PolicyRecord", "preset", "Scope", "SetPolicy",
    "glob_covers", "scope_contains", "scope_excess", "ScopeExcess",
]
