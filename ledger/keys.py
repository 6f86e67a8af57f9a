"""Signing keys: the log key (signs checkpoints), actor keys (sign statements) and
witness keys (cosign other logs' checkpoints, C2SP tlog-cosignature).

A key file (format ``modelseal-key v2``) is a header naming the key, then its
32-byte Ed25519 seed in base64, either plain::

    modelseal-key v2
    kind: actor
    name: ml-pipeline
    -----BEGIN ED25519 SEED-----
    <base64 of the seed>
    -----END ED25519 SEED-----

or encrypted with a passphrase of at least 12 characters: a ``kdf: scrypt n=.. r=..
p=.. salt=<base64>`` line ends the header, the block is ``ENCRYPTED ED25519 SEED``
and holds a 12-byte nonce then the seed sealed with ChaCha20-Poly1305 under the
scrypt key, with the header bytes as associated data (so name, kind and cost cannot
be edited). scrypt at n=2**16, r=8, p=1 costs about 200 ms and 64 MiB; a file with
lower parameters is refused. Files are created 0600 and never overwritten; loading
refuses a file readable by group or others unless told otherwise, and anything that
is not a regular file. Version 1 files (PKCS#8 PEM, PBKDF2) are refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import stat
from pathlib import Path
from typing import Self

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from verifier import (
    MAX_VKEY_LEN,
    MalformedInputError,
    VerifierKey,
    WitnessKey,
    check_key_name,
    cosignature_line,
    cosignature_message,
)

from .errors import EncryptedKeyError, InsecureKeyFileError, KeyFileError, WrongPassphraseError
from ._sodium import SodiumSigner

_MAGIC = "modelseal-key v2"
_OLD_MAGIC = "modelseal-key v1"
MIN_PASSPHRASE = 12  # characters (bytes, for a passphrase given as bytes)
# scrypt cost: new files use these; a file asking for less is refused (no downgrade)
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**16, 8, 1
_MAX_SCRYPT_MEM = 1 << 30  # a file asking for more is refused (it would exhaust memory)
_PLAIN, _SEALED = "ED25519 SEED", "ENCRYPTED ED25519 SEED"
_KDF = re.compile(r"kdf: scrypt n=([0-9]{1,10}) r=([0-9]{1,3}) p=([0-9]{1,3}) "
                  r"salt=([A-Za-z0-9+/]{22}==)\Z")
_NONCE = 12
_MAX_FILE = 4096


def _secret(passphrase: str | bytes) -> bytes:
    return passphrase.encode("utf-8") if isinstance(passphrase, str) else bytes(passphrase)


def _kdf(secret: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    """The 32-byte ChaCha20-Poly1305 key scrypt derives from ``secret``."""
    return hashlib.scrypt(secret, salt=salt, n=n, r=r, p=p, dklen=32,
                          maxmem=128 * r * (n + p + 2) + (1 << 20))


def _seal(seed: bytes, secret: bytes, head: str, n: int = SCRYPT_N) -> tuple[str, bytes]:
    """The header (``head`` plus the kdf line) and the block of an encrypted seed.
    ``n`` is lowered only by tests of this function; ``load`` refuses n < SCRYPT_N."""
    salt, nonce = os.urandom(16), os.urandom(_NONCE)
    header = (f"{head}kdf: scrypt n={n} r={SCRYPT_R} p={SCRYPT_P} "
              f"salt={base64.b64encode(salt).decode()}\n")
    key = _kdf(secret, salt, n, SCRYPT_R, SCRYPT_P)
    return header, nonce + ChaCha20Poly1305(key).encrypt(nonce, seed, header.encode())


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
        """Write the key to a new file, mode 0600. Refuses to overwrite an existing file.

        A ``passphrase`` (at least 12 characters, else ValueError) encrypts it (scrypt,
        about 200 ms); None or empty writes it plain."""
        if self.name is None:
            raise ValueError("name the key before saving it")
        head = f"{_MAGIC}\nkind: {self.kind}\nname: {self.name}\n"
        seed = self._private.private_bytes(serialization.Encoding.Raw,
                                           serialization.PrivateFormat.Raw,
                                           serialization.NoEncryption())
        if passphrase:  # None or empty: a plain key file
            if len(passphrase) < MIN_PASSPHRASE:
                raise ValueError(f"a key passphrase needs at least {MIN_PASSPHRASE} characters "
                                 f"(this one has {len(passphrase)})")
            head, block, label = *_seal(seed, _secret(passphrase), head), _SEALED
        else:
            block, label = seed, _PLAIN
        body = base64.b64encode(block).decode()
        data = f"{head}-----BEGIN {label}-----\n{body}\n-----END {label}-----\n".encode()
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
    def load(
        cls, path: str | os.PathLike[str], passphrase: str | bytes | None = None,
        *, allow_insecure: bool = False,
    ) -> Self:
        """Read a key file written by ``save`` (of this class's ``kind``)."""
        key, name = cls._read(path, passphrase, allow_insecure)
        return cls(key, name)

    @classmethod
    def _read(
        cls, path: str | os.PathLike[str], passphrase: str | bytes | None, allow_insecure: bool
    ) -> tuple[Ed25519PrivateKey, str]:
        target = Path(path)
        # CRLF line ends (a secret pasted on Windows), a UTF-8 BOM or blank space before
        # the first line are the same text: the file is written with LF and begins with
        # its magic, so this gives back its exact bytes (the head is authenticated)
        data = _read_private(target, allow_insecure).replace(b"\r\n", b"\n")
        data = data.removeprefix(b"\xef\xbb\xbf").lstrip(b" \t\n")
        head, sep, rest = data.partition(b"-----BEGIN ")
        try:
            lines = head.decode("utf-8").split("\n")
        except UnicodeDecodeError:
            lines = []
        if lines[:1] == [_OLD_MAGIC]:
            raise KeyFileError(f"{target} is an old (v1) key file, whose encryption was too weak; "
                               f"it is no longer read: make a new key (modelseal keygen, or "
                               f"init for a log key) and grant it in place of this one")
        if (not sep or len(lines) not in (4, 5) or lines[0] != _MAGIC or lines[-1]
                or lines[1] != f"kind: {cls.kind}" or not lines[2].startswith("name: ")):
            raise KeyFileError(f"{target} is not a modelseal {cls.kind} key file")
        name = lines[2].removeprefix("name: ")
        try:
            check_key_name(name)
        except MalformedInputError:
            raise KeyFileError(f"{target} names its key {name!r}, not a valid key name") from None
        label = _SEALED if len(lines) == 5 else _PLAIN
        block = _block(rest, label)
        if block is None:
            raise KeyFileError(f"{target} is damaged: its key block cannot be read")
        if label == _PLAIN:
            if passphrase:
                raise KeyFileError(f"{target} is not encrypted, yet a passphrase was given")
            seed = block
        else:
            if not passphrase:
                raise EncryptedKeyError(f"{target} is encrypted: give its passphrase")
            seed = _open(target, lines[3], block, _secret(passphrase), head)
        if len(seed) != 32:
            raise KeyFileError(f"{target} is damaged: the key is not 32 bytes")
        return Ed25519PrivateKey.from_private_bytes(seed), name


def _read_private(target: Path, allow_insecure: bool) -> bytes:
    """The bytes of the key file at ``target``: a regular file, not open to group or
    others (unless ``allow_insecure``)."""
    try:  # O_NONBLOCK: a FIFO at the path must not hang us; checked below
        fd = os.open(target, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise KeyFileError(f"cannot read key file {target}: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise InsecureKeyFileError(f"{target} is a directory, not a key file")
        if not stat.S_ISREG(st.st_mode):
            raise InsecureKeyFileError(f"{target} is not a regular file, so not a key file")
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO) and not allow_insecure:
            raise InsecureKeyFileError(
                f"{target} is readable by group or others (mode {stat.S_IMODE(st.st_mode):04o}); "
                f"run chmod 600 on it, or pass allow_insecure=True"
            )
        chunks: list[bytes] = []
        while chunk := os.read(fd, _MAX_FILE + 1):
            chunks.append(chunk)
            if sum(map(len, chunks)) > _MAX_FILE:
                break
        return b"".join(chunks)
    except OSError as exc:
        raise KeyFileError(f"cannot read key file {target}: {exc.strerror}") from None
    finally:
        os.close(fd)


def _block(rest: bytes, label: str) -> bytes | None:
    """The base64 payload of ``<rest of BEGIN line> ... END`` for ``label``, or None."""
    text = rest.decode("ascii", "replace")
    # blank lines or spaces after the END line (a CI secret written with one more newline)
    # carry nothing; everything before it is read exactly
    m = re.fullmatch(rf"{label}-----\n([A-Za-z0-9+/=]{{1,200}})\n-----END {label}-----[ \t\n]*",
                     text)
    if m is None:
        return None
    try:
        return base64.b64decode(m.group(1), validate=True)
    except binascii.Error:
        return None


def _open(target: Path, kdf_line: str, block: bytes, secret: bytes, head: bytes) -> bytes:
    """The seed sealed in ``block``; WrongPassphraseError if ``secret`` does not open it."""
    m = _KDF.match(kdf_line)
    if m is None:
        raise KeyFileError(f"{target} is damaged: unknown key derivation {kdf_line!r}")
    n, r, p = (int(x) for x in m.group(1, 2, 3))
    if n < SCRYPT_N or r < SCRYPT_R or p < SCRYPT_P:
        raise KeyFileError(f"{target} asks for a cheaper passphrase hash (scrypt n={n} r={r} "
                           f"p={p}) than the minimum (n={SCRYPT_N} r={SCRYPT_R} p={SCRYPT_P}); "
                           f"refused: make a new key")
    if n & (n - 1) or 128 * r * n > _MAX_SCRYPT_MEM or p > 16:
        raise KeyFileError(f"{target} asks for scrypt n={n} r={r} p={p}: refused "
                           f"(n must be a power of 2, at most 1 GiB of memory, p at most 16)")
    if len(block) != _NONCE + 32 + 16:
        raise KeyFileError(f"{target} is damaged: the sealed key has {len(block)} bytes")
    key = _kdf(secret, base64.b64decode(m.group(4)), n, r, p)
    try:
        return ChaCha20Poly1305(key).decrypt(block[:_NONCE], block[_NONCE:], head)
    except InvalidTag:
        raise WrongPassphraseError(f"cannot open {target}: wrong passphrase "
                                   f"(or the file was altered)") from None


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


class WitnessSigner(_SigningKey):
    """A witness's key: it cosigns checkpoints (C2SP tlog-cosignature, Ed25519
    ``cosignature/v1``). Its public form is a ``WitnessKey`` (signature type 0x04)."""

    kind = "witness"
    name: str

    def __init__(self, private: Ed25519PrivateKey, name: str) -> None:
        if name is None:
            raise ValueError("a witness key needs a name")
        super().__init__(private, name)
        self.witness_key = WitnessKey.from_public(name, self.public_bytes)
        if len(self.witness_key.vkey()) > MAX_VKEY_LEN:  # no reader would accept the key
            raise ValueError(f"a witness name of {len(name)} characters makes a verifier key "
                             f"longer than the {MAX_VKEY_LEN} characters readers accept")

    @property
    def vkey(self) -> str:
        """The witness's verifier key ``name+hex8+base64(0x04 || key)``: what a log (and
        anyone checking cosignatures) pins."""
        return self.witness_key.vkey()

    @property
    def key_id(self) -> bytes:
        """The 4-byte cosignature key ID (of type 0x04, not the note key ID)."""
        return self.witness_key.key_id

    def cosign(self, checkpoint_text: bytes, timestamp: int) -> bytes:
        """The cosignature/v1 signature line over a checkpoint's note text (its exact bytes,
        without signatures) at ``timestamp`` (POSIX seconds, 1..2**63-1)."""
        if isinstance(timestamp, bool) or not isinstance(timestamp, int) \
                or not 0 < timestamp < 2**63:
            raise ValueError("a cosignature's timestamp is an int in 1..2**63-1")
        signature = self.sign(cosignature_message(checkpoint_text, timestamp))
        return cosignature_line(self.witness_key, timestamp, signature)

    @classmethod
    def generate(cls, name: str) -> WitnessSigner:
        """A fresh random witness key named ``name`` (a schema-less URL, by convention)."""
        return cls(Ed25519PrivateKey.generate(), name)
