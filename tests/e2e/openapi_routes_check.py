# Checks a live daemon's /openapi.json (for tests/e2e/openapi_test.sh): the
# document's structure against its contract (README "OpenAPI": version 3.1,
# the security schemes, one tag per operation, unique camelCase ids, every
# $ref resolving, every schema a valid JSON Schema 2020-12), that no route is
# marked undocumented, and then every path and method against the daemon: none
# may answer 404 "no route" or 405, and every 2xx JSON body must validate
# against the schema the document declares for it.
# Then the claims that can be checked cheaply: a body with an unknown field is
# refused where the schema says additionalProperties: false, and the viewer
# token gets 403 exactly on the operations marked x-sandman-role: admin.
# Usage: openapi_routes_check.py BASE_URL TOKEN USER NEW_USER VIEWER_TOKEN   (Debian's python3 with python3-jsonschema)
# USER has a session already; NEW_USER none (a valid create makes one): both of this run.
import http.client
import json
import re
import sys
import urllib.parse

import jsonschema

BASE, TOKEN, USER, NEW_USER, VIEWER = sys.argv[1:6]
URL = urllib.parse.urlsplit(BASE)
TAGS = {"Sessions", "Users", "GPUs", "Telemetry", "Alerts", "Cost", "Advice", "Nodes", "Dashboard", "Events", "Auth",
        "Health"}
UNVERSIONED = {"/healthz", "/readyz", "/metrics", "/openapi.json"}
METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
problems = []


def problem(msg):
    problems.append(msg)


def request(method, path, body=None, headers=None, token=TOKEN, timeout=30):
    conn = http.client.HTTPConnection(URL.hostname, URL.port, timeout=timeout)
    h = {"Authorization": "Bearer " + token} if token else {}
    if body is not None:
        h["Content-Type"] = "application/json"
    h.update(headers or {})
    conn.request(method, path, body=body, headers=h)
    resp = conn.getresponse()
    ctype = resp.getheader("Content-Type", "")
    if ctype.startswith("text/event-stream"):
        data = b""  # an endless stream: the status and headers are the answer
    else:
        data = resp.read()
    conn.close()
    return resp.status, ctype, data


status, ctype, data = request("GET", "/openapi.json")
if status != 200 or not ctype.startswith("application/json"):
    sys.exit(f"GET /openapi.json answered {status} {ctype}")
doc = json.loads(data)
status, _, data2 = request("GET", "/api/v1/openapi.json")
if status != 200 or json.loads(data2) != doc:
    problem("GET /api/v1/openapi.json is not the same document")
status, _, _ = request("GET", "/openapi.json", token="")
if status != 401:
    problem(f"GET /openapi.json without a token answered {status}, not 401 (it is auth'd as any GET)")

# ---------------------------------------------------------------- structure
if doc.get("openapi") != "3.1.0":
    problem(f"openapi is {doc.get('openapi')!r}, not 3.1.0")
if doc.get("info", {}).get("title") != "Sandman API" or not doc.get("info", {}).get("version"):
    problem("info needs title 'Sandman API' and a version")
if doc.get("servers") != [{"url": "/"}]:
    problem("servers must be [{url: /}]")
if doc.get("security") != [{"bearer": []}, {"cookie": []}]:
    problem("top-level security must be bearer or cookie")
schemes = doc.get("components", {}).get("securitySchemes", {})
if schemes.get("bearer", {}).get("type") != "http" or schemes.get("bearer", {}).get("scheme") != "bearer":
    problem("securitySchemes.bearer must be http bearer")
c = schemes.get("cookie", {})
if (c.get("type"), c.get("in"), c.get("name")) != ("apiKey", "cookie", "sandman_session"):
    problem("securitySchemes.cookie must be an apiKey cookie named sandman_session")


def resolve(ref):
    if not ref.startswith("#/"):
        raise KeyError(ref)
    node = doc
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def walk(node, where):
    if isinstance(node, dict):
        if "$ref" in node:
            try:
                resolve(node["$ref"])
            except (KeyError, TypeError):
                problem(f"{where}: $ref {node['$ref']} does not resolve")
        if "nullable" in node and isinstance(node["nullable"], bool):
            problem(f"{where}: 'nullable' is not OpenAPI 3.1 (use a type array)")
        for k, v in node.items():
            walk(v, where + "/" + k)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            walk(v, f"{where}/{i}")


