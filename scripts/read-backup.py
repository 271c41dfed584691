#!/usr/bin/env python3
"""An independent reader of Keepsake backup files, written from docs/BACKUP-FORMAT.md.

Usage: read-backup.py KEY_FILE BACKUP_FILE
Prints the header, then one line per event, then the file hash. Exits non-zero
with a message on any check that fails. Needs Python 3, the `cryptography`
package and the `zstd` command (Debian: python3-cryptography, zstd).
XChaCha20-Poly1305 files are not supported here (no XChaCha in `cryptography`).
"""
import hashlib
import struct
import subprocess
import sys

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = bytes([0x89, 0x4B, 0x53, 0x42, 0x41, 0x4B, 0x0D, 0x0A])


def fail(message):
    sys.exit(f"read-backup: {message}")


def read_key(path):
    raw = open(path, "rb").read()
    if len(raw) == 32:
        return raw
    digits = bytes(b for b in raw if b not in b" \t\r\n")
    if len(digits) == 64:
        return bytes.fromhex(digits.decode())
    fail("a key file holds 32 bytes or 64 hex digits")


class Reader:
    def __init__(self, data):
        self.data, self.at = data, 0

    def take(self, n):
        if self.at + n > len(self.data):
            fail("truncated")
        out = self.data[self.at:self.at + n]
        self.at += n
        return out

    def u(self, n):
        return int.from_bytes(self.take(n), "little")


def parse_header(data):
    if data[:8] != MAGIC:
        fail("not a backup")
    r = Reader(data)
    r.take(8)
    version = r.u(2)
    if version != 1:
        fail(f"unsupported version {version}")
    length = r.u(4)
    header = data[:length]
    r = Reader(header)
    r.at = 14
    h = {"length": length}
    h["kind"], h["cipher"], h["compression"], h["key_source"] = r.u(1), r.u(1), r.u(1), r.u(1)
    h["id"] = r.take(16).hex()
    h["created_ms"] = struct.unpack("<q", r.take(8))[0]
    h["source_log"] = r.take(16).hex()
    h["signer"] = r.take(32)
    h["base_id"], h["base_hash"] = r.take(16).hex(), r.take(32).hex()
    h["chunk_size"] = r.u(4)
    h["file_salt"], h["key_check"] = r.take(32), r.take(16)
    h["argon_salt"], h["ops"], h["mem"] = r.take(16), r.u(8), r.u(8)
    h["from"], h["to"] = r.u(8), r.u(8)
    h["elements"] = r.u(2)
    h["conversations"] = [r.take(16).hex() for _ in range(r.u(4))]
    for name in ("from_vector", "to_vector"):
        h[name] = {}
        for _ in range(r.u(4)):
            log = r.take(16).hex()
            h[name][log] = r.u(8)
    signature = r.take(64)
    if r.at != length:
        fail("header longer than its fields")
    try:
        Ed25519PublicKey.from_public_bytes(h["signer"]).verify(signature, header[:-64])
    except InvalidSignature:
        fail("bad signature")
    return h, header


def frames(plain):
    r = Reader(plain)
    while r.at < len(plain):
        kind, length = r.u(1), r.u(4)
        yield kind, r.take(length)


def main():
    if len(sys.argv) != 3:
        fail("usage: read-backup.py KEY_FILE BACKUP_FILE")
    key = read_key(sys.argv[1])
    data = open(sys.argv[2], "rb").read()
    h, header = parse_header(data)
    if h["key_source"] == 2:
        fail("passphrase files need Argon2id, not implemented in this reader")
    if h["cipher"] != 1:
        fail("only AES-256-GCM files are supported by this reader")
    check = hashlib.blake2b(b"keepsake backup v1 key check", digest_size=16, key=key).digest()
    if check != h["key_check"]:
        fail("wrong key")
    file_key = hashlib.blake2b(b"keepsake backup v1 file key" + h["file_salt"], digest_size=32, key=key).digest()
    ad = hashlib.blake2b(header, digest_size=32).digest()
    print(f"backup {h['id']} kind {h['kind']} source {h['source_log']} sequences {h['from']}..{h['to']}"
          f" base {h['base_id'] if h['base_id'] != '00' * 16 else '-'}")
    print(f"key check {check.hex()} file key {file_key.hex()} associated data {ad.hex()}")
    aead = AESGCM(file_key)
    at, index, events, trailer = h["length"], 0, 0, None
    while at < len(data):
        length = int.from_bytes(data[at:at + 4], "little")
        sealed = data[at + 4:at + 4 + length]
        if len(sealed) != length:
            fail(f"truncated after chunk {index - 1}")
        final = at + 4 + length == len(data)
        nonce = struct.pack("<Q", index) + bytes([1 if final else 0]) + bytes(3)
        try:
            chunk = aead.decrypt(nonce, sealed, ad)
        except InvalidTag:
            fail(f"chunk {index} does not authenticate")
        if chunk[0] == 1:
            chunk = subprocess.run(["zstd", "-d", "-c", "-q"], input=chunk[1:], capture_output=True, check=True).stdout
        else:
            chunk = chunk[1:]
        for kind, body in frames(chunk):
            if kind == 1:
                r = Reader(body)
                origin, sequence, event_kind = r.take(16).hex(), r.u(8), r.u(4)
                time = struct.unpack("<q", r.take(8))[0]
                flags = r.u(1)
                subject = r.take(r.u(2))
                step = r.u(8) if flags & 0x04 else None
                payload = body[r.at:]
                events += 1
                print(f"event {origin}:{sequence} kind {event_kind} time {time} flags {flags:#04x}"
                      f" subject {subject.hex() or '-'}{'' if step is None else f' step {step}'} payload {len(payload)} bytes")
            elif kind == 2:
                print("head end")
            elif kind == 3:
                trailer = int.from_bytes(body, "little")
            else:
                fail(f"unknown frame type {kind}")
        at += 4 + length
        index += 1
    if trailer != events:
        fail(f"trailer says {trailer} events, read {events}")
    print(f"{events} events in {index} chunks, file hash {hashlib.blake2b(data, digest_size=32).hexdigest()}")


main()
