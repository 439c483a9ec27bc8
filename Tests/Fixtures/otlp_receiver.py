#!/usr/bin/env python3
"""An OTLP/HTTP trace receiver we did not write the decoder of: the `opentelemetry-proto`
package's ExportTraceServiceRequest parses what the services export (protobuf or JSON), and
every span is written as one JSON line to --out.

    otlp_receiver.py --out spans.jsonl [--port 0]
    otlp_receiver.py --discard [--port 0]     (benchmarks: count the exports, decode nothing)
    ... [--tls-cert server.pem --tls-key server.key [--tls-client-ca ca.pem]]   (https; with a CA,
        only clients presenting a certificate it signed)

Prints `PORT <n>` once it listens on 127.0.0.1. POST /_mode with a body of `ok`, `slow`
(hold each export for --slow-seconds, then answer) or `fail` (503) changes how it answers;
GET /_stats says how many requests and spans it took.
"""
import argparse
import json
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

KINDS = {0: "unspecified", 1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}


def value_of(any_value):
    kind = any_value.WhichOneof("value")
    if kind is None:
        return None
    value = getattr(any_value, kind)
    if kind == "array_value":
        return [value_of(item) for item in value.values]
    if kind == "kvlist_value":
        return {item.key: value_of(item.value) for item in value.values}
    if kind == "bytes_value":
        return value.hex()
    return value


def spans_of(request):
    for resource_spans in request.resource_spans:
        resource = {a.key: value_of(a.value) for a in resource_spans.resource.attributes}
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                yield {
                    "service": resource.get("service.name"),
                    "trace_id": span.trace_id.hex(),
                    "span_id": span.span_id.hex(),
                    "parent_span_id": span.parent_span_id.hex(),
                    "name": span.name,
                    "kind": KINDS.get(span.kind, str(span.kind)),
                    "start_ns": span.start_time_unix_nano,
                    "end_ns": span.end_time_unix_nano,
                    "status": span.status.code,
                    "status_message": span.status.message,
                    "trace_state": span.trace_state,
                    "attributes": {a.key: value_of(a.value) for a in span.attributes},
                    "events": [e.name for e in span.events],
                    "event_attributes": [{a.key: value_of(a.value) for a in e.attributes} for e in span.events],
                    "dropped_events": span.dropped_events_count,
                    "links": [{"trace_id": l.trace_id.hex(), "span_id": l.span_id.hex(), "trace_state": l.trace_state} for l in span.links],
                    "dropped_links": span.dropped_links_count,
                    "resource": resource,
                    "scope": scope_spans.scope.name,
                }


class State:
    def __init__(self, out, slow_seconds):
        self.out = open(out, "a", buffering=1) if out else None
        self.slow_seconds = slow_seconds
        self.mode = "ok"
        self.requests = 0
        self.spans = 0
        self.lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state = None

    def log_message(self, *args):
        pass

    def answer(self, status, body=b"", content_type="text/plain"):
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/_stats":
            with self.state.lock:
                stats = {"mode": self.state.mode, "requests": self.state.requests, "spans": self.state.spans}
            return self.answer(200, json.dumps(stats).encode(), "application/json")
        self.answer(404)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        if self.path == "/_mode":
            mode = body.decode().strip()
            if mode not in ("ok", "slow", "fail"):
                return self.answer(400, b"mode is ok, slow or fail\n")
            with self.state.lock:
                self.state.mode = mode
            return self.answer(200, b"ok\n")
        if self.path != "/v1/traces":
            return self.answer(404)
        mode = self.state.mode
        if mode == "slow":
            time.sleep(self.state.slow_seconds)
        if mode == "fail":
            return self.answer(503, b"unavailable\n")
        if self.state.out is None:
            with self.state.lock:
                self.state.requests += 1
            return self.answer(200, b"", "application/x-protobuf")
        request = trace_service_pb2.ExportTraceServiceRequest()
        content_type = self.headers.get("content-type", "")
        try:
            if content_type.startswith("application/json"):
                json_format.Parse(body, request)
            else:
                request.ParseFromString(body)
        except Exception as error:  # a malformed export is the exporter's bug: say so
            print(f"undecodable export ({content_type}): {error}", file=sys.stderr, flush=True)
            return self.answer(400, b"undecodable\n")
        lines = [json.dumps(span) for span in spans_of(request)]
        with self.state.lock:
            self.state.requests += 1
            self.state.spans += len(lines)
            for line in lines:
                self.state.out.write(line + "\n")
        response = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
        self.answer(200, response, "application/x-protobuf")


def main():
    parser = argparse.ArgumentParser()
    output = parser.add_mutually_exclusive_group(required=True)
    output.add_argument("--out")
    output.add_argument("--discard", action="store_true")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--slow-seconds", type=float, default=30)
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    parser.add_argument("--tls-client-ca")
    args = parser.parse_args()
    Handler.state = State(args.out, args.slow_seconds)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    if args.tls_cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        if args.tls_client_ca:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(args.tls_client_ca)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    server.daemon_threads = True
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
