"""A Connect-speaking HTTP/2 (h2c) echo server built on the pure-Python `h2` library.

It is the "server we did not write" for the client engine's tests. It answers any POST with
a JSON body like {"text": ..., "sleepMs": ...} by echoing `text` after `sleepMs`, and
GET /stats with how many requests it started and how many streams clients reset.

  --port N           port to listen on (0 = any; the bound port is printed as "PORT <n>")
  --goaway-after N   after the N-th request on a connection, send GOAWAY (last stream = the
                     highest stream seen) and keep serving the streams it already accepted
  --max-streams N    SETTINGS_MAX_CONCURRENT_STREAMS to advertise
"""
import argparse
import asyncio
import json
import sys

import h2.config
import h2.connection
import h2.events
import h2.settings
from hyperframe.frame import GoAwayFrame


class Connection:
    def __init__(self, reader, writer, args, stats):
        self.reader, self.writer, self.args, self.stats = reader, writer, args, stats
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
        self.bodies = {}
        self.headers = {}
        self.requests = 0
        self.goaway_sent = False
        self.last_stream_id = 0
        self.pending = 0

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.writer.write(data)

    async def run(self):
        self.conn.initiate_connection()
        self.conn.update_settings({h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: self.args.max_streams})
        self.flush()
        try:
            while True:
                data = await self.reader.read(65536)
                if not data:
                    break
                for event in self.conn.receive_data(data):
                    self.handle(event)
                self.flush()
                await self.writer.drain()
        except Exception as error:  # connection reset by the client
            print("connection error:", error, file=sys.stderr)
        finally:
            self.writer.close()

    def handle(self, event):
        stream_id = getattr(event, "stream_id", 0)
        if self.goaway_sent and stream_id > self.last_stream_id:
            return  # above our GOAWAY: never started; the client must retry it elsewhere
        if isinstance(event, h2.events.RequestReceived):
            self.headers[event.stream_id] = dict(event.headers)
            self.bodies[event.stream_id] = b""
        elif isinstance(event, h2.events.DataReceived):
            self.bodies[event.stream_id] = self.bodies.get(event.stream_id, b"") + event.data
            self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.StreamEnded):
            self.pending += 1
            if self.headers.get(event.stream_id, {}).get(":method") != "GET":
                self.requests += 1
                self.stats["started"] += 1
            asyncio.get_running_loop().create_task(self.respond(event.stream_id))
            if self.args.goaway_after and self.requests >= self.args.goaway_after and not self.goaway_sent:
                # A graceful GOAWAY, written by hand: h2's close_connection() would forbid
                # answering the streams we keep.
                self.goaway_sent = True
                self.last_stream_id = self.conn.highest_inbound_stream_id
                self.flush()
                self.writer.write(GoAwayFrame(stream_id=0, last_stream_id=self.last_stream_id, error_code=0).serialize())
        elif isinstance(event, h2.events.StreamReset):
            self.bodies.pop(event.stream_id, None)
            self.headers.pop(event.stream_id, None)
            self.stats["reset"] += 1

    async def respond(self, stream_id):
        if self.headers.get(stream_id, {}).get(":method") == "GET":
            body = json.dumps(self.stats).encode()
            self.conn.send_headers(stream_id, [(":status", "200"), ("content-type", "application/json"),
                                               ("content-length", str(len(body)))])
            self.conn.send_data(stream_id, body, end_stream=True)
            self.pending -= 1
            self.flush()
            return
        try:
            request = json.loads(self.bodies.pop(stream_id, b"") or b"{}")
        except ValueError:
            request = {}
        await asyncio.sleep(request.get("sleepMs", 0) / 1000)
        self.pending -= 1
        if stream_id not in self.headers:
            return
        body = json.dumps({"text": request.get("text", ""), "requestId": "py"}).encode()
        try:
            self.conn.send_headers(stream_id, [(":status", "200"), ("content-type", "application/json"),
                                               ("content-length", str(len(body)))])
            self.conn.send_data(stream_id, body, end_stream=True)
        except Exception:  # the stream was reset meanwhile
            return
        self.flush()
        if self.goaway_sent and self.pending == 0:
            self.writer.close()


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--goaway-after", type=int, default=0)
    parser.add_argument("--max-streams", type=int, default=100)
    args = parser.parse_args()
    stats = {"started": 0, "reset": 0}

    async def accept(reader, writer):
        await Connection(reader, writer, args, stats).run()

    server = await asyncio.start_server(accept, "127.0.0.1", args.port)
    print("PORT", server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