walk(doc, "#")

Validator = jsonschema.Draft202012Validator
for name, schema in doc.get("components", {}).get("schemas", {}).items():
    try:
        Validator.check_schema(schema)
    except jsonschema.exceptions.SchemaError as e:
        problem(f"components.schemas.{name} is not a valid JSON Schema: {e.message}")

ids = {}
undocumented = []
operations = []
for path, item in doc.get("paths", {}).items():
    if not (path.startswith("/api/v1/") or path in UNVERSIONED):
        problem(f"path {path} should not be published (only /api/v1 and the probes)")
    template_params = re.findall(r"{([^}]+)}", path)
    for method, op in item.items():
        if method not in METHODS:
            continue
        where = f"{method.upper()} {path}"
        operations.append((method.upper(), path, op))
        if op.get("x-sandman-undocumented"):
            undocumented.append(where)
            continue
        oid = op.get("operationId", "")
        if not re.fullmatch(r"[a-z][A-Za-z0-9]*", oid):
            problem(f"{where}: operationId {oid!r} is not camelCase")
        if oid in ids:
            problem(f"{where}: operationId {oid} is also {ids[oid]}")
        ids[oid] = where
        summary = op.get("summary", "")
        if not summary or "\n" in summary:
            problem(f"{where}: summary must be one non-empty line")
        tags = op.get("tags", [])
        if len(tags) != 1 or tags[0] not in TAGS:
            problem(f"{where}: tags {tags} must be one of {sorted(TAGS)}")
        if op.get("x-sandman-role") not in ("viewer", "admin"):
            problem(f"{where}: x-sandman-role must be viewer or admin")
        params = [resolve(p["$ref"]) if "$ref" in p else p for p in op.get("parameters", [])]
        for p in params:
            if "schema" in p:
                try:
                    Validator.check_schema(p["schema"])
                except jsonschema.exceptions.SchemaError as e:
                    problem(f"{where}: parameter {p.get('name')}: {e.message}")
        declared = {p["name"] for p in params if p.get("in") == "path" and p.get("required") is True}
        for t in template_params:
            if t not in declared:
                problem(f"{where}: path parameter {t} is not declared (in: path, required: true)")
        responses = op.get("responses", {})
        if not responses:
            problem(f"{where}: no responses")
        for code, r in responses.items():
            if not (re.fullmatch(r"[1-5][0-9][0-9]", code) or code == "default"):
                problem(f"{where}: response key {code}")
            if "description" not in r:
                problem(f"{where}: response {code} has no description")
            for media, content in r.get("content", {}).items():
                if "schema" not in content:
                    problem(f"{where}: {code} {media} has no schema")
                else:
                    try:
                        Validator.check_schema(content["schema"])
                    except jsonschema.exceptions.SchemaError as e:
                        problem(f"{where}: {code} {media}: {e.message}")
            # /readyz's 503 is its answer (not ready, and why), not an error.
            if code.startswith(("4", "5")) and "application/json" in r.get("content", {}) and path != "/readyz":
                if r["content"]["application/json"]["schema"] != {"$ref": "#/components/schemas/Error"}:
                    problem(f"{where}: error {code} is not the Error schema")
        body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
        if body is not None:
            try:
                Validator.check_schema(body)
            except jsonschema.exceptions.SchemaError as e:
                problem(f"{where}: request body: {e.message}")
if undocumented:
    problem("routes without documentation (x-sandman-undocumented):\n  " + "\n  ".join(undocumented))

# ---------------------------------------------------------------- against the daemon
def schema_for(op, status, media):
    r = op["responses"].get(str(status)) or op["responses"].get("default")
    if r is None:
        return None, False
    content = r.get("content", {})
    for m, c in content.items():
        if media.startswith(m.split(";")[0]):
            return c.get("schema"), True
    return None, bool(not content)


