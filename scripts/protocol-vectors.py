#!/usr/bin/env python3
"""Test vectors for docs/PROTOCOL.md §4: an X3DH (3DH) agreement and the first
Double Ratchet message, computed with the `cryptography` package alone, as an
implementation independent of the Swift code.

    scripts/protocol-vectors.py            print the vector block
    scripts/protocol-vectors.py --check F  exit 1 unless F holds exactly that block

The Swift suite (ProtocolVectorTests) checks the same block against KeepsakeCrypto.
"""
import hashlib
import hmac
import sys

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat


def secret(label):
    """A fixed X25519 secret key: BLAKE2b-256 of a label (X25519 clamps it)."""
    return hashlib.blake2b(("keepsake/test-vector/" + label).encode(), digest_size=32).digest()


def public(sk):
    return X25519PrivateKey.from_private_bytes(sk).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def dh(sk, pk):
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
    return X25519PrivateKey.from_private_bytes(sk).exchange(X25519PublicKey.from_public_bytes(pk))


def hkdf(ikm, salt, info, length):
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def vector():
    ik_a, ek_a, ik_b, pk_b, rk_a = (secret(n) for n in ("IK_A", "EK_A", "IK_B", "PK_B", "RK_A"))
    rows = []
    for name, sk in (("IK_A", ik_a), ("EK_A", ek_a), ("IK_B", ik_b), ("PK_B", pk_b)):
        rows += [(name + " secret", sk), (name + " public", public(sk))]
    dh1, dh2, dh3 = dh(ik_a, public(pk_b)), dh(ek_a, public(ik_b)), dh(ek_a, public(pk_b))
    sk = hkdf(b"\xff" * 32 + dh1 + dh2 + dh3, b"\x00" * 32, b"Keepsake X3DH", 32)
    rows += [("DH1", dh1), ("DH2", dh2), ("DH3", dh3), ("SK", sk)]
    rows += [("RK_A secret", rk_a), ("RK_A public", public(rk_a))]
    dh_r = dh(rk_a, public(pk_b))
    derived = hkdf(dh_r, sk, b"Keepsake ratchet root", 64)
    root, chain = derived[:32], derived[32:]
    message_key = hmac.new(chain, b"\x01", hashlib.sha256).digest()
    next_chain = hmac.new(chain, b"\x02", hashlib.sha256).digest()
    rows += [("DH_R", dh_r), ("root key", root), ("chain key", chain), ("message key", message_key), ("next chain key", next_chain)]
    # The envelope header H: EnvelopeHeader {sent_ns = 1764460800000000000} (2025-11-30 00:00 UTC), no sealed metadata.
    sent_ns = 1764460800000000000
    varint = bytearray()
    while True:
        byte, sent_ns = sent_ns & 0x7F, sent_ns >> 7
        varint.append(byte | (0x80 if sent_ns else 0))
        if not sent_ns:
            break
    header_bytes = b"\x08" + bytes(varint)
    associated = header_bytes + public(ik_a) + public(ik_b)
    plaintext = b"Keepsake test vector: the first message"
    ratchet_header = public(rk_a) + (0).to_bytes(4, "little") + (0).to_bytes(4, "little")
    ciphertext = ChaCha20Poly1305(message_key).encrypt(b"\x00" * 12, plaintext, associated + ratchet_header)
    rows += [("H", header_bytes), ("associated data", associated), ("plaintext", plaintext),
             ("ratchet header", ratchet_header), ("ciphertext", ciphertext)]
    return "\n".join(f"{name:<16} = {value.hex()}" for name, value in rows)


def block():
    return "```text\n" + vector() + "\n```\n"


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        text = open(sys.argv[2], encoding="utf-8").read()
        if block() not in text:
            sys.exit(f"{sys.argv[2]}: the test vector block differs from what scripts/protocol-vectors.py computes")
        print("protocol test vectors: match")
    elif len(sys.argv) == 1:
        print(block(), end="")
    else:
        sys.exit(__doc__)
