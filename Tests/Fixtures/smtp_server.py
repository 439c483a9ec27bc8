"""A real SMTP server we did not write (aiosmtpd), for identity's delivery tests.

Prints `PORT <n>` once it listens. Every message it accepts is appended to --mailbox as one
JSON line: {"from", "to", "data", "authenticated_as", "tls"}.

  --port N           listen on N (0: pick one)
  --starttls CERT KEY  offer STARTTLS with this certificate and require it before AUTH and MAIL
  --auth USER:PASS   require AUTH (PLAIN or LOGIN) with these credentials
  --only-login       offer AUTH LOGIN alone (not PLAIN)
"""
import argparse
import logging
import json
import socket
import ssl
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Recorder:
    def __init__(self, mailbox):
        self.mailbox = mailbox

    async def handle_DATA(self, server, session, envelope):
        record = {
            "from": envelope.mail_from,
            "to": envelope.rcpt_tos,
            "data": envelope.content.decode("utf-8", "replace"),
            "authenticated_as": session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None,
            "tls": session.ssl is not None,
        }
        with open(self.mailbox, "a") as out:
            out.write(json.dumps(record) + "\n")
        return "250 OK stored"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--mailbox", required=True)
    parser.add_argument("--starttls", nargs=2, metavar=("CERT", "KEY"))
    parser.add_argument("--auth")
    parser.add_argument("--only-login", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    port = args.port
    if port == 0:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]

    options = {}
    if args.starttls:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.starttls[0], args.starttls[1])
        options.update(tls_context=context, require_starttls=True)
    if args.auth:
        user, password = args.auth.split(":", 1)

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user and auth_data.password.decode() == password
            return AuthResult(success=ok, handled=False, auth_data=auth_data)

        options.update(authenticator=authenticator, auth_required=True, auth_require_tls=bool(args.starttls))
        if args.only_login:
            options.update(auth_exclude_mechanism=["PLAIN"])

    controller = Controller(Recorder(args.mailbox), hostname="127.0.0.1", port=port, **options)
    controller.start()
    print(f"PORT {port}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        controller.stop()


if __name__ == "__main__":
    main()
