#!/usr/bin/env python3
"""An independent reader of Keepsake backup files, written from docs/BACKUP-FORMAT.md.

Usage: read-backup.py KEY_FILE BACKUP_FILE
Reads format versions 1 and 2. Prints the header (and, in version 2, who
signed it), then one line per event, then the file hash. Exits non-zero with a
message on any check that fails, the document's header and content rules included. Needs Python 3, the `cryptography`
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
SOFT = 0x1F
# "Elements and event kinds": the element bit of every kind the format names.
ELEMENTS = {1: 0x01, 6: 0x01, 12: 0x01, 2: 0x02, 3: 0x02, 4: 0x02, 5: 0x02, 8: 0x04, 9: 0x04, 18: 0x04,
            10: 0x08, 11: 0x10, 7: 0x20, 19: 0x20, 13: 0x40, 14: 0x40, 15: 0x40, 16: 0x40, 17: 0x40, 20: 0x40, 21: 0x40}


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


def protobuf_bytes_fields(data):
    """The length-delimited fields of a protobuf message, by number (the first of each)."""
    r, fields = Reader(data), {}
    while r.at < len(data):
        tag = varint(r)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            varint(r)
        elif wire == 2:
            fields.setdefault(number, r.take(varint(r)))
        elif wire == 1:
            r.take(8)
        elif wire == 5:
            r.take(4)
        else:
            fail("the credential's contact bundle does not parse")
    return fields


def varint(r):
    value, shift = 0, 0
    while True:
        byte = r.u(1)
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value
        shift += 7
        if shift > 63:
            fail("the credential's contact bundle does not parse")


def parse_header(data):
    if data[:8] != MAGIC:
        fail("not a backup")
    r = Reader(data)
    r.take(8)
    version = r.u(2)
    if version not in (1, 2):
        fail(f"unsupported version {version}")
    length = r.u(4)
    header = data[:length]
    r = Reader(header)
    r.at = 14
    h = {"length": length, "version": version}
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
    if h["conversations"] != sorted(set(h["conversations"])):
        fail("conversation IDs not strictly ascending")
    for name in ("from_vector", "to_vector"):
        h[name] = {}
        for _ in range(r.u(4)):
            log = r.take(16).hex()
            if h[name] and log <= max(h[name]):
                fail(f"{name} not strictly ascending")
            h[name][log] = r.u(8)
            if h[name][log] == 0:
                fail(f"{name} has a zero sequence")
    h["account"] = None
    if version == 2:
        bundle_length = r.u(4)
        if bundle_length:
            bundle, account_signature = r.take(bundle_length), r.take(64)
            fields = protobuf_bytes_fields(bundle)
            account_key, installation, signing_key = fields.get(1, b""), fields.get(2, b""), fields.get(3, b"")
            if len(account_key) != 32 or len(installation) != 16 or len(signing_key) != 32:
                fail("invalid credential: wrong sizes")
            try:
                Ed25519PublicKey.from_public_bytes(account_key).verify(account_signature, b"keepsake/contact-bundle/v1\x00" + bundle)
            except InvalidSignature:
                fail("invalid credential: the account's signature does not verify")
            if signing_key != h["signer"]:
                fail("invalid credential: it vouches for another signing key")
            h["account"], h["installation"] = account_key.hex(), installation.hex()
    signature = r.take(64)
    if r.at != length:
        fail("header longer than its fields")
    check_header_rules(h)
    try:
        Ed25519PublicKey.from_public_bytes(h["signer"]).verify(signature, header[:-64])
    except InvalidSignature:
        fail("bad signature")
    return h, header


def check_header_rules(h):
    """The document's "Header rules"."""
    if h["kind"] not in (1, 2) or h["cipher"] not in (1, 2) or h["compression"] not in (0, 1) or h["key_source"] not in (1, 2, 3):
        fail("a header field is out of range")
    if not 1024 <= h["chunk_size"] <= 16 << 20 or h["to"] < h["from"]:
        fail("a header field is out of range")
    if h["elements"] == 0 or h["elements"] & ~0xFF:
        fail("elements out of range")
    if h["kind"] == 1 and h["elements"] & ~SOFT:
        fail("a soft backup selects sessions, identity or unknown kinds")
    if h["key_source"] == 2:
        if not (1 <= h["ops"] <= 8 and 8192 <= h["mem"] <= 1 << 30):
            fail("Argon2id limits out of range")
    elif h["ops"] or h["mem"] or any(h["argon_salt"]):
        fail("Argon2id parameters without a passphrase")
    full = h["base_id"] == "00" * 16
    if full and (h["base_hash"] != "00" * 32 or h["from"] != 0 or h["from_vector"]):
        fail("a full backup with a base hash, a from sequence or a from vector")
    if not full and h["base_hash"] == "00" * 32:
        fail("an incremental backup without a base hash")
    if any(h["to_vector"].get(log, 0) < sequence for log, sequence in h["from_vector"].items()):
        fail("the to vector is behind the from vector")


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
    print(f"backup {h['id']} version {h['version']} kind {h['kind']} source {h['source_log']} sequences {h['from']}..{h['to']}"
          f" base {h['base_id'] if h['base_id'] != '00' * 16 else '-'}")
    if h["account"]:
        print(f"signed by installation {h['installation']} of account {h['account']}")
    else:
        print(f"signed by signing key {h['signer'].hex()} (no account credential)")
    print(f"key check {check.hex()} file key {file_key.hex()} associated data {ad.hex()}")
    aead = AESGCM(file_key)
    at, index, events, trailer, head_ends, seen = h["length"], 0, 0, None, 0, set()
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
            if h["compression"] == 0:
                fail(f"chunk {index} is compressed, but the header says never")
            chunk = subprocess.run(["zstd", "-d", "-c", "-q"], input=chunk[1:], capture_output=True, check=True).stdout
        else:
            chunk = chunk[1:]
        chunk_frames = list(frames(chunk))
        if not chunk_frames:
            fail(f"chunk {index} holds no frames")
        for position, (kind, body) in enumerate(chunk_frames):
            if kind == 1:
                r = Reader(body)
                origin, sequence, event_kind = r.take(16).hex(), r.u(8), r.u(4)
                time = struct.unpack("<q", r.take(8))[0]
                flags = r.u(1)
                subject = r.take(r.u(2))
                step = r.u(8) if flags & 0x04 else None
                payload = body[r.at:]
                if not h["elements"] & ELEMENTS.get(event_kind, 0x80):
                    fail(f"event {origin}:{sequence} of kind {event_kind} is of an element the header does not select")
                if sequence > h["to_vector"].get(origin, 0):
                    fail(f"event {origin}:{sequence} lies beyond the to vector")
                if (origin, sequence) in seen:
                    fail(f"event {origin}:{sequence} appears twice")
                seen.add((origin, sequence))
                events += 1
                print(f"event {origin}:{sequence} kind {event_kind} time {time} flags {flags:#04x}"
                      f" subject {subject.hex() or '-'}{'' if step is None else f' step {step}'} payload {len(payload)} bytes")
            elif kind == 2:
                head_ends += 1
                if h["base_id"] != "00" * 16 or head_ends > 1:
                    fail("a head end in an incremental backup, or a second one")
                if h["version"] >= 2 and position != len(chunk_frames) - 1:
                    fail("the head end does not end its chunk")
                print("head end")
            elif kind == 3:
                trailer = int.from_bytes(body, "little")
            else:
                fail(f"unknown frame type {kind}")
        at += 4 + length
        index += 1
    if trailer != events:
        fail(f"trailer says {trailer} events, read {events}")
    if h["version"] >= 2 and h["base_id"] == "00" * 16 and head_ends == 0:
        fail("a full backup without a head end")
    print(f"{events} events in {index} chunks, file hash {hashlib.blake2b(data, digest_size=32).hexdigest()}")


main()
