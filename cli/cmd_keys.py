"""init, keygen, grant, revoke: the store and who may write to it."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import click
import msgspec

from ledger import ActorKey, Ledger, LogKey
from verifier import (
    OPS,
    ROLES,
    KeyRecord,
    MalformedInputError,
    Policy,
    describe_scope,
    from_ns,
    make_scope,
    policy_from_doc,
    preset,
)
from ledger._store import removed_on_failure

from .context import Settings, UsageProblem, passphrase_from_env
from .infile import SMALL_FILE_LIMIT, read_at_most
from .output import emit_csv, emit_json, iso, table

pass_settings = click.make_pass_decorator(Settings)


def _new_passphrase(kind: str = "actor") -> str | None:
    """The passphrase a new key of ``kind`` is encrypted with: what every later command
    will read for it (``passphrase_from_env``: the ``_FILE`` forms too), or None (plain)."""
    return passphrase_from_env(kind) or None


def _missing_dirs(path: Path) -> list[Path]:
    """``path`` and its ancestors that do not exist yet, deepest first."""
    out, here = [], path.absolute()
    while not here.exists() and here != here.parent:
        out.append(here)
        here = here.parent
    return out


@click.command()
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--origin", required=True,
              help="The log's name, a schema-less URL such as example.com/models.")
@click.option("--admin", "admin_name", default="risk-admin", show_default=True,
              help="The first admin actor's name.")
@click.option("--keys-dir", type=click.Path(path_type=Path),
              help="Where to write the key files [default: DIRECTORY-keys beside the store].")
@click.option("--policy", "policy_file", type=click.Path(path_type=Path, dir_okay=False),
              help="A policy file (TOML or JSON, see `modelseal policy set`) the genesis "
                   "declares: the log's first controlled vocabulary.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def init(directory: Path, origin: str, admin_name: str, keys_dir: Path | None,
         policy_file: Path | None, as_json: bool) -> None:
    """Create a store, a log key file and an admin key file (0600, outside the store).

    Prints the log's verifier key: the one thing an examiner must receive out of band.
    Key files are encrypted when MODELSEAL_KEY_PASSPHRASE is set (the log key with
    MODELSEAL_LOG_KEY_PASSPHRASE if that is set; each also as a _FILE).
    """
    settings = click.get_current_context().find_object(Settings)
    if settings is not None and settings.server:
        settings.local_only("init")
    policy = None if policy_file is None else read_policy(policy_file)
    keys_dir = keys_dir or directory.parent / f"{directory.name}-keys"
    if (directory / "data.mdb").exists():
        raise UsageProblem(f"{directory} already holds a store (or another program's LMDB "
                           "database)",
                           "use it with --store DIR or MODELSEAL_STORE, or give a new DIRECTORY")
    if (keys_dir / "data.mdb").exists():
        raise UsageProblem(f"{keys_dir} holds a store; the key files must live outside every "
                           "store", "choose another --keys-dir")
    inside = directory.resolve() in (keys_dir.resolve(), *keys_dir.resolve().parents)
    if inside:
        raise UsageProblem("the key files must not live inside the store",
                           "choose --keys-dir outside DIRECTORY")
    log_path, admin_path = keys_dir / "log.key", keys_dir / f"{admin_name}.key"
    for path in (log_path, admin_path):
        if path.exists():
            raise UsageProblem(f"{path} already exists", "a key file is never overwritten")
    log_key, admin = LogKey.generate(origin), ActorKey.generate(admin_name)
    new_dirs = _missing_dirs(keys_dir)
    made: list[Path] = []
    try:
        keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        made.append(log_path)  # keys first: a store whose keys were never saved is useless
        log_key.save(log_path, _new_passphrase("log"))
        made.append(admin_path)
        admin.save(admin_path, _new_passphrase())
        with removed_on_failure(directory):
            Ledger.create(directory, origin=origin, log_key=log_key, admin=admin,
                          policy=policy).close()
    except BaseException:
        # nothing of a failed init may stay in the way of a retry (a full disk, say), and
        # these keys sign for no store; only what this init made is removed
        for path in made:
            path.unlink(missing_ok=True)
        for new in new_dirs:
            try:
                new.rmdir()
            except OSError:
                break
        raise
    result = {"store": str(directory), "origin": origin, "log_vkey": log_key.vkey,
              "log_key_file": str(log_path), "admin": admin_name, "admin_vkey": admin.vkey,
              "admin_key_file": str(admin_path)}
    if as_json:
        emit_json(result)
        return
    click.echo(f"created store {directory} for {origin}")
    click.echo(f"log key:   {log_path}")
    click.echo(f"admin key: {admin_path} ({admin_name})")
    click.echo("\nGive examiners this verifier key, out of band:\n")
    click.echo(f"  {log_key.vkey}\n")
    click.echo("To use this store:")
    click.echo(f"  export MODELSEAL_STORE={directory} MODELSEAL_LOG_KEY={log_path} "
               f"MODELSEAL_KEY={admin_path}")


@click.command()
@click.argument("name")
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True,
              help="The key file to write (created 0600, never overwritten).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def keygen(name: str, output: Path, as_json: bool) -> None:
    """Make an actor key for NAME (a pipeline or a person) and print its public key string.

    An admin then grants it: modelseal grant <printed key> --role writer (or reader).
    """
    if output.exists():
        raise UsageProblem(f"{output} already exists", "a key file is never overwritten")
    key = ActorKey.generate(name)
    key.save(output, _new_passphrase())
    if as_json:
        emit_json({"name": name, "vkey": key.vkey, "key_file": str(output)})
    else:
        click.echo(key.vkey)


def _list(value: str | None) -> list[str] | None:
    """A comma-separated option as a list (None if not given; '' is the empty list)."""
    if value is None:
        return None
    return [item.strip() for item in value.split(",") if item.strip()]


@click.command()
@click.argument("pubkey")
@click.option("--role", type=click.Choice(ROLES), default="writer", show_default=True,
              help="writer: writes entries; admin: also grants and revokes keys and sets the "
                   "policy; reader: never writes, may use a log server's protected reads (as "
                   "admins may).")
@click.option("--ops", metavar="LIST",
              help=f"Comma-separated operations the key may sign, of {', '.join(OPS)} "
                   "[default: all its role allows].")
@click.option("--event-types", metavar="LIST", help="Only these event types (comma-separated).")
@click.option("--tags", metavar="LIST", help="Only these tags (comma-separated).")
@click.option("--models", metavar="GLOBS",
              help="Only models whose names match one of these patterns (comma-separated; "
                   "'*' matches any run of characters, nothing else is special).")
@click.option("--tiers", metavar="LIST", help="Only models of these tiers (comma-separated).")
@pass_settings
def grant(settings: Settings, pubkey: str, role: str, ops: str | None,
          event_types: str | None, tags: str | None, models: str | None,
          tiers: str | None) -> None:
    """Grant an actor key (name+keyid+base64, as keygen prints it) a role, optionally
    narrowed to a scope. Admins only.

    An actor holds one active key at a time: to change its role or scope, revoke it,
    then grant. Example: modelseal grant <vkey> --ops tag --tags production
    """
    scope = None
    narrowing = (event_types, tags, models, tiers)
    if ops is not None or any(x is not None for x in narrowing):
        try:
            scope = make_scope(ops=preset(role).ops if ops is None else _list(ops) or [],
                               event_types=_list(event_types), tags=_list(tags),
                               models=_list(models), tiers=_list(tiers))
        except (ValueError, TypeError) as exc:
            raise UsageProblem(f"invalid scope: {exc}") from None
    with settings.writer() as ledger:
        ledger.grant(pubkey, role=role, scope=scope)
    what = f"the {role} role" if scope is None else \
        f"the {role} role, scope: {describe_scope(scope)}"
    click.echo(f"granted {pubkey.split('+', 1)[0]} {what}")
    if scope is not None and "keyring" in scope.ops and any(x is not None for x in narrowing):
        click.echo("note: this scope keeps keyring: the key may grant and revoke keys whose "
                   "scopes are within its own. Leave keyring out of --ops for a key that only "
                   "writes.", err=True)


@click.command()
@click.argument("name")
@click.option("--reason", help="Why the key is revoked (recorded in the log).")
@pass_settings
def revoke(settings: Settings, name: str, reason: str | None) -> None:
    """Revoke the active key of actor NAME. Admins only."""
    with settings.writer() as ledger:
        ledger.revoke(name, reason=reason)
    click.echo(f"revoked the key of {name}")


_SCOPES = {"admin": "all models; grants, revokes and policy", "writer": "all models",
           "reader": "reads only"}
"""What each role's preset allows: the scope column of a grant without a scope."""


