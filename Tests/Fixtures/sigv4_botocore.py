"""Signs requests with botocore's SigV4Auth and prints what it computed, for parity tests.

stdin: a JSON list of {"method", "url", "headers": [[name, value], ...], "body" (text),
"accessKey", "secretKey", "token" (or null), "region", "service", "timestamp" (YYYYMMDDTHHMMSSZ)}.
stdout: a JSON list of {"canonicalRequest", "stringToSign", "signature", "authorization"}.
"""
import datetime
import json
import sys
from unittest import mock

import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


def sign(case):
    fixed = datetime.datetime.strptime(case["timestamp"], "%Y%m%dT%H%M%SZ")
    request = AWSRequest(method=case["method"], url=case["url"], data=case["body"].encode())
    for name, value in case["headers"]:
        request.headers[name] = value
    signer = botocore.auth.SigV4Auth(Credentials(case["accessKey"], case["secretKey"], case.get("token")),
                                     case["service"], case["region"])
    # The steps of SigV4Auth.add_auth, keeping what each computes.
    request.context["timestamp"] = fixed.strftime(botocore.auth.SIGV4_TIMESTAMP)
    signer._modify_request_before_signing(request)
    canonical = signer.canonical_request(request)
    string_to_sign = signer.string_to_sign(request, canonical)
    signature = signer.signature(string_to_sign, request)
    # And add_auth itself, under a fixed clock, must agree.
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=fixed):
        signer.add_auth(request)
    assert request.headers["Authorization"].endswith("Signature=" + signature)
    return {
        "canonicalRequest": canonical,
        "stringToSign": string_to_sign,
        "signature": signature,
        "authorization": request.headers["Authorization"],
    }


if __name__ == "__main__":
    print(json.dumps([sign(case) for case in json.load(sys.stdin)]))
