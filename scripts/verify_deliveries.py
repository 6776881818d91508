#!/usr/bin/env python3
"""Verify captured webhook deliveries with unmodified third-party libraries.

Usage: verify_deliveries.py CAPTURE.jsonl SECRET [SECRET...]

Each line of CAPTURE (written by `veo-relay sink --capture`) holds one delivery's headers and
raw body. Every delivery must verify with the `standardwebhooks` package and with `svix`, using
any of the given secrets. Prints one line per delivery and a closing 'N passed, N failed' line.
"""
import base64
import json
import sys

from standardwebhooks.webhooks import Webhook as StandardWebhook
from svix.webhooks import Webhook as SvixWebhook


def main() -> int:
    capture, secrets = sys.argv[1], sys.argv[2:]
    passed = failed = 0
    with open(capture) as lines:
        for line in lines:
            record = json.loads(line)
            headers, body = record["headers"], base64.b64decode(record["body_base64"])
            for name, verifier in (("standardwebhooks", StandardWebhook), ("svix", SvixWebhook)):
                errors = []
                for secret in secrets:
                    try:
                        # A refusal raises; svix returns None on success, standardwebhooks the payload.
                        verifier(secret).verify(body, headers)
                        break
                    except Exception as error:  # noqa: BLE001 - any refusal counts as a failure
                        errors.append(repr(error))
                else:
                    failed += 1
                    print(f"FAIL {name:16} {headers['webhook-id']}: {errors}")
                    continue
                passed += 1
                event = json.loads(body)
                print(f"ok   {name:16} {headers['webhook-id']} {event['type']} {event['data']['task_id']}")
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
