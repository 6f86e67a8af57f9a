"""Signing keys: the log key (signs checkpoints) and actor keys (sign statements).

Key files hold a PKCS#8 Ed25519 key, optionally passphrase-encrypted, behind a
two-line header naming the key. They are created 0600 and never overwritten;
loading refuses a file readable by group or others unless told otherwise.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from verifier import VerifierKey
from verifier.encoding import check_key_name
from verifier.errors import MalformedInputError

from .errors import KeyFileError
from .sodium import SodiumSigner

_MAGIC = "modelseal-key v1"


class _SigningKey:
    """An Ed25519 private key with a signed-note name."""

    kind = "actor"

    def __init__(self, private: Ed25519PrivateKey, name: str | None) -> None:
        if name is not None:
            try:
                check_key_name(name)
            except MalformedInputError as exc:
                raise ValueError(str(exc)) from None
        self._private = private
        self.name = name
        raw = private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.public_bytes = raw
        seed = private.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                     serialization.NoEncryption())
        self._signer = SodiumSigner(seed)

    @property
    def key(self) -> VerifierKey:
        """The public half as a VerifierKey. Precondition: the key has a name."""
        if self.name is None:
            raise ValueError("this key has no name yet; a log key takes the log's origin")
        cached = self.__dict__.get("_key")
        if cached is None or cached.name != self.name:
            cached = VerifierKey.from_public_bytes(self.name, self.public_bytes)
            self.__dict__["_key"] = cached
        return cached

    @property
    def vkey(self) -> str:
        """The verifier key string ``name+hex8+base64``: what others need to verify."""
        return self.key.vkey

    @property
    def key_id(self) -> bytes:
        """The 4-byte signed-note key ID."""
        return self.key.key_id

    def sign(self, message: bytes) -> bytes:
        """An Ed25519 signature over exactly ``message`` (the same bytes OpenSSL would
        give: Ed25519 is deterministic; made through libsodium, which is faster)."""
        return self._signer.sign(message)

    def save(self, path: str | os.PathLike[str], passphrase: str | bytes | None = None) -> Path:
        """Write the key to a new file, mode 0600. Refuses to overwrite an existing file."""
        if self.name is None:
            raise ValueError("name the key before saving it")
        enc: serialization.KeySerializationEncryption = serialization.NoEncryption()
        if passphrase:
            pw = passphrase.encode() if isinstance(passphrase, str) else passphrase
            enc = serialization.BestAvailableEncryption(pw)
        pem = self._private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc
        )
        data = f"{_MAGIC}\nkind: {self.kind}\nname: {self.name}\n".encode() + pem
        target = Path(path)
        if (target.parent / "data.mdb").exists():
            raise KeyFileError(f"{target} is inside a store directory; keep keys outside the store")
        try:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise KeyFileError(f"{target} exists; a key file is never overwritten") from None
        except OSError as exc:
            raise KeyFileError(f"cannot create {target}: {exc.strerror}") from None
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        return target

    @classmethod
    def _read(
        cls, path: str | os.PathLike[str], passphrase: str | bytes | None, allow_insecure: bool
    ) -> tuple[Ed25519PrivateKey, str]:
        target = Path(path)
        try:
            st = target.stat()
            data = target.read_bytes()
        except OSError as exc:
            raise KeyFileError(f"cannot read key file {target}: {exc.strerror}") from None
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO) and not allow_insecure:
            raise KeyFileError(
                f"{target} is readable by group or others (mode {stat.S_IMODE(st.st_mode):04o}); "
                f"run chmod 600 on it, or pass allow_insecure=True"
            )
        head, sep, pem = data.partition(b"-----BEGIN")
        lines = head.decode("utf-8", "replace").splitlines()
        if not sep or len(lines) != 3 or lines[0] != _MAGIC or lines[1] != f"kind: {cls.kind}":
            raise KeyFileError(f"{target} is not a modelseal {cls.kind} key file")
        name = lines[2].removeprefix("name: ")
        pw = passphrase.encode() if isinstance(passphrase, str) else passphrase
        if b"ENCRYPTED" in pem[:40] and not pw:
            raise KeyFileError(f"{target} is encrypted: give its passphrase")
        try:
            key = serialization.load_pem_private_key(sep + pem, password=pw or None)
        except (ValueError, TypeError) as exc:
            raise KeyFileError(f"cannot load {target}: wrong passphrase or damaged file") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyFileError(f"{target} does not hold an Ed25519 key")
        return key, name


class ActorKey(_SigningKey):
    """A pipeline's or a person's key; its name is the actor's name in the log."""

    kind = "actor"
    name: str

    def __init__(self, private: Ed25519PrivateKey, name: str) -> None:
        if name is None:
            raise ValueError("an actor key needs a name")
        super().__init__(private, name)

    @classmethod
    def generate(cls, name: str) -> ActorKey:
        """A fresh random key for actor ``name``."""
        return cls(Ed25519PrivateKey.generate(), name)

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], passphrase: str | bytes | None = None,
        *, allow_insecure: bool = False,
    ) -> ActorKey:
        """Read a key file written by ``save``."""
        key, name = cls._read(path, passphrase, allow_insecure)
        return cls(key, name)


class LogKey(_SigningKey):
    """The log's checkpoint key. Its name is the log's origin (set at Ledger.create)."""

    kind = "log"

    @classmethod
    def generate(cls, name: str | None = None) -> LogKey:
        """A fresh random log key; ``name`` defaults to the origin given at creation."""
        return cls(Ed25519PrivateKey.generate(), name)

    def named(self, name: str) -> LogKey:
        """This key under ``name``. Raises ValueError if it already has another name."""
        if self.name is not None and self.name != name:
            raise ValueError(f"the log key is named {self.name!r}, not {name!r}")
        self.name = self.name or check_key_name(name)
        return self

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], passphrase: str | bytes | None = None,
        *, allow_insecure: bool = False,
    ) -> LogKey:
        """Read a key file written by ``save``."""
        key, name = cls._read(path, passphrase, allow_insecure)
        return cls(key, name)
