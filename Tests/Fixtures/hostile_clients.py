"""Hostile clients for the memory-bound tests: each tries to make one server connection hold
more and more memory. Written against the protocols, not our code: raw sockets and the `h2`
library's frame and HPACK encoders.

  hostile_clients.py MODE HOST PORT SECONDS

Modes:
  http1-pipeline  pipelined GET /healthz requests as fast as the socket takes them, never reading
  h2-flood        small HPACK-indexed HEADERS-only requests (Health/Check) with the receive
                  window opened wide, never reading
  h2-bodies       as many streams as the server allows, each sending a body just under 1 MiB
                  that never ends (reading only to learn of window updates)

Prints one JSON line when the time is up: {"mode", "sent_bytes", "requests"}.
"""
import json
import select
import socket
import sys
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from hpack import Encoder


def connect(host, port):
    sock = socket.create_connection((host, port))
    # A small receive buffer: what the server sends piles up on its side, not ours.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    return sock


def send_until(sock, data_source, deadline):
    """Sends what data_source() yields whenever the socket takes more, until the deadline."""
    sent = 0
    count = 0
    pending = b""
    while time.time() < deadline:
        if not pending:
            pending = data_source()
            count += 1
        _, writable, _ = select.select([], [sock], [], 0.2)
        if not writable:
            continue
        try:
            n = sock.send(pending)
        except (BlockingIOError, InterruptedError):
            continue
        except OSError:
            break  # the server closed the connection: that is one way to bound memory
        sent += n
        pending = pending[n:]
    return sent, count


def http1_pipeline(host, port, seconds):
    sock = connect(host, port)
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" * 64
    sent, count = send_until(sock, lambda: request, time.time() + seconds)
    return {"sent_bytes": sent, "requests": count * 64}


def frame(kind, flags, stream_id, payload):
    return len(payload).to_bytes(3, "big") + bytes([kind, flags]) + stream_id.to_bytes(4, "big") + payload


def h2_flood(host, port, seconds):
    sock = connect(host, port)
    preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
    # SETTINGS: initial window 2^31-1 (id 4); then widen the connection window as far as it goes.
    settings = frame(0x4, 0, 0, (4).to_bytes(2, "big") + (2**31 - 1).to_bytes(4, "big"))
    window = frame(0x8, 0, 0, (2**31 - 1 - 65535).to_bytes(4, "big"))
    encoder = Encoder()
    headers = [(":method", "POST"), (":scheme", "http"), (":authority", "x"),
               (":path", "/grpc.health.v1.Health/Check"), ("content-type", "application/json")]
    state = {"stream": 1, "first": preface + settings + window}

    def next_batch():
        batch = state.pop("first", b"")
        for _ in range(64):
            block = encoder.encode(headers)  # indexed after the first: a few bytes each
            batch += frame(0x1, 0x5, state["stream"], block)  # END_STREAM | END_HEADERS
            state["stream"] += 2
            if state["stream"] >= 2**31:
                state["stream"] = 1
        return batch

    sent, count = send_until(sock, next_batch, time.time() + seconds)
    return {"sent_bytes": sent, "requests": count * 64}


def h2_bodies(host, port, seconds):
    sock = connect(host, port)
    sock.setblocking(True)
    sock.settimeout(0.2)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    deadline = time.time() + seconds
    body_limit = (1 << 20) - 1
    remaining = {}
    sent = 0

    def pump():
        try:
            data = sock.recv(65536)
        except socket.timeout:
            return True
        except OSError:
            return False
        if not data:
            return False
        try:
            for event in conn.receive_data(data):
                if isinstance(event, (h2.events.StreamReset, h2.events.StreamEnded)):
                    remaining.pop(event.stream_id, None)
        except h2.exceptions.ProtocolError:
            return False
        return True

    pump()  # the server's SETTINGS
    while time.time() < deadline:
        # Open streams up to the server's limit.
        while conn.open_outbound_streams < conn.remote_settings.max_concurrent_streams:
            stream_id = conn.get_next_available_stream_id()
            conn.send_headers(stream_id, [(":method", "POST"), (":scheme", "http"), (":authority", "x"),
                                          (":path", "/grpc.health.v1.Health/Check"), ("content-type", "application/json")])
            remaining[stream_id] = body_limit
        progressed = False
        for stream_id in list(remaining):
            allowed = min(remaining[stream_id], conn.local_flow_control_window(stream_id), conn.max_outbound_frame_size)
            if allowed > 0:
                conn.send_data(stream_id, b"a" * allowed)
                remaining[stream_id] -= allowed
                sent += allowed
                progressed = True
        try:
            sock.sendall(conn.data_to_send())
        except OSError:
            break
        if not pump():
            break  # the server closed the connection
        if not progressed:
            time.sleep(0.05)
    return {"sent_bytes": sent, "requests": conn.highest_outbound_stream_id // 2 + 1 if conn.highest_outbound_stream_id else 0}


def main():
    mode, host, port, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    modes = {"http1-pipeline": http1_pipeline, "h2-flood": h2_flood, "h2-bodies": h2_bodies}
    result = modes[mode](host, port, seconds)
    result["mode"] = mode
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
