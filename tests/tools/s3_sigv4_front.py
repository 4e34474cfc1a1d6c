#!/usr/bin/python3
"""A front for s3rver that checks what Amazon S3 checks and s3rver does not.

s3rver 3.7.1 accepts any well-formed Signature V4 (it checks the access key, not the signature),
stores bodies whatever their x-amz-content-sha256 or Content-MD5 say. This front sits between the
clients and s3rver on loopback and, for every request, as S3 does:
  - recomputes the Signature V4 of the request with botocore (AWS's own SDK, Debian's
    python3-botocore) from the request as received (path and query decoded and re-encoded as S3
    canonicalizes them, the signed headers as sent) and the secret of the access key, and answers
    403 SignatureDoesNotMatch when it differs; a request without Authorization is refused
    (403 AccessDenied);
  - answers 400 XAmzContentSHA256Mismatch when x-amz-content-sha256 is a hash and not the body's,
    and 400 BadDigest when Content-MD5 is not the body's MD5;
then passes the request on to s3rver and its answer back (HTTP/1.1, keep-alive).

  s3_sigv4_front.py LISTEN_PORT S3RVER_PORT   (keys: S3RVER/S3RVER, s3rver's own account)

It logs one line per request on stdout and counts the bytes of the bodies it sends back: GET /__dupfs_front/bytes_out answers the count
(and is not passed on), so a test or a benchmark can read what clients downloaded.
"""
import base64
import hashlib
import http.client
import http.server
import socketserver
import sys
import threading
import urllib.parse

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

SECRETS = {"S3RVER": "S3RVER"}
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
              "proxy-authorization", "proxy-authenticate"}

backend_port = 0
bytes_out = 0
bytes_lock = threading.Lock()
local = threading.local()


def s3_error(code, message):
    return ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>%s</Code>"
            "<Message>%s</Message></Error>" % (code, message)).encode()


def check_signature(method, raw_path, headers):
    """None when the request is signed right, else (status, code, message)."""
    auth = headers.get("Authorization")
    if not auth:
        return 403, "AccessDenied", "Anonymous access is refused by this test server"
    if not auth.startswith("AWS4-HMAC-SHA256 "):
        return 400, "InvalidRequest", "Only AWS4-HMAC-SHA256 is accepted here"
    fields = {}
    for part in auth[len("AWS4-HMAC-SHA256 "):].split(","):
        key, _, value = part.strip().partition("=")
        fields[key] = value
    try:
        access_key, date, region, service, _ = fields["Credential"].split("/")
        signed = fields["SignedHeaders"].split(";")
        given = fields["Signature"]
    except (KeyError, ValueError):
        return 400, "AuthorizationHeaderMalformed", "Malformed Authorization header"
    if access_key not in SECRETS:
        return 403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist"
    timestamp = headers.get("x-amz-date", "")
    if not timestamp.startswith(date):
        return 403, "SignatureDoesNotMatch", "x-amz-date does not match the credential scope"
    # S3's canonical form: the path and the query decoded, then encoded again.
    parts = urllib.parse.urlsplit(raw_path)
    path = urllib.parse.quote(urllib.parse.unquote(parts.path), safe="/~")
    params = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    signed_headers = {}
    for name in signed:
        value = headers.get_all(name)
        if value is None:
            return 403, "SignatureDoesNotMatch", "signed header %s is missing" % name
        signed_headers[name] = ",".join(value)
    request = AWSRequest(method=method, url="http://" + headers.get("Host", "") + path,
                         headers=signed_headers, params=params)
    signer = S3SigV4Auth(Credentials(access_key, SECRETS[access_key]), service, region)
    request.context["timestamp"] = timestamp
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    if expected != given:
        return (403, "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided")
    return None


class Front(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def log_request(self, code="-", size="-"):
        pass

    def answer(self, status, body, headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def handle_any(self):
        global bytes_out
        # One line per request as it arrives ("PUT /bucket/key?partNumber=1&uploadId=..."), for
        # tests that check which requests a client sent, answered or not.
        print("%s %s" % (self.command, self.path), flush=True)
        length = int(self.headers.get("Content-Length", "0") or "0")
        body = self.rfile.read(length) if length else b""
        if self.path == "/__dupfs_front/bytes_out":
            with bytes_lock:
                self.answer(200, str(bytes_out).encode())
            return
        problem = check_signature(self.command, self.path, self.headers)
        if problem is None:
            claimed = self.headers.get("x-amz-content-sha256", "")
            if len(claimed) == 64 and claimed != hashlib.sha256(body).hexdigest():
                problem = (400, "XAmzContentSHA256Mismatch",
                           "The provided 'x-amz-content-sha256' header does not match what was "
                           "computed.")
        if problem is None and "Content-MD5" in self.headers:
            md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
            if self.headers["Content-MD5"] != md5:
                problem = (400, "BadDigest",
                           "The Content-MD5 you specified did not match what we received.")
        if problem is not None:
            status, code, message = problem
            self.answer(status, s3_error(code, message), [("Content-Type", "application/xml")])
            return
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPConnection("127.0.0.1", backend_port, timeout=600)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        try:
            conn.request(self.command, self.path, body=body if length else None, headers=headers)
            response = conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException):
            local.conn = None
            self.answer(503, s3_error("ServiceUnavailable", "s3rver did not answer"))
            return
        self.send_response(response.status)
        for name, value in response.getheaders():
            if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                self.send_header(name, value)
        if self.command == "HEAD":
            self.send_header("Content-Length", response.getheader("Content-Length", "0"))
        else:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
            with bytes_lock:
                bytes_out += len(data)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    global backend_port
    listen_port, backend_port = int(sys.argv[1]), int(sys.argv[2])
    server = Server(("127.0.0.1", listen_port), Front)
    print("s3_sigv4_front listening on 127.0.0.1:%d for s3rver on %d" % (listen_port, backend_port),
          flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