def _scope_text(r: KeyRecord) -> str:
    return _SCOPES.get(r.role, r.role) if r.scope is None else describe_scope(r.scope)


@click.command()
@click.option("--all", "show_all", is_flag=True, help="Also the revoked keys.")
@click.option("--json", "as_json", is_flag=True, help="Print the keys as JSON.")
@click.option("--csv", "as_csv", is_flag=True, help="Print the table as CSV (RFC 4180).")
@pass_settings
def keys(settings: Settings, show_all: bool, as_json: bool, as_csv: bool) -> None:
    """The log's actors: each key's role, scope, key ID, and who granted (and revoked) it,
    when, at which entry and why; active keys only unless --all. Needs a local store."""
    if as_json and as_csv:
        raise UsageProblem("give --json or --csv, not both")
    if settings.remote():
        raise UsageProblem("keys needs a local store: the log server has no route for the "
                           "key history", "run it where the store is, with --store DIR")
    with Ledger.open(settings.store_path()) as ledger:
        records = ledger.keyring()
    if not show_all:
        records = [r for r in records if r.revoked_index is None]
    rows = [{"actor": r.name, "role": r.role, "scope": _scope_text(r),
             "key_id": r.key.key_id.hex(), "vkey": r.vkey,
             "granted_by": r.granted_by, "granted_at": iso(from_ns(r.granted_at)),
             "granted_entry": r.granted_index, "revoked_by": r.revoked_by,
             "revoked_at": None if r.revoked_at is None else iso(from_ns(r.revoked_at)),
             "revoked_entry": r.revoked_index, "reason": r.reason} for r in records]
    if as_json:
        emit_json(rows)
        return
    cols = ["actor", "role", "scope", "key_id", "granted_by", "granted_at", "granted_entry",
            "revoked_by", "revoked_at", "revoked_entry", "reason"]
    if as_csv:
        emit_csv([[row[c] for c in [*cols[:4], "vkey", *cols[4:]]] for row in rows],
                 [*cols[:4], "vkey", *cols[4:]])
        return
    table([[row[c] for c in cols] for row in rows],
          ["actor", "role", "scope", "key ID", "granted by", "granted at", "entry",
           "revoked by", "revoked at", "entry", "reason"])


