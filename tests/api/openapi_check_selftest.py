#!/usr/bin/python3
# The checker's own test: a checker that passes everything would pass this project's API too.
# A small in-process server with a known document is checked as it is (no contradiction may
# be reported), then with deliberately wrong documents and deliberately faulty server
# behaviour, each of which must be reported under its rule, with a shrunk reproduction.
# Needs no daemon and no Docker.  Usage: openapi_check_selftest.py [-v]

import copy
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
CHECK = os.path.join(HERE, "openapi_check.py")
TOKEN = "selftest-token"
VERBOSE = "-v" in sys.argv

ERROR = {"$ref": "#/components/schemas/Error"}


def err(desc):
    return {"description": desc, "content": {"application/json": {"schema": ERROR}}}


SPEC = {
    "openapi": "3.1.0",
    "info": {"title": "selftest", "version": "1"},
    "servers": [{"url": "/"}],
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "Error": {"type": "object", "required": ["error", "code"], "additionalProperties": False,
                      "properties": {"error": {"type": "string"}, "code": {"type": "string"}}},
            "Item": {"type": "object", "required": ["id", "name", "size", "created_at", "note"],
                     "additionalProperties": False,
                     "properties": {"id": {"type": "string", "pattern": "^i-[0-9]+$"},
                                    "name": {"type": "string", "minLength": 1, "maxLength": 20},
                                    "size": {"type": "integer", "minimum": 0, "maximum": 10},
                                    "created_at": {"type": "string", "format": "date-time"},
                                    "note": {"type": ["string", "null"]}}},
            "NewItem": {"type": "object", "required": ["name"], "additionalProperties": False,
                        "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 20},
                                       "size": {"type": "integer", "minimum": 0, "maximum": 10}}},
        },
    },
    "security": [{"bearer": []}],
    "paths": {
        "/healthz": {"get": {"operationId": "health", "security": [], "responses": {
            "200": {"description": "up", "content": {"application/json": {"schema": {
                "type": "object", "required": ["status"], "properties": {"status": {"const": "ok"}}}}}}}}},
        "/metrics": {"get": {"operationId": "metrics", "responses": {
            "200": {"description": "text", "content": {"text/plain": {"schema": {"type": "string"}}}},
            "401": err("no token")}}},
        "/items": {
            "get": {"operationId": "listItems", "parameters": [
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
                {"name": "order", "in": "query", "schema": {"enum": ["asc", "desc"]}}],
                "responses": {"200": {"description": "items", "content": {"application/json": {"schema": {
                    "type": "object", "required": ["items", "count"], "additionalProperties": False,
                    "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/Item"}},
                                   "count": {"type": "integer", "minimum": 0}}}}}},
                    "400": err("bad query"), "401": err("no token")}},
            "post": {"operationId": "createItem",
                     "requestBody": {"required": True, "content": {"application/json": {
                         "schema": {"$ref": "#/components/schemas/NewItem"}}}},
                     "responses": {"201": {"description": "made", "content": {"application/json": {
                         "schema": {"$ref": "#/components/schemas/Item"}}}},
                         "400": err("bad body"), "401": err("no token"), "409": err("full")}},
            "delete": {"operationId": "deleteAllItems", "parameters": [
                {"name": "confirm", "in": "query", "required": True, "schema": {"const": "true"}}],
                "responses": {"200": {"description": "gone", "content": {"application/json": {"schema": {
                    "type": "object", "required": ["deleted"], "properties": {"deleted": {"type": "integer"}}}}}},
                    "400": err("no confirm"), "401": err("no token")}},
        },
        "/items/{id}": {
            "parameters": [{"name": "id", "in": "path", "required": True,
                            "schema": {"type": "string", "pattern": "^i-[0-9]+$"}}],
            "get": {"operationId": "getItem", "responses": {
                "200": {"description": "one", "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/Item"}}}},
                "400": err("bad id"), "401": err("no token"), "404": err("none")}},
            "delete": {"operationId": "deleteItem", "responses": {
                "204": {"description": "gone"}, "400": err("bad id"), "401": err("no token"), "404": err("none")}},
        },
        "/danger": {"post": {"operationId": "selfDestruct", "x-dangerous": True, "responses": {
            "204": {"description": "boom"}, "401": err("no token")}}},
    },
}