def validate(body, schema, where):
    resolver = jsonschema.RefResolver.from_schema(doc)
    try:
        Validator(schema, resolver=resolver).validate(body)
    except jsonschema.exceptions.ValidationError as e:
        path = "/".join(str(p) for p in e.absolute_path)
        problem(f"{where}: the body does not match its schema at /{path}: {e.message[:300]}")


# Real values for the path parameters the daemon knows (a node, a GPU, a session).
def get_json(path):
    s, t, d = request("GET", path)
    return json.loads(d) if s == 200 and t.startswith("application/json") else None


known = {}
nodes = get_json("/api/v1/gpu-nodes") or {}
if nodes.get("nodes"):
    known["name"] = nodes["nodes"][0]["name"]
realtime = get_json("/api/v1/metrics/realtime") or {}
if realtime.get("gpus"):
    known["uuid"] = realtime["gpus"][0]["uuid"]
sessions = get_json("/api/v1/sessions") or []
if sessions:
    known["session"] = sessions[0]["session_id"]
    known["user"] = sessions[0]["user_id"]

CANDIDATES = ["s-0123456789abcdef", "alice", "GPU-0", "x1", "1"]


def value_for(path, p):
    name = p["name"]
    if name == "id" and "/sessions/" in path and "session" in known:
        return known["session"]
    if name in ("name", "uuid", "user") and name in known and "/teams/" not in path and "/projects/" not in path:
        return known[name]
    schema = p.get("schema", {})
    if "$ref" in schema:
        schema = resolve(schema["$ref"])
    if schema.get("type") == "integer":
        return "1"
    pattern = schema.get("pattern")
    for c in CANDIDATES:
        if pattern is None or re.search(pattern, c):
            return c
    return "x"


# Valid writes first (the sweep below sends {} and deletes things): their
# answers must match the schemas too.
def find_op(method, path):
    return doc["paths"].get(path, {}).get(method.lower())


def example(method, path, target, body):
    op = find_op(method, path)
    if op is None:
        problem(f"{method} {path} is not in the document")
        return None
    status, ctype, data = request(method, target, body=json.dumps(body))
    where = f"{method} {target} {json.dumps(body)} -> {status}"
    if not 200 <= status < 300:
        problem(f"{where}: a valid request failed: {data[:200]!r}")
        return None
    schema, declared = schema_for(op, status, ctype)
    if not declared or str(status) not in op["responses"]:
        problem(f"{where}: status {status} / {ctype} is not declared")
        return None
    if schema is not None and ctype.startswith("application/json"):
        validate(json.loads(data), schema, where)
        return json.loads(data)
    return None


made = example("POST", "/api/v1/sessions", "/api/v1/sessions", {"user_id": NEW_USER, "ttl_minutes": 30})
if made:
    sid = made["session_id"]
    example("PATCH", "/api/v1/sessions/{id}", f"/api/v1/sessions/{sid}", {"ttl_seconds": 600})
example("POST", "/api/v1/teams", "/api/v1/teams", {"name": "oa-team2"})
example("POST", "/api/v1/projects", "/api/v1/projects", {"name": "oa-proj2", "team": "oa-team2"})
example("PUT", "/api/v1/users/{user}", f"/api/v1/users/{USER}", {"team": "oa-team2", "projects": ["oa-proj2"]})
example("PUT", "/api/v1/budgets", "/api/v1/budgets", {"scope": "project", "name": "oa-proj2", "usd_per_month": 50})
example("POST", "/api/v1/budgets", "/api/v1/budgets", {"scope": "user", "name": USER, "usd_per_month": 5.5})
example("PUT", "/api/v1/cost/prices/{model}", "/api/v1/cost/prices/A100", {"usd_per_hour": 2.5})
if "name" in known:
    n = urllib.parse.quote(known["name"], safe="")
    example("PUT", "/api/v1/gpu-nodes/{name}", f"/api/v1/gpu-nodes/{n}",
            {"description": "rack 4", "labels": {"rack": "r4"}, "cluster": "lab", "by": "e2e"})
    example("PATCH", "/api/v1/gpu-nodes/{name}/status", f"/api/v1/gpu-nodes/{n}/status",
            {"status": "maintenance", "reason": "openapi e2e"})
    example("PATCH", "/api/v1/gpu-nodes/{name}/status", f"/api/v1/gpu-nodes/{n}/status", {"status": "active"})
