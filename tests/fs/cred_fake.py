#!/usr/bin/env python3
"""cred_fake.py - fake AWS credential endpoints for tests/fs/cred.sh, and a
logging proxy in front of the S3 rig.

  cred_fake.py serve PORTFILE LOG UID
      One HTTP server on 127.0.0.1 (port written to PORTFILE) that plays:
        EC2 IMDSv2   PUT /latest/api/token, GET /latest/meta-data/iam/
                     security-credentials/[ROLE] (token required)
        ECS          GET /ecs/creds (Authorization must equal
                     $CRED_FAKE_ECS_AUTH)
        STS          POST / Action=AssumeRoleWithWebIdentity (the token must
                     equal $CRED_FAKE_JWT) and Action=AssumeRole (SigV4 for
                     service sts is verified with $CRED_FAKE_SOURCE_KEY and
                     $CRED_FAKE_SOURCE_SECRET)
        process      GET /process: credential_process JSON, Version 1
        control      GET /control/lifetime/N (seconds of later keys),
                     GET /control/revoke (delete every live key now; the
                     answer lists them),
                     GET /stats (JSON: keys issued and deleted)
      Every answer carries a fresh RGW key for user UID, made with
      radosgw-admin ($CRED_FAKE_RGWA is the command), a session token and an
      Expiration LIFETIME seconds ahead. Expired keys are deleted from RGW, so
      a client that keeps using one is refused. LOG gets one line per event;
      LOG.secrets lists every secret and token handed out (for the test's
      "no secret in the daemon's log" check), LOG.keys "KEY SECRET" lines.

  cred_fake.py proxy PORTFILE LOG UPSTREAM
      A forwarding HTTP proxy to UPSTREAM (http://127.0.0.1:PORT) that logs,
      per request: the method, whether it carried an Authorization header,
      the X-Amz-Security-Token value's tag, whether that header is among the
      signed ones, and the status.
"""
import hashlib
import hmac
import http.client
import http.server
import json
import os
import secrets
import shlex
import subprocess
import sys
import threading
import time
import urllib.parse

LOCK = threading.Lock()
STATE = {"issued": 0, "deleted": 0, "lifetime": 300, "live": [], "imds_tokens": set(),
         "by_kind": {}}
LOG = None


def log(msg):
    with LOCK:
        with open(LOG, "a") as f:
            f.write("%.3f %s\n" % (time.time(), msg))


def rgwa(*args):
    cmd = shlex.split(os.environ["CRED_FAKE_RGWA"]) + list(args)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)


RGW_LOCK = threading.Lock()


def issue(kind):
    """A new RGW key for the user, valid for the current lifetime."""
    ak = "CRED" + secrets.token_hex(8).upper()
    sk = secrets.token_hex(20)
    tok = "tok-%s-%s" % (kind, secrets.token_hex(12))
    with RGW_LOCK:
        rgwa("key", "create", "--uid=" + UID, "--key-type=s3", "--access-key=" + ak, "--secret-key=" + sk)
    with LOCK:
        life = STATE["lifetime"]
        exp = int(time.time()) + life
        STATE["issued"] += 1
        STATE["by_kind"][kind] = STATE["by_kind"].get(kind, 0) + 1
        STATE["live"].append((exp, ak))
        with open(LOG + ".secrets", "a") as f:
            f.write(sk + "\n" + tok + "\n")
        with open(LOG + ".keys", "a") as f:
            f.write("%s %s\n" % (ak, sk))
    log("ISSUE %s %s expires-in %d" % (kind, ak, life))
    return ak, sk, tok, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(exp))


def reaper():
    while True:
        time.sleep(0.2)
        now = time.time()
        with LOCK:
            dead = [x for x in STATE["live"] if x[0] <= now]
            STATE["live"] = [x for x in STATE["live"] if x[0] > now]
        for _, ak in dead:
            try:
                with RGW_LOCK:
                    rgwa("key", "rm", "--uid=" + UID, "--key-type=s3", "--access-key=" + ak)
                with LOCK:
                    STATE["deleted"] += 1
                log("DELETE %s" % ak)
            except Exception as e:  # keep reaping the others
                log("DELETE-FAILED %s %s" % (ak, e))


