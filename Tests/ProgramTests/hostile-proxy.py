#!/usr/bin/env python3
"""A hostile Portcullis proxy for pcsh's tests (HostileProxyProgramTests): HTTPS on 127.0.0.1
with the test's certificate, answering /v1/ping, /v1/login and /v1/nodes/list with whatever
DIR/scenario.json says at the time of the request. Logins are certified for real (ssh-keygen
with DIR/user_ca), so pcsh goes on to its signed requests. Writes its port to DIR/port."""
import datetime
import http.server
import json
import pathlib
import ssl
import subprocess
import sys

directory = pathlib.Path(sys.argv[1])


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def scenario(self):
        return json.loads((directory / "scenario.json").read_text())

    def do_GET(self):
        if self.path == "/v1/ping":
            return self.answer(200, self.scenario()["ping"])
        self.answer(404, {"error": "no such path"})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        scenario = self.scenario()
        if self.path == "/v1/login":
            public = directory / "user.pub"
            public.write_text(body["public_key"] + "\n")
            (directory / "user-cert.pub").unlink(missing_ok=True)
            subprocess.run(["ssh-keygen", "-q", "-s", str(directory / "user_ca"), "-I", body["user"], "-n", "root",
                            "-V", "+1h", str(public)], check=True)
            valid_before = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
            return self.answer(200, {"certificate": (directory / "user-cert.pub").read_text().strip(),
                                     "known_hosts": scenario["known_hosts"], "roles": ["access"],
                                     "logins": scenario["logins"], "valid_before": valid_before.strftime("%Y-%m-%dT%H:%M:%SZ")})
        if self.path == "/v1/nodes/list":
            return self.answer(scenario.get("nodes_status", 200), scenario["nodes"])
        self.answer(404, {"error": "no such path"})


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(str(directory / "tls.pem"), str(directory / "tls.key"))
server.socket = context.wrap_socket(server.socket, server_side=True)
(directory / "port.tmp").write_text(str(server.server_address[1]))
(directory / "port.tmp").rename(directory / "port")
server.serve_forever()
