"""A Bedrock stand-in that checks each request's SigV4 signature with botocore (AWS's own Python
signer), then answers with a captured ConverseStream (binary AWS event-stream); a request whose
signature does not verify gets 403, as Bedrock answers.

    python sigv4_upstream.py PORT CAPTURE.bin ACCESS_KEY_ID SECRET_ACCESS_KEY SESSION_TOKEN REGION

Only the headers the request says it signed (SignedHeaders) are given to botocore, as AWS
does: hop-by-hop and transport headers added after signing (content-length) are not signed.
"""

import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

PORT, CAPTURE, ACCESS, SECRET, TOKEN, REGION = sys.argv[1:7]
STREAM = open(CAPTURE, "rb").read()


def expected_signature(method, url, headers, body, signed_headers, amz_date):
    request = AWSRequest(method=method, url=url, data=body,
                         headers={k: v for k, v in headers.items() if k.lower() in signed_headers})
    auth = SigV4Auth(Credentials(ACCESS, SECRET, TOKEN), "bedrock", REGION)
    request.context["timestamp"] = amz_date
    canonical = auth.canonical_request(request)
    return auth.signature(auth.string_to_sign(request, canonical), request)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        auth = self.headers.get("authorization", "")
        fields = dict(part.strip().split("=", 1) for part in auth.split(" ", 1)[-1].split(","))
        signed = fields.get("SignedHeaders", "").split(";")
        scope = fields.get("Credential", "").split("/", 1)[-1]
        want = expected_signature("POST", f"http://{self.headers['host']}{self.path}",
                                  {k: v for k, v in self.headers.items()}, body, signed,
                                  self.headers.get("x-amz-date", ""))
        ok = (auth.startswith("AWS4-HMAC-SHA256 ") and fields.get("Signature") == want
              and scope.endswith(f"/{REGION}/bedrock/aws4_request") and "host" in signed
              and self.path.endswith("/converse-stream"))
        if not ok:
            message = f'{{"message":"The request signature we calculated does not match: want {want}"}}'.encode()
            print(f"signature mismatch: {auth!r}, want {want}", file=sys.stderr, flush=True)
            self.send_response(403)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(message)))
            self.end_headers()
            self.wfile.write(message)
            return
        print(f"signature verified for {self.path}", file=sys.stderr, flush=True)
        self.send_response(200)
        self.send_header("content-type", "application/vnd.amazon.eventstream")
        self.send_header("content-length", str(len(STREAM)))
        self.end_headers()
        self.wfile.write(STREAM)

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", int(PORT)), Handler).serve_forever()