class HangUp(Exception):
    pass


class Server:
    """Honours SPEC exactly, unless told a fault."""

    def __init__(self, faults=()):
        self.faults = set(faults)
        self.items = {}
        self.next_id = 1
        self.calls = []
        self.lock = threading.Lock()
        outer = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def setup(self):
                super().setup()
                self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def _go(self):
                with outer.lock:
                    try:
                        outer.handle(self)
                    except HangUp:
                        # Gone without a word, as a crashed worker would be.
                        self.close_connection = True
                        self.request.shutdown(socket.SHUT_RDWR)

            do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _go

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def stop(self):
        if "die" not in self.faults:
            self.httpd.shutdown()
        self.httpd.server_close()

    def handle(self, h):
        n = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(n) if n else b""
        u = urlsplit(h.path)
        q = parse_qs(u.query, keep_blank_values=True)
        path = u.path
        self.calls.append((h.command, path))
        status, body, ctype = self.route(h, h.command, path, q, raw)
        data = b"" if body is None else (body.encode() if isinstance(body, str) else json.dumps(body).encode())
        h.send_response(status)
        if body is not None:
            h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def route(self, h, method, path, q, raw):
        J = "application/json"
        if method == "GET" and path == "/healthz":
            return 200, {"status": "ok"}, J
        authed = h.headers.get("Authorization") == "Bearer " + TOKEN
        if not authed and not (path == "/items" and method == "GET" and "lenient-auth" in self.faults):
            return 401, {"error": "no token", "code": "unauthorized"}, J
        if method == "GET" and path == "/metrics":
            return 200, "# HELP x\nx 1\n", "text/plain; version=0.0.4"
        if method == "POST" and path == "/danger":
            return 204, None, J
        if path == "/items":
            if method == "GET":
                limit = 10
                if "limit" in q:
                    v = q["limit"][-1]
                    cap = 100 if "lenient-limit" not in self.faults else 1000
                    if not re.fullmatch(r"-?[0-9]+", v) or not 1 <= int(v) <= cap:
                        return 400, {"error": "limit", "code": "invalid"}, J
                    limit = int(v)
                if "order" in q and q["order"][-1] not in ("asc", "desc"):
                    return 400, {"error": "order", "code": "invalid"}, J
                rows = list(self.items.values())[:limit]
                return 200, {"items": rows, "count": len(rows)}, J
            if method == "POST":
                return self.create(raw)
            if method == "DELETE":
                if q.get("confirm", [""])[-1] != "true":
                    return 400, {"error": "confirm", "code": "invalid"}, J
                n = len(self.items)
                self.items.clear()
                return 200, {"deleted": n}, J
        m = re.fullmatch(r"/items/([^/]*)", path)
        if m:
            iid = unquote(m.group(1))
            if not re.fullmatch(r"i-[0-9]+", iid, re.ASCII):
                return 400, {"error": "id", "code": "invalid"}, J
            if iid not in self.items:
                return 404, {"error": "none", "code": "not_found"}, J
            if method == "GET":
                return 200, self.items[iid], J
            if method == "DELETE":
                del self.items[iid]
                return 204, None, J
        return 404, {"error": "no route", "code": "not_found"}, J

    def create(self, raw):
        J = "application/json"
        bad = (400, {"error": "body", "code": "invalid"}, J)
        try:
            b = json.loads(raw)
        except ValueError:
            return bad
        if not isinstance(b, dict):
            return bad
        allowed = {"name", "size"}
        if "lenient-unknown" not in self.faults and set(b) - allowed:
            return bad
        name = b.get("name")
        if not isinstance(name, str) or not 1 <= len(name) <= 20:
            return bad
        size = b.get("size", 0)
        if isinstance(size, bool) or not isinstance(size, (int, float)) or \
                (isinstance(size, float) and not size.is_integer()) or not 0 <= size <= 10:
            return bad
        if "crash-unicode" in self.faults and any(ord(c) > 127 for c in name):
            return 500, {"error": "boom", "code": "internal"}, J
        if "busy" in self.faults and size >= 5:
            return 503, {"error": "busy", "code": "unavailable"}, J
        if "hang-up" in self.faults and size >= 5:
            raise HangUp()
        if "die" in self.faults and size >= 5:
            threading.Thread(target=self.httpd.shutdown).start()
            self.httpd.socket.close()
            raise HangUp()
        if len(self.items) >= 50:
            return 409, {"error": "full", "code": "conflict"}, J
        iid = f"i-{self.next_id}"
        self.next_id += 1
        item = {"id": iid, "name": name, "size": int(size), "created_at": "2026-01-02T03:04:05Z", "note": None}
        self.items[iid] = item
        return 201, item, J


