"""A stand-in for the AWS Marketplace seller APIs (JSON 1.1) for the AWS client's tests.

Every request must be signed (SigV4, signing name aws-marketplace) by a known key: the
signature is recomputed by botocore over the headers the request lists in SignedHeaders,
as AWS does. Unknown key -> UnrecognizedClientException; wrong signature -> InvalidSignatureException.

Behaviour by input (deterministic, for tests):
  ResolveCustomer  "good-token" -> a customer; "expired-token" -> ExpiredTokenException;
                   "throttle-N-<id>" -> ThrottlingException (via X-Amzn-Errortype) N times, then a customer;
                   "broken" -> InternalServiceErrorException, always; anything else -> InvalidTokenException
  GetEntitlements  three pages: two entitlements, an empty page that still has a NextToken, one more
  BatchMeterUsage  Success for every record, DuplicateRecord for a repeated one
  GET /calls       how many calls each target received, as JSON
"""
import argparse
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

KEYS = {"AKIDSELLEREXAMPLE": "seller-secret-key-example"}
PRODUCT = "prod-committed-123"
lock = threading.Lock()
calls = {}
throttled = {}
metered = set()


def verify(handler, body):
    authorization = handler.headers.get("Authorization", "")
    try:
        credential = authorization.split("Credential=")[1].split(",")[0]
        access_key, day, region, service, _ = credential.split("/")
        signed_headers = authorization.split("SignedHeaders=")[1].split(",")[0].split(";")
        signature = authorization.split("Signature=")[1].strip()
    except (IndexError, ValueError):
        return ("MissingAuthenticationTokenException", "Request is missing Authentication Token")
    if access_key not in KEYS:
        return ("UnrecognizedClientException", "The security token included in the request is invalid.")
    request = AWSRequest(method="POST", url=f"http://{handler.headers['Host']}{handler.path}", data=body)
    for name in signed_headers:
        request.headers[name] = handler.headers.get(name, "")
    request.context["timestamp"] = handler.headers.get("X-Amz-Date", "")
    signer = botocore.auth.SigV4Auth(Credentials(access_key, KEYS[access_key], handler.headers.get("X-Amz-Security-Token")),
                                     service, region)
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    if expected != signature:
        return ("InvalidSignatureException", "The request signature we calculated does not match the signature you provided.")
    return None


def customer():
    return {"CustomerIdentifier": "cust-abc123", "CustomerAWSAccountId": "123456789012", "ProductCode": PRODUCT,
            "LicenseArn": "arn:aws:license-manager::123456789012:license:l-1"}


def entitlement(dimension, value):
    return {"ProductCode": PRODUCT, "Dimension": dimension, "CustomerIdentifier": "cust-abc123",
            "CustomerAWSAccountId": "123456789012", "Value": {"IntegerValue": value},
            "ExpirationDate": 1798761600, "LicenseArn": "arn:aws:license-manager::123456789012:license:l-1"}


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, status, payload, error_header=None):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(data)))
        if error_header:
            self.send_header("X-Amzn-Errortype", error_header)
        self.end_headers()
        self.wfile.write(data)

    def error(self, status, name, message, via_header=False):
        if via_header:
            self.reply(status, {"message": message}, error_header=f"{name}:http://internal.amazon.com/coral/")
        else:
            self.reply(status, {"__type": f"com.amazonaws.marketplace#{name}", "message": message})

    def do_GET(self):
        with lock:
            self.reply(200, dict(calls))

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        failure = verify(self, body)
        if failure:
            return self.error(400 if failure[0] != "InvalidSignatureException" else 403, *failure)
        target = self.headers.get("X-Amz-Target", "")
        with lock:
            calls[target] = calls.get(target, 0) + 1
        request = json.loads(body or b"{}")
        if target == "AWSMPMeteringService.ResolveCustomer":
            token = request.get("RegistrationToken", "")
            if token == "good-token":
                return self.reply(200, customer())
            if token == "expired-token":
                return self.error(400, "ExpiredTokenException", "Registration token is expired")
            if token == "broken":
                return self.error(500, "InternalServiceErrorException", "internal failure")
            if token.startswith("throttle-"):
                limit = int(token.split("-")[1])
                with lock:
                    seen = throttled.get(token, 0)
                    throttled[token] = seen + 1
                if seen < limit:
                    return self.error(400, "ThrottlingException", "Rate exceeded", via_header=True)
                return self.reply(200, customer())
            return self.error(400, "InvalidTokenException", "Registration token is invalid")
        if target == "AWSMPEntitlementService.GetEntitlements":
            if request.get("ProductCode") != PRODUCT:
                return self.error(400, "InvalidParameterException", "unknown product")
            pages = {None: ([entitlement("seats", 10), entitlement("storage", 500)], "page-2"),
                     "page-2": ([], "page-3"),
                     "page-3": ([entitlement("compute", 7)], None)}
            items, next_token = pages.get(request.get("NextToken"), ([], None))
            payload = {"Entitlements": items}
            if next_token:
                payload["NextToken"] = next_token
            return self.reply(200, payload)
        if target == "AWSMPMeteringService.BatchMeterUsage":
            results = []
            for record in request.get("UsageRecords", []):
                key = (record.get("CustomerIdentifier"), record.get("Dimension"), record.get("Timestamp"))
                with lock:
                    duplicate = key in metered
                    metered.add(key)
                results.append({"UsageRecord": record, "MeteringRecordId": f"mr-{len(metered)}",
                                "Status": "DuplicateRecord" if duplicate else "Success"})
            return self.reply(200, {"Results": results, "UnprocessedRecords": []})
        return self.error(400, "UnknownOperationException", f"unknown target {target}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print("PORT", server.server_address[1], flush=True)
    server.serve_forever()
