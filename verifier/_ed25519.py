"""Checking an Ed25519 public key encoding (RFC 8032 §5.1.3) in pure Python.

OpenSSL accepts any 32 bytes that decode to a curve point, so a small-order key
(the identity, say) would let one fixed signature verify every message, while
libsodium, which the writer uses, refuses such keys. ``key_problem`` refuses the
same keys as libsodium's ``crypto_core_ed25519_is_valid_point``: the encoding is
canonical, decodes to a point, and that point has order exactly L (no torsion
component, not the identity).

Not constant time: it only ever sees public keys.
"""

from __future__ import annotations

P = 2**255 - 19  # the field prime
L = 2**252 + 27742317777372353535851937790883648493  # the prime order of the base point
D = -121665 * pow(121666, -1, P) % P  # the curve constant: -x^2 + y^2 = 1 + d x^2 y^2
SQRT_M1 = pow(2, (P - 1) // 4, P)  # a square root of -1 mod p

# A point in extended coordinates (X, Y, Z, T): x = X/Z, y = Y/Z, x*y = T/Z.
Point = tuple[int, int, int, int]
IDENTITY: Point = (0, 1, 1, 0)


def _decode(s: bytes) -> Point | str:
    """The point encoded by ``s``, or why it is not one (RFC 8032 §5.1.3)."""
    n = int.from_bytes(s, "little")
    y, sign = n & ((1 << 255) - 1), n >> 255
    if y >= P:
        return "non-canonical encoding (y >= p)"
    # x^2 = (y^2 - 1) / (d y^2 + 1); the denominator is never 0 since d is not a square
    u, v = (y * y - 1) % P, (D * y * y + 1) % P
    x2 = u * pow(v, -1, P) % P
    x = pow(x2, (P + 3) // 8, P)  # a square root of x2 or of -x2
    if x * x % P != x2:
        x = x * SQRT_M1 % P
        if x * x % P != x2:
            return "not a point on the curve"
    if x == 0 and sign:
        return "non-canonical encoding (x = 0 with the sign bit set)"
    if x & 1 != sign:
        x = P - x
    return (x, y, 1, x * y % P)


def _add(p: Point, q: Point) -> Point:
    """p + q (add-2008-hwcd-3, complete for a = -1)."""
    x1, y1, z1, t1 = p
    x2, y2, z2, t2 = q
    a = (y1 - x1) * (y2 - x2) % P
    b = (y1 + x1) * (y2 + x2) % P
    c = 2 * D * t1 * t2 % P
    d = 2 * z1 * z2 % P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _double(p: Point) -> Point:
    """2p (dbl-2008-hwcd for a = -1)."""
    x1, y1, z1, _ = p
    a, b, c = x1 * x1 % P, y1 * y1 % P, 2 * z1 * z1 % P
    e = ((x1 + y1) * (x1 + y1) - a - b) % P
    g = b - a  # -a + b
    f = g - c
    h = -a - b
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _multiply(k: int, p: Point) -> Point:
    """[k]p, by double-and-add from the top bit."""
    acc = IDENTITY
    for bit in bin(k)[2:]:
        acc = _double(acc)
        if bit == "1":
            acc = _add(acc, p)
    return acc


def _is_identity(p: Point) -> bool:
    x, y, z, _ = p
    return x % P == 0 and (y - z) % P == 0


def key_problem(public_key: bytes) -> str | None:
    """Why ``public_key`` is not a valid Ed25519 public key, or None if it is one.

    Valid: 32 bytes, a canonical encoding of a curve point whose order is L (so not
    small-order and without a small-order component). About 1 ms.
    """
    if len(public_key) != 32:
        return "not 32 bytes"
    point = _decode(public_key)
    if isinstance(point, str):
        return point
    if _is_identity(_multiply(8, point)):
        return "small-order point"  # the 8 points of order 1, 2, 4 or 8
    if not _is_identity(_multiply(L, point)):
        return "point outside the prime-order subgroup (it has a small-order component)"
    return None