def run_check(spec, server, *extra):
    with tempfile.TemporaryDirectory() as d:
        sp = os.path.join(d, "spec.json")
        tf = os.path.join(d, "token")
        with open(sp, "w") as fh:
            json.dump(spec, fh)
        with open(tf, "w") as fh:
            fh.write(TOKEN + "\n")
        p = subprocess.run([sys.executable, CHECK, "--base-url", server.url, "--token-file", tf, "--spec", sp,
                            "--examples", "40", "--time-budget", "20", "--op-budget", "3", *extra],
                           capture_output=True, text=True, timeout=120)
    out = p.stdout + p.stderr
    if VERBOSE:
        print(out)
    return p.returncode, out


FAILURES = []


def expect(name, cond, out):
    if cond:
        print(f"ok   {name}")
    else:
        print(f"FAIL {name}\n{out}")
        FAILURES.append(name)


def case(name, spec=SPEC, faults=(), rc=1, must=(), must_not=(), check=None, extra=()):
    server = Server(faults)
    try:
        got, out = run_check(spec, server, *extra)
    finally:
        server.stop()
    ok = got == rc and all(re.search(m, out) for m in must) and not any(re.search(m, out) for m in must_not)
    if ok and check:
        ok = check(out, server)
    expect(name, ok, out if not ok else "")
    return out


def mutate(fn):
    s = copy.deepcopy(SPEC)
    fn(s)
    return s


