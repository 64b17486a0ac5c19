#!/usr/bin/env python3
"""A tiny Docker registry token server for the tests (docker-registry's `auth: token`).

    registry_token_server.py PORT ISSUER USER PASSWORD CERT_OUT

Makes an RSA signing key and a self-signed certificate for it, writes the certificate to
CERT_OUT (the registry's `rootcertbundle`), then serves `GET /token?service=..&scope=..`:
with Basic credentials USER:PASSWORD it grants every action asked for; with none it grants
nothing (anonymous); with wrong ones it answers 401. Tokens are RS256 JWTs that carry the
certificate in their `x5c` header, which the registry checks against the bundle.
"""

import base64
import datetime
import json
import os
import sys
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_key_and_cert(issuer: str):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def main() -> None:
    port, issuer, user, password, cert_out = sys.argv[1:6]
    key, cert = make_key_and_cert(issuer)
    x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
    expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    def token(service: str, subject: str, access: list) -> str:
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [x5c]}
        claims = {
            "iss": issuer,
            "sub": subject,
            "aud": service,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        signing_input = (
            b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
        )
        sig = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return signing_input + "." + b64url(sig)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            url = urlparse(self.path)
            if url.path != "/token":
                self.send_error(404)
                return
            query = parse_qs(url.query)
            given = self.headers.get("Authorization")
            if given is not None and given != expected:
                self.reply(401, {"details": "wrong user name or password"})
                return
            access = []
            if given is not None:
                for scope in query.get("scope", []):
                    for one in scope.split(" "):
                        kind, _, rest = one.partition(":")
                        name, _, actions = rest.rpartition(":")
                        access.append(
                            {"type": kind, "name": name, "actions": actions.split(",")}
                        )
            service = query.get("service", [""])[0]
            t = token(service, user if given else "", access)
            self.reply(
                200,
                {
                    "token": t,
                    "access_token": t,
                    "expires_in": 300,
                    "issued_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
                },
            )

        def reply(self, code: int, body: dict):
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", int(port)), Handler)
    # The certificate last: its presence tells the test the server is listening.
    tmp = cert_out + ".tmp"
    with open(tmp, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    os.rename(tmp, cert_out)
    server.serve_forever()


if __name__ == "__main__":
    main()
