"""Standard Webhooks `v1a` checks built from the spec alone, with PyPI `cryptography`: the signed content is
`{webhook-id}.{webhook-timestamp}.{body}`, each `v1a,<base64>` entry of `webhook-signature` is an Ed25519
signature over it, and a `whpk_` key is base64 of the raw 32-byte public key."""
import base64

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def public_key(text):
    if not text.startswith("whpk_"):
        raise ValueError(f"not a whpk_ key: {text[:8]}…")
    return Ed25519PublicKey.from_public_bytes(base64.b64decode(text[len("whpk_"):]))


def verifies_v1a(keys, headers, body):
    """Whether one of `keys` (whpk_ texts or keys) verifies some v1a entry of the delivery."""
    keys = [public_key(key) if isinstance(key, str) else key for key in keys]
    content = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    for entry in headers.get("webhook-signature", "").split(" "):
        if not entry.startswith("v1a,"):
            continue
        signature = base64.b64decode(entry[len("v1a,"):])
        for key in keys:
            try:
                key.verify(signature, content)
                return True
            except InvalidSignature:
                pass
    return False