def main():
    def order_ok(out, server):
        # The bulk delete came after every other operation, and the dangerous one never.
        methods = [c for c in server.calls if c != ("GET", "/healthz")]
        bulk = [i for i, c in enumerate(methods) if c == ("DELETE", "/items")]
        others = [i for i, c in enumerate(methods) if c != ("DELETE", "/items")]
        return bool(bulk) and max(others) < min(bulk) and ("POST", "/danger") not in server.calls

    case("a faithful server and document: nothing reported, bulk delete last, dangerous skipped", rc=0,
         must=[r"no contradiction", r"skipped POST /danger \(selfDestruct\): marked x-dangerous",
               r"ran last: DELETE /items \(deleteAllItems\)"],
         check=order_ok)

    # Wrong documents, faithful server.
    case("an undocumented status (404 of getItem dropped)",
         spec=mutate(lambda s: s["paths"]["/items/{id}"]["get"]["responses"].pop("404")),
         must=[r"undocumented-status: GET /items/\{id\} \(getItem\): answered 404"])
    case("a wrong field type (Item.size documented as a string)",
         spec=mutate(lambda s: s["components"]["schemas"]["Item"]["properties"]["size"].update(type="string")),
         must=[r"response-schema: POST /items \(createItem\): answered 201; body at /size"])
    case("two contradictions of one operation: the first found does not hide the other",
         spec=mutate(lambda s: (s["components"]["schemas"]["Item"]["properties"]["size"].update(type="string"),
                                s["paths"]["/items"]["post"]["responses"].pop("400"))),
         must=[r"response-schema: POST /items \(createItem\): answered 201; body at /size",
               r"undocumented-status: POST /items \(createItem\): answered 400"])
    with_default = mutate(lambda s: (s["paths"]["/items/{id}"]["get"]["responses"].pop("404"),
                                     s["paths"]["/items/{id}"]["get"]["responses"].update(default=err("other"))))
    case("a status only 'default' covers passes by default", spec=with_default, rc=0, must=[r"no contradiction"])
    case("... and is undocumented with --strict-status", spec=with_default, extra=["--strict-status"],
         must=[r"undocumented-status: GET /items/\{id\} \(getItem\): answered 404, only the catch-all"])
    case("a missing field (Item documents one the server never sends)",
         spec=mutate(lambda s: s["components"]["schemas"]["Item"]["required"].append("owner")),
         must=[r"response-schema: .*'owner' is a required property"])
    case("a wrong media type (/metrics documented as JSON)",
         spec=mutate(lambda s: s["paths"]["/metrics"]["get"]["responses"]["200"].update(
             content={"application/json": {"schema": {"type": "object"}}})),
         must=[r"content-type: GET /metrics \(metrics\): answered 200 as text/plain"])
    case("a document stricter than the server (limit maximum 50, the server takes 100)",
         spec=mutate(lambda s: s["paths"]["/items"]["get"]["parameters"][0]["schema"].update(maximum=50)),
         must=[r"invalid-accepted: GET /items \(listItems\): accepted \(200\).*limit: above maximum",
               r"repeat: +curl .*limit=51"])
    case("a document that says a body where the server sends none (204 with JSON)",
         spec=mutate(lambda s: s["paths"]["/items/{id}"]["delete"]["responses"]["204"].update(
             content={"application/json": {"schema": {"type": "object"}}})),
         must=[r"content-type: DELETE /items/\{id\} \(deleteItem\): answered 204 with no body"])
    case("a broken document ($ref to nothing, duplicate operationId)",
         spec=mutate(lambda s: (s["paths"]["/items"]["get"].update(operationId="getItem"),
                                s["components"]["schemas"]["Item"]["properties"].update(
                                    size={"$ref": "#/components/schemas/Nope"}))),
         must=[r"document: getItem: operationId used twice", r"does not resolve"])

    # Faithful document, faulty server.
    case("a server that takes unknown properties where additionalProperties is false",
         faults=["lenient-unknown"],
         must=[r"invalid-accepted: POST /items \(createItem\): accepted \(201\).*unknown property"])
    case("a server that reads without credentials", faults=["lenient-auth"],
         must=[r"unauthenticated: GET /items \(listItems\)"])

    def shrunk(out, server):
        # Hypothesis shrinks the crash to one non-ASCII character and no optional field.
        m = re.search(r"server-error: POST /items.*\n\s+request: +POST /items body: (\{.*?\})\s", out)
        if not m:
            return False
        body = json.loads(m.group(1))
        return set(body) == {"name"} and len(body["name"]) == 1 and ord(body["name"]) > 127

    case("a 500 on non-ASCII names, shrunk to a minimal body", faults=["crash-unicode"],
         must=[r"server-error: POST /items \(createItem\): answered 500", r"repeat: +curl "],
         check=shrunk)

    with_503 = mutate(lambda s: s["paths"]["/items"]["post"]["responses"].update({"503": err("busy")}))
    case("a documented 503 is still a server error", spec=with_503, faults=["busy"],
         must=[r"server-error: POST /items \(createItem\): answered 503"])
    case("... unless --allow-documented-5xx", spec=with_503, faults=["busy"], rc=0,
         must=[r"no contradiction"], extra=["--allow-documented-5xx"])
    case("a server that hangs up without an answer", faults=["hang-up"],
         must=[r"no-answer: POST /items \(createItem\): no answer", r"request: +POST /items body: .*\"size\":5\}"])
    case("a server that dies: the run stops and says so", faults=["die"],
         must=[r"no-answer: POST /items \(createItem\): no answer .*answers nothing any more",
               r"warning: the server stopped answering; the last request sent: POST /items"])

    # A server that is not there: the run itself fails (2), never passes.
    with tempfile.NamedTemporaryFile("w", suffix=".json") as fh:
        json.dump(SPEC, fh)
        fh.flush()
        p = subprocess.run([sys.executable, CHECK, "--base-url", "http://127.0.0.1:9", "--spec", fh.name],
                           capture_output=True, text=True, timeout=60)
    expect("no server: exit 2", p.returncode == 2, p.stdout + p.stderr)

    if FAILURES:
        print(f"FAIL: {len(FAILURES)} self-test case(s): {', '.join(FAILURES)}")
        return 1
    print("PASS: openapi_check self-test")
    return 0


if __name__ == "__main__":
    sys.exit(main())
