#!/usr/bin/env python3
"""Verify captured v1a (Ed25519) deliveries with an independent implementation, PyPI `cryptography`.

Usage: verify_v1a.py CAPTURE.jsonl whpk_PUBLICKEY [whpk_...]

Built from the Standard Webhooks spec alone: the signed content is `{webhook-id}.{webhook-timestamp}.{body}`,
each `v1a,<base64>` entry of `webhook-signature` is an Ed25519 signature over it, and a `whpk_` key is
base64 of the raw 32-byte public key. Every delivery must carry a `v1a` entry that one of the keys
verifies. Prints one line per delivery and a closing 'N passed, N failed' line.
"""
import base64
import json
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def public_key(text: str) -> Ed25519PublicKey:
    if not text.startswith("whpk_"):
        raise ValueError(f"not a whpk_ key: {text[:8]}…")
    return Ed25519PublicKey.from_public_bytes(base64.b64decode(text[len("whpk_"):]))


def main() -> int:
    capture, keys = sys.argv[1], [public_key(text) for text in sys.argv[2:]]
    passed = failed = 0
    with open(capture) as lines:
        for line in lines:
            record = json.loads(line)
            headers, body = record["headers"], base64.b64decode(record["body_base64"])
            content = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
            signatures = [base64.b64decode(entry[len("v1a,"):]) for entry in headers["webhook-signature"].split(" ")
                          if entry.startswith("v1a,")]
            verified = False
            for key in keys:
                for signature in signatures:
                    try:
                        key.verify(signature, content)
                        verified = True
                    except InvalidSignature:
                        pass
            tampered = content + b" "
            forged = any(_verifies(key, signature, tampered) for key in keys for signature in signatures)
            event = json.loads(body)
            if verified and not forged:
                passed += 1
                print(f"ok   ed25519 {headers['webhook-id']} {event['type']}")
            else:
                failed += 1
                print(f"FAIL ed25519 {headers['webhook-id']} {event['type']}: {len(signatures)} v1a entries, verified={verified}, "
                      f"tampered body verified={forged}")
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 and passed > 0 else 1


def _verifies(key: Ed25519PublicKey, signature: bytes, content: bytes) -> bool:
    try:
        key.verify(signature, content)
        return True
    except InvalidSignature:
        return False


if __name__ == "__main__":
    sys.exit(main())
