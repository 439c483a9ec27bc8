"""Calls a Connect server with HTTP clients not built on nghttp2, and prints one JSON line.

  py_clients.py h2c   URL PATH BODY          pure-Python `h2` over a plain socket (prior knowledge)
  py_clients.py http1 URL PATH BODY          httpx, HTTP/1.1
  py_clients.py tls   URL PATH BODY CAFILE [CERT KEY]   httpx with http2=True over TLS (ALPN h2)
  py_clients.py garbage HOST PORT            sends bytes that are not a preface; reports if closed
  py_clients.py hangup HOST PORT PATH BODY   sends a request over h2c and disconnects at once
  py_clients.py declare-large HOST PORT PATH  HTTP/1.1 headers announcing a 2 MiB body, and no body:
                                             reports the status line that came back, if any
"""
import json
import socket
import sys
import time


def h2c(url, path, body):
    import h2.config
    import h2.connection
    import h2.events
    host, port = url.split("//")[1].split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    headers = [(":method", "POST"), (":scheme", "http"), (":authority", f"{host}:{port}"), (":path", path),
               ("content-type", "application/json"), ("connect-protocol-version", "1")]
    stream_id = conn.get_next_available_stream_id()
    conn.send_headers(stream_id, headers, end_stream=not body)
    if body:
        conn.send_data(stream_id, body.encode(), end_stream=True)
    sock.sendall(conn.data_to_send())
    status, data, done = None, b"", False
    while not done:
        chunk = sock.recv(65536)
        if not chunk:
            break
        for event in conn.receive_data(chunk):
            if isinstance(event, h2.events.ResponseReceived):
                status = int(dict(event.headers)[":status"])
            elif isinstance(event, h2.events.DataReceived):
                data += event.data
                conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                done = True
        sock.sendall(conn.data_to_send())
    sock.close()
    return {"status": status, "version": "HTTP/2", "body": data.decode()}


def httpx_call(url, path, body, http2=False, cafile=None, cert=None):
    import ssl
    import httpx
    verify = True
    if cafile:
        verify = ssl.create_default_context(cafile=cafile)
        if cert:
            verify.load_cert_chain(*cert)
    with httpx.Client(http2=http2, http1=not http2, verify=verify, timeout=10) as client:
        response = client.post(url + path, content=body.encode(),
                               headers={"content-type": "application/json", "connect-protocol-version": "1"})
        return {"status": response.status_code, "version": response.http_version, "body": response.text}


def garbage(host, port):
    sock = socket.create_connection((host, int(port)), timeout=1)
    sock.sendall(b"\x16\x03\x01GARBAGE-NOT-HTTP\r\n\r\n" * 4 + b"PRI * HTTP/2.0 nope\r\n\r\n")
    start = time.time()
    closed = False
    # Up to 5 s for the server to close (each recv waits at most 1 s; a busy machine may need more).
    while time.time() - start < 5:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            closed = True
            break
        except socket.timeout:
            continue
        if not chunk:
            closed = True
            break
    return {"closed": closed, "seconds": round(time.time() - start, 3)}


def hangup(host, port, path, body):
    import h2.config
    import h2.connection
    sock = socket.create_connection((host, int(port)), timeout=5)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    conn.send_headers(1, [(":method", "POST"), (":scheme", "http"), (":authority", "x"), (":path", path),
                          ("content-type", "application/json")])
    conn.send_data(1, body.encode(), end_stream=True)
    sock.sendall(conn.data_to_send())
    time.sleep(0.2)
    sock.close()
    return {"sent": True}


def declare_large(host, port, path):
    sock = socket.create_connection((host, int(port)), timeout=3)
    sock.sendall(f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                 f"Content-Length: {2 << 20}\r\n\r\n".encode())
    try:
        reply = sock.recv(65536).decode(errors="replace")
    except socket.timeout:
        reply = ""
    return {"statusLine": reply.split("\r\n")[0], "body": reply.split("\r\n\r\n", 1)[-1]}


if __name__ == "__main__":
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "h2c":
        result = h2c(*args)
    elif mode == "http1":
        result = httpx_call(*args)
    elif mode == "tls":
        cert = (args[4], args[5]) if len(args) > 5 else None
        result = httpx_call(args[0], args[1], args[2], http2=True, cafile=args[3], cert=cert)
    elif mode == "garbage":
        result = garbage(*args)
    elif mode == "hangup":
        result = hangup(*args)
    elif mode == "declare-large":
        result = declare_large(*args)
    else:
        raise SystemExit("unknown mode " + mode)
    print(json.dumps(result))
