#!/usr/bin/env python3
"""An independent reader of Keepsake backup files, written from docs/BACKUP-FORMAT.md.

Usage: read-backup.py KEY_FILE BACKUP_FILE
       read-backup.py --corpus DIR     (Tests/Fixtures/backup-corpus: every case of its manifest.json)
Reads format versions 1 and 2. Prints the header (and, in version 2, who
signed it), then one line per event, then the file hash. Exits non-zero with a
message on any check that fails, the document's header and content rules included. Needs Python 3, the `cryptography`
package and the `zstd` command (Debian: python3-cryptography, zstd).
Files sealed with a recovery phrase need the BIP-39 English word list, which
this reader does not carry: the corpus mode skips them, and says so.
"""
import hashlib
import json
import os
import struct
import subprocess
import sys
import unicodedata

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

MAGIC = bytes([0x89, 0x4B, 0x53, 0x42, 0x41, 0x4B, 0x0D, 0x0A])
SOFT = 0x1F
# "Elements and event kinds": the element bit of every kind the format names.
ELEMENTS = {1: 0x01, 6: 0x01, 12: 0x01, 2: 0x02, 3: 0x02, 4: 0x02, 5: 0x02, 8: 0x04, 9: 0x04, 18: 0x04,
            10: 0x08, 11: 0x10, 7: 0x20, 19: 0x20, 13: 0x40, 14: 0x40, 15: 0x40, 16: 0x40, 17: 0x40, 20: 0x40, 21: 0x40}


class Refused(Exception):
    """The file breaks the format; the message says how."""


class Unsupported(Exception):
    """The file needs something this reader does not do."""


def fail(message):
    raise Refused(message)


def read_key(path):
    return key_file_bytes(open(path, "rb").read())


def key_file_bytes(raw):
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
    h["conversation_kinds"] = r.u(1) if version == 2 else 0
    if h["conversation_kinds"] & ~0x03:
        fail("conversation kinds out of range")
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


