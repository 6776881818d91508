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

from harness.verify import public_key, verifies_v1a


def main() -> int:
    capture, keys = sys.argv[1], [public_key(text) for text in sys.argv[2:]]
    passed = failed = 0
    with open(capture) as lines:
        for line in lines:
            record = json.loads(line)
            headers, body = record["headers"], base64.b64decode(record["body_base64"])
            entries = sum(1 for entry in headers["webhook-signature"].split(" ") if entry.startswith("v1a,"))
            verified = verifies_v1a(keys, headers, body)
            forged = verifies_v1a(keys, headers, body + b" ")
            event = json.loads(body)
            if verified and not forged:
                passed += 1
                print(f"ok   ed25519 {headers['webhook-id']} {event['type']}")
            else:
                failed += 1
                print(f"FAIL ed25519 {headers['webhook-id']} {event['type']}: {entries} v1a entries, verified={verified}, "
                      f"tampered body verified={forged}")
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