def sigv4_ok(handler, body, service):
    """Verify the request's SigV4 Authorization with the source secret."""
    auth = handler.headers.get("Authorization", "")
    if not auth.startswith("AWS4-HMAC-SHA256 "):
        return False, "no SigV4 Authorization"
    parts = dict(p.strip().split("=", 1) for p in auth[len("AWS4-HMAC-SHA256 "):].split(","))
    cred = parts["Credential"].split("/")
    if cred[0] != os.environ["CRED_FAKE_SOURCE_KEY"]:
        return False, "signed with key %s, not the source profile's" % cred[0]
    if cred[3] != service:
        return False, "signed for service %s" % cred[3]
    signed = parts["SignedHeaders"].split(";")
    if "host" not in signed or "x-amz-date" not in signed:
        return False, "host/x-amz-date not signed"
    canon_headers = "".join("%s:%s\n" % (h, " ".join(handler.headers.get(h, "").split())) for h in signed)
    u = urllib.parse.urlsplit(handler.path)
    q = sorted(urllib.parse.parse_qsl(u.query, keep_blank_values=True))
    cq = "&".join("%s=%s" % (urllib.parse.quote(k, safe="-_.~"), urllib.parse.quote(v, safe="-_.~")) for k, v in q)
    creq = "\n".join([handler.command, u.path or "/", cq, canon_headers, parts["SignedHeaders"],
                      hashlib.sha256(body).hexdigest()])
    date = handler.headers.get("x-amz-date", "")
    scope = "/".join(cred[1:])
    sts = "\n".join(["AWS4-HMAC-SHA256", date, scope, hashlib.sha256(creq.encode()).hexdigest()])
    k = ("AWS4" + os.environ["CRED_FAKE_SOURCE_SECRET"]).encode()
    for m in (cred[1], cred[2], cred[3], "aws4_request"):
        k = hmac.new(k, m.encode(), hashlib.sha256).digest()
    want = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(want, parts["Signature"]):
        return False, "signature mismatch"
    return True, ""


