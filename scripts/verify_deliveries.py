#!/usr/bin/env python3
"""Verify captured webhook deliveries with unmodified third-party libraries.

Usage: verify_deliveries.py CAPTURE.jsonl [SECRET...]

Each line of CAPTURE (written by `veo-relay sink --capture`) holds one delivery's headers and
raw body. Every delivery must verify with the `standardwebhooks` package and with `svix`, using
any of the given secrets (without secrets, signatures are not checked), and its body must validate (with `jsonschema`) against the schema the
OpenAPI document's `webhooks:` section gives its event type. Prints one line per check and a
closing 'N passed, N failed' line.
"""
import base64
import json
import os
import sys

import jsonschema
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from standardwebhooks.webhooks import Webhook as StandardWebhook
from svix.webhooks import Webhook as SvixWebhook

OPENAPI = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Sources", "VeoRelay", "API", "openapi.yaml")
BASE = "urn:veo-relay:openapi"


def webhook_validators():
    """One validator per event type, each the webhook's request body schema, refs resolved in the document."""
    with open(OPENAPI) as file:
        document = yaml.safe_load(file)
    registry = Registry().with_resource(BASE, Resource.from_contents(document, default_specification=DRAFT202012))
    return {
        name: jsonschema.Draft202012Validator(
            {"$ref": f"{BASE}#/webhooks/{name}/post/requestBody/content/application~1json/schema"}, registry=registry)
        for name in document["webhooks"]
    }


def main() -> int:
    capture, secrets = sys.argv[1], sys.argv[2:]
    validators = webhook_validators()
    passed = failed = 0
    with open(capture) as lines:
        for line in lines:
            record = json.loads(line)
            headers, body = record["headers"], base64.b64decode(record["body_base64"])
            event = json.loads(body)
            subject = event.get("data", {}).get("task_id", "")
            for name, verifier in (("standardwebhooks", StandardWebhook), ("svix", SvixWebhook)) if secrets else ():
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
                print(f"ok   {name:16} {headers['webhook-id']} {event['type']} {subject}")
            validator = validators.get(event.get("type"))
            problems = [error.message for error in validator.iter_errors(event)] if validator else ["no webhook schema for this type"]
            if problems:
                failed += 1
                print(f"FAIL {'schema':16} {headers['webhook-id']} {event.get('type')}: {problems}")
            else:
                passed += 1
                print(f"ok   {'schema':16} {headers['webhook-id']} {event['type']} {subject}")
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