class PolicyFileError(MalformedInputError):
    """A policy file that does not parse, is no policy or is too large (exit 3)."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


def read_policy(path: Path) -> Policy:
    """The policy in a TOML (``.toml``) or JSON file: ``{"events": {TYPE: {"required":
    [FIELD, ...]}}}``. OSError for a file that cannot be read (exit 4); PolicyFileError
    for one that is no policy (exit 3), as ``findings --profile`` does for a profile."""
    try:
        data = read_at_most(path, SMALL_FILE_LIMIT)
    except OSError as exc:
        raise OSError(exc.errno, f"cannot read the policy file {path}: "
                                 f"{exc.strerror or exc}") from None
    if len(data) > SMALL_FILE_LIMIT:
        raise PolicyFileError(f"the policy file {path} is larger than {SMALL_FILE_LIMIT:,} "
                              "bytes; a policy is a short list of event types")
    try:
        if path.suffix.lower() == ".toml":
            doc = tomllib.loads(data.decode("utf-8"))
        else:
            doc = json.loads(data)
        return policy_from_doc(doc)
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError) as exc:
        raise PolicyFileError(f"the policy file {path} does not parse: {exc}") from None
    except ValueError as exc:  # json.JSONDecodeError included
        raise PolicyFileError(f"the policy file {path} is not a policy: {exc}",
                              'write {"events": {"validated": {"required": ["result"]}}} '
                              "or its TOML form") from None


@click.group()
def policy() -> None:
    """The log's controlled vocabulary: the allowed event types and the payload fields
    each requires."""


@policy.command("set")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@pass_settings
def policy_set(settings: Settings, file: Path) -> None:
    """Put the policy in FILE in force (TOML if it ends in .toml, else JSON). Admins only.

    \b
    [events.validated]
    required = ["profile", "result", "validator"]
    [events.retired]
    required = []

    Only the listed event types are accepted afterwards (list retired and reactivated
    too if models may still be retired and brought back).
    """
    new = read_policy(file)
    with settings.writer() as ledger:
        ledger.set_policy(new)
    click.echo(f"policy in force: {len(new.events)} event types")


@policy.command("clear")
@pass_settings
def policy_clear(settings: Settings) -> None:
    """Lift the policy in force: any event type is accepted again. Admins only."""
    with settings.writer() as ledger:
        ledger.set_policy(None)
    click.echo("no policy in force")


@policy.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print the policy as JSON.")
@pass_settings
def policy_show(settings: Settings, as_json: bool) -> None:
    """The policy in force and the entry that set it. Needs a local store."""
    if settings.remote():
        raise UsageProblem("policy show needs a local store", "run it where the store is")
    with Ledger.open(settings.store_path()) as ledger:
        record = ledger.policy()
    current = None if record is None else record.policy
    doc = None if current is None else msgspec.to_builtins(current)
    if as_json:
        emit_json({"policy": doc, "entry": None if record is None else record.index,
                   "by": None if record is None else record.by,
                   "at": None if record is None else iso(from_ns(record.at))})
        return
    if record is None or current is None:
        click.echo("no policy in force: any event type is accepted")
        return
    click.echo(f"set at entry {record.index} by {record.by}, {iso(from_ns(record.at))}")
    table([[t, ", ".join(rule.required)] for t, rule in sorted(current.events.items())],
          ["event type", "required payload fields"])


COMMANDS = [init, keygen, grant, revoke, keys, policy]
