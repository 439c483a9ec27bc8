"""An Amazon SNS HTTP endpoint for tests: verifies every message's signature with Python's
`cryptography` against the certificate at its SigningCertURL, confirms subscriptions by fetching
SubscribeURL, and records what arrived.

  --port N          0 = any; prints "PORT <n>"
  --fail-first N    answer the first N deliveries with 500 (the sender must retry)
  GET /received     the accepted messages, in order, as JSON
"""
import argparse
import base64
import json
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

lock = threading.Lock()
received = []
state = {"failures_left": 0}


def string_to_sign(message):
    if message["Type"] == "Notification":
        keys = ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
    else:
        keys = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
    return "".join(f"{key}\n{message[key]}\n" for key in keys if key in message).encode()


def verifies(message):
    if not message.get("SigningCertURL", "").startswith("http://127.0.0.1:"):
        return False  # only the local simulator is a trusted certificate host here
    pem = urllib.request.urlopen(message["SigningCertURL"], timeout=5).read()
    key = x509.load_pem_x509_certificate(pem).public_key()
    digest = hashes.SHA256() if message.get("SignatureVersion") == "2" else hashes.SHA1()
    try:
        key.verify(base64.b64decode(message["Signature"]), string_to_sign(message), padding.PKCS1v15(), digest)
        return True
    except InvalidSignature:
        return False


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, status, payload=b""):
        self.send_response(status)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self):
        with lock:
            self.answer(200, json.dumps(received).encode())

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with lock:
            if state["failures_left"] > 0:
                state["failures_left"] -= 1
                return self.answer(500)
        message = json.loads(body)
        tampered = dict(message, Message=message["Message"] + " ")
        record = {"Type": message["Type"], "MessageId": message["MessageId"], "verified": verifies(message),
                  "tamperedVerified": verifies(tampered), "header": self.headers.get("x-amz-sns-message-type")}
        if message["Type"] == "Notification":
            record.update(json.loads(message["Message"]))
        elif message["Type"] == "SubscriptionConfirmation":
            record["confirmed"] = urllib.request.urlopen(message["SubscribeURL"], timeout=5).status == 200
        with lock:
            received.append(record)
        self.answer(200)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--fail-first", type=int, default=0)
    args = parser.parse_args()
    state["failures_left"] = args.fail_first
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print("PORT", server.server_address[1], flush=True)
    server.serve_forever()