for path in ("/api/v1/dashboard", "/api/v1/gpu-nodes/recent", "/api/v1/demand", "/api/v1/cost/catalog",
             "/api/v1/budgets", "/api/v1/advice/rightsizing?all=true", "/api/v1/cost/forecast?horizon=30d&group_by=team",
             "/api/v1/cost?group_by=user&step=week", "/api/v1/alerts?state=all"):
    op = find_op("GET", path.split("?")[0])
    status, ctype, data = request("GET", path)
    schema, declared = schema_for(op, status, ctype)
    if status != 200 or not declared:
        problem(f"GET {path} -> {status} {ctype}")
    elif schema is not None:
        validate(json.loads(data), schema, f"GET {path}")

checked = 0
for method, path, op in operations:
    params = [resolve(p["$ref"]) if "$ref" in p else p for p in op.get("parameters", [])]
    target = path
    for p in params:
        if p.get("in") == "path":
            target = target.replace("{" + p["name"] + "}", urllib.parse.quote(value_for(path, p), safe=""))
    has_body = "requestBody" in op
    try:
        status, ctype, data = request(method, target, body="{}" if has_body else None, timeout=10)
    except Exception as e:  # noqa: BLE001 - any transport failure is a finding
        problem(f"{method} {target}: no answer ({e})")
        continue
    checked += 1
    where = f"{method} {target} -> {status}"
    if status == 405:
        problem(f"{where}: the daemon does not answer this method here")
        continue
    if status == 404 and ctype.startswith("application/json"):
        try:
            if json.loads(data).get("error", "").startswith("no route"):
                problem(f"{where}: the daemon has no such route")
                continue
        except ValueError:
            pass
    schema, declared = schema_for(op, status, ctype)
    if not declared:
        problem(f"{where}: {ctype} is not a declared media type of this response")
        continue
    if schema is not None and ctype.startswith("application/json"):
        try:
            body = json.loads(data)
        except ValueError:
            problem(f"{where}: the body is not JSON")
            continue
        validate(body, schema, where)

# Unknown fields, where the schema refuses them; and the roles.
def body_schema(op):
    s = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
    while isinstance(s, dict) and "$ref" in s and len(s) == 1:
        s = resolve(s["$ref"])
    return s


for method, path, op in operations:
    params = [resolve(p["$ref"]) if "$ref" in p else p for p in op.get("parameters", [])]
    target = path
    for p in params:
        if p.get("in") == "path":
            target = target.replace("{" + p["name"] + "}", urllib.parse.quote(value_for(path, p), safe=""))
    s = body_schema(op)
    if isinstance(s, dict) and s.get("additionalProperties") is False:
        status, _, data = request(method, target, body=json.dumps({"zz_not_a_field": 1}))
        if 200 <= status < 300:
            problem(f"{method} {target}: a body with an unknown field was accepted ({status})")
    if path in ("/openapi.json", "/api/v1/openapi.json") or op.get("security") == []:
        continue
    status, _, _ = request(method, target, body="{}" if "requestBody" in op else None, token=VIEWER, timeout=5)
    if op.get("x-sandman-role") == "admin" and status != 403:
        problem(f"{method} {target}: role admin, but the viewer got {status}, not 403")
    if op.get("x-sandman-role") == "viewer" and status == 403:
        problem(f"{method} {target}: role viewer, but the viewer got 403")

# The CSV variant of /cost, by Accept.
status, ctype, data = request("GET", "/api/v1/cost", headers={"Accept": "text/csv"})
cost_op = doc["paths"]["/api/v1/cost"]["get"]
if status != 200 or not ctype.startswith("text/csv") or "text/csv" not in cost_op["responses"]["200"]["content"]:
    problem(f"GET /api/v1/cost with Accept: text/csv answered {status} {ctype}, or the document lacks text/csv")

print(json.dumps({"paths": len(doc.get("paths", {})), "operations": len(operations), "checked_live": checked,
                  "schemas": len(doc.get("components", {}).get("schemas", {})), "bytes": len(data2)}))
if problems:
    print(f"{len(problems)} problem(s):")
    for p in problems:
        print(" - " + p)
    sys.exit(1)