def derive_key(key, h):
    """The backup key K for header h. `key` is 32 raw bytes, or ("passphrase", text)."""
    if isinstance(key, tuple):
        if h["key_source"] != 2:
            fail("a passphrase was given, the file needs another kind of key")
        text = key[1] if h["version"] == 1 else unicodedata.normalize("NFKD", key[1])
        kdf = Argon2id(salt=h["argon_salt"], length=32, iterations=h["ops"], lanes=1, memory_cost=h["mem"] // 1024)
        return kdf.derive(text.encode("utf-8"))
    if h["key_source"] == 2:
        fail("the file needs a passphrase")
    return key


def hchacha20(key, nonce16):
    """HChaCha20 (draft-irtf-cfrg-xchacha): the subkey of XChaCha20."""
    def rotl(v, c):
        return ((v << c) & 0xFFFFFFFF) | (v >> (32 - c))

    def quarter(x, a, b, c, d):
        x[a] = (x[a] + x[b]) & 0xFFFFFFFF; x[d] = rotl(x[d] ^ x[a], 16)
        x[c] = (x[c] + x[d]) & 0xFFFFFFFF; x[b] = rotl(x[b] ^ x[c], 12)
        x[a] = (x[a] + x[b]) & 0xFFFFFFFF; x[d] = rotl(x[d] ^ x[a], 8)
        x[c] = (x[c] + x[d]) & 0xFFFFFFFF; x[b] = rotl(x[b] ^ x[c], 7)

    x = list(struct.unpack("<4I", b"expand 32-byte k")) + list(struct.unpack("<8I", key)) + list(struct.unpack("<4I", nonce16))
    for _ in range(10):
        quarter(x, 0, 4, 8, 12); quarter(x, 1, 5, 9, 13); quarter(x, 2, 6, 10, 14); quarter(x, 3, 7, 11, 15)
        quarter(x, 0, 5, 10, 15); quarter(x, 1, 6, 11, 12); quarter(x, 2, 7, 8, 13); quarter(x, 3, 4, 9, 14)
    return struct.pack("<8I", *(x[0:4] + x[12:16]))


def open_chunk(h, file_key, nonce, sealed, ad):
    if h["cipher"] == 1:
        return AESGCM(file_key).decrypt(nonce[:12], sealed, ad)
    return ChaCha20Poly1305(hchacha20(file_key, nonce[:16])).decrypt(bytes(4) + nonce[16:24], sealed, ad)


def read_file(key, data, out=print):
    """Reads one backup file with `key`; raises Refused on any broken rule. Returns the event count."""
    h, header = parse_header(data)
    if h["key_source"] == 3 and not isinstance(key, bytes):
        raise Unsupported("recovery phrases need the BIP-39 word list")
    key = derive_key(key, h)
    check = hashlib.blake2b(b"keepsake backup v1 key check", digest_size=16, key=key).digest()
    if check != h["key_check"]:
        fail("wrong key")
    file_key = hashlib.blake2b(b"keepsake backup v1 file key" + h["file_salt"], digest_size=32, key=key).digest()
    ad = hashlib.blake2b(header, digest_size=32).digest()
    out(f"backup {h['id']} version {h['version']} kind {h['kind']} source {h['source_log']} sequences {h['from']}..{h['to']}"
        f" base {h['base_id'] if h['base_id'] != '00' * 16 else '-'}")
    if h["account"]:
        out(f"signed by installation {h['installation']} of account {h['account']}")
    else:
        out(f"signed by signing key {h['signer'].hex()} (no account credential)")
    out(f"key check {check.hex()} file key {file_key.hex()} associated data {ad.hex()}")
    nonce_length = 12 if h["cipher"] == 1 else 24
    at, index, events, trailer, head_ends, seen, keys = h["length"], 0, 0, None, 0, set(), 0
    while at < len(data):
        length = int.from_bytes(data[at:at + 4], "little")
        sealed = data[at + 4:at + 4 + length]
        if len(sealed) != length:
            fail(f"truncated after chunk {index - 1}")
        final = at + 4 + length == len(data)
        nonce = struct.pack("<Q", index) + bytes([1 if final else 0]) + bytes(nonce_length - 9)
        if length <= 16:
            fail(f"chunk {index} length out of range")
        try:
            chunk = open_chunk(h, file_key, nonce, sealed, ad)
        except InvalidTag:
            fail(f"chunk {index} does not authenticate")
        if chunk[0] == 1:
            if h["compression"] == 0:
                fail(f"chunk {index} is compressed, but the header says never")
            unpacked = subprocess.run(["zstd", "-d", "-c", "-q"], input=chunk[1:], capture_output=True)
            if unpacked.returncode != 0:
                fail(f"chunk {index} does not decompress")
            chunk = unpacked.stdout
        elif chunk[0] == 0:
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
                if event_kind == 13 and not flags & 0x01:
                    if protobuf_bytes_fields(payload).get(3) != h["signer"]:
                        fail(f"event {origin}:{sequence} holds the keys of another installation than the signer")
                    keys += 1
                events += 1
                out(f"event {origin}:{sequence} kind {event_kind} time {time} flags {flags:#04x}"
                      f" subject {subject.hex() or '-'}{'' if step is None else f' step {step}'} payload {len(payload)} bytes")
            elif kind == 2:
                head_ends += 1
                if h["base_id"] != "00" * 16 or head_ends > 1:
                    fail("a head end in an incremental backup, or a second one")
                if h["version"] >= 2 and position != len(chunk_frames) - 1:
                    fail("the head end does not end its chunk")
                out("head end")
            elif kind == 3:
                if not final or position != len(chunk_frames) - 1 or len(body) != 8:
                    fail("a trailer that is not the file's last frame")
                trailer = int.from_bytes(body, "little")
            else:
                fail(f"unknown frame type {kind}")
        at += 4 + length
        index += 1
    if trailer != events:
        fail(f"trailer says {trailer} events, read {events}")
    if h["version"] >= 2 and h["base_id"] == "00" * 16 and head_ends == 0:
        fail("a full backup without a head end")
    if keys > 1:
        fail("the installation's keys more than once")
    if h["kind"] == 2 and h["base_id"] == "00" * 16 and h["elements"] & 0x40 and keys == 0:
        fail("a full hard backup without the signer's installation keys")
    out(f"{events} events in {index} chunks, file hash {hashlib.blake2b(data, digest_size=32).hexdigest()}")
    return events


def corpus(folder):
    """Reads every case of the corpus manifest; valid files must read, invalid ones be refused."""
    manifest = json.load(open(os.path.join(folder, "manifest.json")))
    keys, mismatches, read, skipped = {}, [], 0, []
    for name, spec in manifest["keys"].items():
        kind, _, value = spec.partition(":")
        keys[name] = bytes.fromhex(value) if kind == "raw" else ("passphrase", value) if kind == "passphrase" else None
    for case in manifest["cases"]:
        key = keys[case["key"]]
        if key is None:
            skipped.append(f"{case['name']} (recovery phrase)")
            continue
        if case.get("error") is not None and not case["singleFile"]:
            skipped.append(f"{case['name']} (a chain link)")
            continue
        outcomes = []
        for path in case["files"]:
            try:
                outcomes.append(read_file(key, open(os.path.join(folder, path), "rb").read(), out=lambda _: None))
            except Refused as refusal:
                outcomes.append(refusal)
            except Unsupported as reason:
                outcomes.append(reason)
        read += 1
        if case.get("error") is None and outcomes != case["events"]:
            mismatches.append(f"{case['name']}: expected {case['events']} events, got {outcomes}")
        if case.get("error") is not None and not any(isinstance(o, Refused) for o in outcomes):
            mismatches.append(f"{case['name']}: expected a refusal ({case['error']}), but it read")
    for line in mismatches:
        print(f"MISMATCH {line}")
    print(f"corpus: {read} cases read, {len(skipped)} skipped: {', '.join(skipped) or 'none'}")
    if mismatches:
        sys.exit(1)
    print("corpus: every case as the manifest says")


def main():
    try:
        if len(sys.argv) == 3 and sys.argv[1] == "--corpus":
            corpus(sys.argv[2])
        elif len(sys.argv) == 3:
            read_file(read_key(sys.argv[1]), open(sys.argv[2], "rb").read())
        else:
            sys.exit("usage: read-backup.py KEY_FILE BACKUP_FILE | read-backup.py --corpus DIR")
    except (Refused, Unsupported) as error:
        sys.exit(f"read-backup: {error}")


main()
