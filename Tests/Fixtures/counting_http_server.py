"""A plain HTTP server that answers 404 to everything and counts what it was asked, for tests
that check how many fetches a client makes. `GET /_count` answers the count (not counted).

Prints `PORT <n>` once it listens.
"""
import http.server
import threading

count = 0
lock = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        global count
        if self.path == "/_count":
            with lock:
                body = str(count).encode()
            self.send_response(200)
        else:
            with lock:
                count += 1
            body = b"not here\n"
            self.send_response(404)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(f"PORT {server.server_address[1]}", flush=True)
server.serve_forever()