class Fake(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def reply(self, status, body, ctype="text/plain"):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        n = int(self.headers.get("Content-Length", "0") or 0)
        return self.rfile.read(n) if n else b""

    def do_PUT(self):
        self.body()
        if self.path == "/latest/api/token" and self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
            tok = "imds-" + secrets.token_hex(8)
            with LOCK:
                STATE["imds_tokens"].add(tok)
            log("IMDS token")
            return self.reply(200, tok)
        self.reply(400, "bad token request")

    def do_GET(self):
        p = self.path
        if p.startswith("/latest/meta-data/iam/security-credentials/"):
            with LOCK:
                ok = self.headers.get("X-aws-ec2-metadata-token") in STATE["imds_tokens"]
            if not ok:
                log("IMDS unauthorized")
                return self.reply(401, "")
            role = p[len("/latest/meta-data/iam/security-credentials/"):]
            if role == "":
                return self.reply(200, "shale-role")
            if role != "shale-role":
                return self.reply(404, "")
            ak, sk, tok, exp = issue("imds")
            return self.reply(200, json.dumps({"Code": "Success", "Type": "AWS-HMAC", "AccessKeyId": ak,
                                               "SecretAccessKey": sk, "Token": tok, "Expiration": exp,
                                               "LastUpdated": "2020-01-01T00:00:00Z"}), "application/json")
        if p == "/ecs/creds":
            if self.headers.get("Authorization") != os.environ.get("CRED_FAKE_ECS_AUTH"):
                log("ECS unauthorized")
                return self.reply(403, json.dumps({"Code": "AccessDenied", "Message": "bad token"}))
            ak, sk, tok, exp = issue("ecs")
            return self.reply(200, json.dumps({"AccessKeyId": ak, "SecretAccessKey": sk, "Token": tok,
                                               "Expiration": exp, "RoleArn": "arn:aws:iam::1:role/x"}),
                              "application/json")
        if p == "/process":
            ak, sk, tok, exp = issue("process")
            return self.reply(200, json.dumps({"Version": 1, "AccessKeyId": ak, "SecretAccessKey": sk,
                                               "SessionToken": tok, "Expiration": exp}), "application/json")
        if p.startswith("/control/lifetime/"):
            with LOCK:
                STATE["lifetime"] = int(p.rsplit("/", 1)[1])
            return self.reply(200, "ok")
        if p == "/control/revoke":
            # Every live key deleted now, before its Expiration: the next
            # request signed with one is refused (InvalidAccessKeyId).
            with LOCK:
                dead, STATE["live"] = STATE["live"], []
            for _, ak in dead:
                with RGW_LOCK:
                    rgwa("key", "rm", "--uid=" + UID, "--key-type=s3", "--access-key=" + ak)
                log("REVOKE %s" % ak)
            return self.reply(200, " ".join(ak for _, ak in dead))
        if p == "/stats":
            with LOCK:
                s = {"issued": STATE["issued"], "deleted": STATE["deleted"], "by_kind": STATE["by_kind"]}
            return self.reply(200, json.dumps(s), "application/json")
        self.reply(404, "")

    def do_POST(self):
        raw = self.body()
        form = dict(urllib.parse.parse_qsl(raw.decode()))
        action = form.get("Action")
        if form.get("Version") != "2011-06-15" or not form.get("RoleArn") or not form.get("RoleSessionName"):
            return self.sts_error(400, "MissingParameter", "Version, RoleArn, RoleSessionName required")
        if action == "AssumeRoleWithWebIdentity":
            if "Authorization" in self.headers:
                return self.sts_error(400, "InvalidRequest", "AssumeRoleWithWebIdentity is unsigned")
            if form.get("WebIdentityToken") != os.environ.get("CRED_FAKE_JWT"):
                log("STS web identity: wrong token")
                return self.sts_error(400, "InvalidIdentityToken", "token mismatch")
            kind = "web"
        elif action == "AssumeRole":
            ok, why = sigv4_ok(self, raw, "sts")
            if not ok:
                log("STS AssumeRole refused: " + why)
                return self.sts_error(403, "SignatureDoesNotMatch", why)
            kind = "assume"
        else:
            return self.sts_error(400, "InvalidAction", "unknown action")
        ak, sk, tok, exp = issue(kind)
        xml = ("<{a}Response xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><{a}Result>"
               "<Credentials><AccessKeyId>{ak}</AccessKeyId><SecretAccessKey>{sk}</SecretAccessKey>"
               "<SessionToken>{tok}</SessionToken><Expiration>{exp}</Expiration></Credentials>"
               "</{a}Result><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></{a}Response>"
               ).format(a=action, ak=ak, sk=sk, tok=tok, exp=exp)
        self.reply(200, xml, "text/xml")

    def sts_error(self, status, code, msg):
        self.reply(status, "<ErrorResponse><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message>"
                   "</Error></ErrorResponse>" % (code, msg), "text/xml")


HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection"}


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def forward(self):
        n = int(self.headers.get("Content-Length", "0") or 0)
        body = self.rfile.read(n) if n else None
        auth = self.headers.get("Authorization")
        tok = self.headers.get("X-Amz-Security-Token")
        signed = ""
        if auth and "SignedHeaders=" in auth:
            signed = auth.split("SignedHeaders=", 1)[1].split(",", 1)[0]
        conn = getattr(self, "_up", None)
        if conn is None:
            u = urllib.parse.urlsplit(UPSTREAM)
            conn = self._up = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
        for k, v in self.headers.items():
            if k.lower() not in HOP:
                conn.putheader(k, v)
        if body is not None or self.command in ("PUT", "POST"):
            conn.putheader("Content-Length", str(len(body or b"")))
        conn.endheaders(body)
        r = conn.getresponse()
        data = r.read()
        log("REQ %s auth=%s token=%s token_signed=%s status=%d" % (
            self.command, "yes" if auth else "no", (tok.split("-")[1] if tok and tok.count("-") >= 2 else (tok or "none")),
            "yes" if "x-amz-security-token" in signed.split(";") else "no", r.status))
        self.send_response(r.status)
        for k, v in r.getheaders():
            if k.lower() not in HOP:
                self.send_header(k, v)
        if self.command != "HEAD":
            self.send_header("Content-Length", str(len(data)))
        else:
            cl = r.getheader("Content-Length")
            if cl is not None:
                self.send_header("Content-Length", cl)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = forward


def main():
    global LOG, UID, UPSTREAM
    mode, portfile, LOG = sys.argv[1], sys.argv[2], sys.argv[3]
    if mode == "serve":
        UID = sys.argv[4]
        threading.Thread(target=reaper, daemon=True).start()
        handler = Fake
    else:
        UPSTREAM = sys.argv[4]
        handler = Proxy
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    srv.daemon_threads = True
    with open(portfile + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(portfile + ".tmp", portfile)
    srv.serve_forever()


if __name__ == "__main__":
    main()
