"""Signs Amazon SNS messages the way SNS does, with Python's `cryptography`: an independent signer
for marketplace-link's verifier.

  sns_sign.py KEY.pem IN.json   IN.json: [{"version": "1" | "2", "message": {...}}, ...]
  prints the signed messages as a JSON list (SignatureVersion and Signature added)
"""
import base64
import json
import sys

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from sns_receiver import string_to_sign  # the one canonical-string rule of the fixtures


def main():
    with open(sys.argv[1], "rb") as handle:
        key = serialization.load_pem_private_key(handle.read(), password=None)
    with open(sys.argv[2]) as handle:
        requests = json.load(handle)
    signed = []
    for request in requests:
        message = dict(request["message"])
        digest = hashes.SHA1() if request["version"] == "1" else hashes.SHA256()
        message["SignatureVersion"] = request["version"]
        message["Signature"] = base64.b64encode(key.sign(string_to_sign(message), padding.PKCS1v15(), digest)).decode()
        signed.append(message)
    print(json.dumps(signed))


if __name__ == "__main__":
    main()
