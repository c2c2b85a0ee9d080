#!/usr/bin/python3
# A property-based tester for any OpenAPI 3.1 document against the live server it describes.
# It exists so that the document and the server cannot drift apart unnoticed: every operation
# is driven with requests generated from the document's own schemas (valid ones and near-misses),
# and every answer must be one the document allows.
#
# Usage:
#   openapi_check.py --base-url URL --token-file FILE [--spec FILE] [--examples N] [--seed S]
#                    [--time-budget SECONDS] [--only REGEX] [--skip OPERATION_ID]... [--json FILE]
#
# Without --spec the document is fetched from BASE/openapi.json with the token. Exit status:
# 0 no contradiction, 1 contradictions (each printed with the request that caused it, shrunk by
# Hypothesis to a minimal one, and a curl line that repeats it), 2 the run itself failed.
#
# Checks on every answer:
#   server-error         no 5xx, documented or not (with --allow-documented-5xx: a 5xx other than
#                        500 that the operation documents, such as 503 for "no capacity", passes)
#   undocumented-status  the status is a documented one, a documented range (4XX) or "default"
#                        (with --strict-status, "default" does not count: a document that has it
#                        on every operation would otherwise let any status through)
#   content-type         the media type is a documented one; a body where none is documented,
#                        or none where one is, is a contradiction too
#   response-schema      a JSON body validates (JSON Schema 2020-12) against that response's schema
#   invalid-accepted     a request the document calls invalid (unknown property where
#                        additionalProperties is false, missing required, wrong type, out of range,
#                        a string outside its enum/pattern/length) is never answered 2xx
#   unauthenticated      an operation that needs credentials refuses a request without them
#   no-answer            the server answers at all (and stays up)
#   document             the document itself is usable: unique operationIds, resolvable $refs,
#                        schemas that are valid JSON Schema
#
# Order, so that destructive operations cannot wreck the run: reads first (their answers seed
# path parameters), then writes, then deletes of one resource, and last the bulk deletes (DELETE
# on a path without parameters, such as DELETE /sessions?confirm=true). An operation marked
# `x-dangerous: true` (or named with --skip) is not sent at all; the output says which and why.

import argparse
import datetime
import http.client
import json
import math
import os
import re
import shlex
import socket
import ssl
import sys
import time
import urllib.parse

try:
    import jsonschema
    from hypothesis import configuration as hypothesis_configuration
    from hypothesis import HealthCheck, Phase, given, seed, settings
    from hypothesis import strategies as st
except ImportError as e:  # pragma: no cover - the message is the point
    print(f"openapi_check: {e}: install Debian's python3-hypothesis and python3-jsonschema "
          "(scripts/lib.sh PACKAGES) and run with /usr/bin/python3", file=sys.stderr)
    sys.exit(2)

# Hypothesis keeps a Unicode table (and, unused here, its example database) in ./.hypothesis
# by default: keep it out of whatever directory the check runs in.
hypothesis_configuration.set_hypothesis_home_dir(os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "sandman", "hypothesis"))
sys.dont_write_bytecode = True

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
JSON_TYPES = ("null", "boolean", "integer", "number", "string", "array", "object")
NO_BODY = object()
OMIT = object()  # a near-miss that leaves out a required query parameter
MAX_DEPTH = 6  # $ref chains and nesting deeper than this generate nothing more


class RunFailed(Exception):
    """The check could not run (no document, server down at the start): exit 2."""


# ---------------------------------------------------------------- the document

def json_pointer(doc, ref):
    if not ref.startswith("#"):
        raise KeyError(f"only local $refs are supported: {ref}")
    node = doc
    for part in ref[1:].split("/")[1:]:
        part = urllib.parse.unquote(part).replace("~1", "/").replace("~0", "~")
        if isinstance(node, list):
            node = node[int(part)]
        else:
            node = node[part]
    return node


def resolve(doc, obj, depth=0):
    """Follows $ref (for parameters, bodies and responses, which may be references too)."""
    while isinstance(obj, dict) and "$ref" in obj and depth < 20:
        obj = json_pointer(doc, obj["$ref"])
        depth += 1
    return obj


def iso_datetime_ok(s):
    if not isinstance(s, str):
        return True
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})", s):
        return False
    try:
        datetime.datetime.fromisoformat(re.sub(r"[Zz]$", "+00:00", re.sub(r"(\.\d{6})\d+", r"\1", s)))
    except ValueError:
        return False
    return True


def make_format_checker():
    fc = jsonschema.FormatChecker(())
    fc.checks("date-time")(iso_datetime_ok)

    @fc.checks("date")
    def _date(s):
        if not isinstance(s, str):
            return True
        try:
            datetime.date.fromisoformat(s)
            return re.fullmatch(r"\d{4}-\d{2}-\d{2}", s) is not None
        except ValueError:
            return False

    @fc.checks("uuid")
    def _uuid(s):
        return not isinstance(s, str) or re.fullmatch(
            r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", s) is not None

    return fc


def ascii_pattern(validator, pattern, instance, schema):
    # ECMA-262 (what JSON Schema means) has ASCII \d and \w; Python's are Unicode.
    if validator.is_type(instance, "string") and not re.search(pattern, instance, re.ASCII):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


SchemaValidator = jsonschema.validators.extend(jsonschema.Draft202012Validator, {"pattern": ascii_pattern})


class Document:
    def __init__(self, doc):
        self.doc = doc
        self.problems = []  # (where, message): the document's own faults
        self.resolver = jsonschema.RefResolver(base_uri="", referrer=doc)
        self.format_checker = make_format_checker()
        self._validators = {}
        version = str(doc.get("openapi", ""))
        if not version.startswith("3.1"):
            self.problems.append(("openapi", f"openapi is {version!r}, not 3.1.x: schemas are read as JSON Schema 2020-12 anyway"))
        for name, schema in ((self.doc.get("components") or {}).get("schemas") or {}).items():
            self.check_schema(f"components/schemas/{name}", schema)
        self.operations = self._operations()

    def validator(self, schema, formats):
        key = (json.dumps(schema, sort_keys=True), formats)
        v = self._validators.get(key)
        if v is None:
            v = SchemaValidator(schema, resolver=self.resolver,
                                format_checker=self.format_checker if formats else None)
            self._validators[key] = v
        return v

    def check_schema(self, where, schema):
        try:
            SchemaValidator.check_schema(schema)
        except jsonschema.SchemaError as e:
            self.problems.append((where, f"not a valid JSON Schema: {e.message}"))
            return False
        # Every $ref must lead somewhere.
        def walk(node, path):
            if isinstance(node, dict):
                if isinstance(node.get("$ref"), str):
                    try:
                        json_pointer(self.doc, node["$ref"])
                    except (KeyError, IndexError, ValueError):
                        self.problems.append((where, f"$ref {node['$ref']} does not resolve"))
                for k, v in node.items():
                    walk(v, path + [k])
            elif isinstance(node, list):
                for i, v in enumerate(node):
                    walk(v, path + [i])
        walk(schema, [])
        return True

    def _operations(self):
        ops = []
        seen = {}
        paths = self.doc.get("paths") or {}
        if not paths:
            self.problems.append(("paths", "the document has no paths"))
        top_security = self.doc.get("security")
        for path, item in paths.items():
            item = resolve(self.doc, item)
            shared = item.get("parameters", [])
            for method in HTTP_METHODS:
                if method not in item:
                    continue
                raw = item[method]
                op_id = raw.get("operationId") or f"{method.upper()} {path}"
                if raw.get("operationId"):
                    if op_id in seen:
                        self.problems.append((op_id, f"operationId used twice: {seen[op_id]} and {method.upper()} {path}"))
                    seen[op_id] = f"{method.upper()} {path}"
                params = {}
                for p in list(shared) + list(raw.get("parameters", [])):
                    try:
                        p = resolve(self.doc, p)
                    except (KeyError, IndexError, ValueError) as e:
                        self.problems.append((op_id, f"parameter $ref does not resolve: {e}"))
                        continue
                    params[(p.get("in"), p.get("name"))] = p  # the operation's own win over the path's
                for name in re.findall(r"{([^}]+)}", path):
                    if ("path", name) not in params:
                        self.problems.append((op_id, f"path parameter {{{name}}} is not declared"))
                        params[("path", name)] = {"in": "path", "name": name, "required": True,
                                                   "schema": {"type": "string"}}
                for (where_in, name), p in params.items():
                    if "schema" in p:
                        self.check_schema(f"{op_id} parameter {name}", p["schema"])
                body = None
                if "requestBody" in raw:
                    try:
                        body = resolve(self.doc, raw["requestBody"])
                    except (KeyError, IndexError, ValueError) as e:
                        self.problems.append((op_id, f"requestBody $ref does not resolve: {e}"))
                responses = {}
                for code, r in (raw.get("responses") or {}).items():
                    try:
                        r = resolve(self.doc, r)
                    except (KeyError, IndexError, ValueError) as e:
                        self.problems.append((op_id, f"response {code} $ref does not resolve: {e}"))
                        continue
                    responses[str(code)] = r
                    for media, m in (r.get("content") or {}).items():
                        if "schema" in m:
                            self.check_schema(f"{op_id} response {code} {media}", m["schema"])
                if not responses:
                    self.problems.append((op_id, "no responses documented"))
                if body:
                    for media, m in (body.get("content") or {}).items():
                        if "schema" in m:
                            self.check_schema(f"{op_id} requestBody {media}", m["schema"])
                security = raw.get("security", top_security)
                needs_auth = bool(security) and not any(req == {} for req in security)
                ops.append(Operation(op_id, method.upper(), path, list(params.values()), body, responses,
                                     needs_auth, raw))
        return ops


class Operation:
    def __init__(self, op_id, method, path, params, body, responses, needs_auth, raw):
        self.op_id = op_id
        self.method = method
        self.path = path
        self.params = params
        self.body = body
        self.responses = responses
        self.needs_auth = needs_auth
        self.raw = raw

    @property
    def label(self):
        return f"{self.method} {self.path} ({self.op_id})"

    def documented(self, status):
        s = str(status)
        if s in self.responses:
            return s, self.responses[s]
        rng = s[0] + "XX"
        for k in (rng, rng.lower()):
            if k in self.responses:
                return k, self.responses[k]
        if "default" in self.responses:
            return "default", self.responses["default"]
        return None, None

    def phase(self):
        """The order operations run in: 0 reads of collections (their answers name things for the
        others' path parameters), 1 writes (creates first), 2 reads of one thing (the writes made
        some), 3 deletes of one thing, 4 bulk deletes (DELETE on a path without parameters)."""
        if self.method in ("GET", "HEAD", "OPTIONS"):
            return 2 if "{" in self.path else 0
        if self.method == "DELETE":
            return 3 if "{" in self.path else 4
        return 1

    def dangerous(self):
        for k in ("x-dangerous", "x-sandman-dangerous"):
            if self.raw.get(k):
                return f"marked {k}"
        return None


# ---------------------------------------------------------------- strategies from schemas

ODD_STRINGS = ["", " ", "0", "-1", "null", "true", "ü", "名前", "😀", "\u0000", "a\nb", "\t", "%00", "%2F",
               "../..", "'\"<>&;", "a b", "\u202e", "\ufeff", "x" * 300, "é" * 70, "a" * 5000]


def schema_types(schema):
    t = schema.get("type")
    if isinstance(t, str):
        return [t]
    if isinstance(t, list):
        return list(t)
    if "const" in schema:
        return [json_type(schema["const"])]
    if "enum" in schema:
        return sorted({json_type(v) for v in schema["enum"]})
    if "properties" in schema or "required" in schema or "additionalProperties" in schema:
        return ["object"]
    if "items" in schema or "prefixItems" in schema:
        return ["array"]
    if any(k in schema for k in ("minLength", "maxLength", "pattern", "format")):
        return ["string"]
    if any(k in schema for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")):
        return ["number"]
    return []


def json_type(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "integer" if v.is_integer() else "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def merge_all_of(doc, schema, depth):
    """allOf folded into one schema, well enough to generate from (validation filters the rest)."""
    out = {k: v for k, v in schema.items() if k != "allOf"}
    for sub in schema["allOf"]:
        sub = deref(doc, sub, depth)
        if "allOf" in sub:
            sub = merge_all_of(doc, sub, depth + 1)
        for k, v in sub.items():
            if k == "properties":
                out.setdefault("properties", {}).update(v)
            elif k == "required":
                out["required"] = sorted(set(out.get("required", [])) | set(v))
            elif k not in out:
                out[k] = v
    return out


def deref(doc, schema, depth=0):
    if schema is True or schema is None:
        return {}
    if schema is False:
        return {"not": {}}
    seen = 0
    while "$ref" in schema and seen < 20:
        rest = {k: v for k, v in schema.items() if k != "$ref"}
        target = json_pointer(doc, schema["$ref"])
        if target is True:
            target = {}
        schema = {**target, **rest}
        seen += 1
    return schema


class Strategies:
    """Hypothesis strategies for values a schema calls valid, and near-misses that it does not."""

    def __init__(self, document, known=None):
        self.document = document
        self.doc = document.doc
        # known(name): values earlier answers carried under that field name; a body field of the
        # same name gets them too (a user_id that exists finds more code than a random one).
        self.known = known or (lambda name: [])

    def valid(self, schema, depth=0):
        schema = deref(self.doc, schema, depth)
        if depth > MAX_DEPTH:
            return st.nothing()
        if "allOf" in schema:
            schema = merge_all_of(self.doc, schema, depth)
        if "const" in schema:
            return st.just(schema["const"])
        if "enum" in schema:
            return st.sampled_from(schema["enum"])
        for comb in ("oneOf", "anyOf"):
            if comb in schema:
                base = {k: v for k, v in schema.items() if k != comb}
                return st.one_of([self.valid({**base, **deref(self.doc, s, depth)}, depth + 1)
                                  for s in schema[comb]])
        examples = [e for e in (schema.get("examples") or []) if isinstance(schema.get("examples"), list)]
        if "example" in schema:
            examples.append(schema["example"])
        if "default" in schema:
            examples.append(schema["default"])
        types = schema_types(schema)
        if not types:
            gen = self.any_json()
        else:
            gen = st.one_of([self._typed(t, schema, depth) for t in types])
        if examples:
            gen = st.one_of(st.sampled_from(examples), gen)
        return gen

    def field(self, name, schema, depth):
        gen = self.valid(schema, depth + 1)
        if depth == 0:
            v = self.document.validator(schema, False)
            known = [x for x in self.known(name) if v.is_valid(x)]
            if known:
                gen = st.one_of(st.sampled_from(known), gen)
        return gen

    def any_json(self):
        leaf = st.one_of(st.none(), st.booleans(), st.integers(-10, 10 ** 6), st.text(max_size=12))
        return st.recursive(leaf, lambda kids: st.one_of(st.lists(kids, max_size=3),
                                                         st.dictionaries(st.text(max_size=8), kids, max_size=3)),
                            max_leaves=6)

    def _typed(self, t, schema, depth):
        if t == "null":
            return st.none()
        if t == "boolean":
            return st.booleans()
        if t == "integer":
            lo, hi = bounds(schema, integer=True)
            return st.integers(min_value=lo, max_value=hi).filter(lambda v: multiple_ok(v, schema))
        if t == "number":
            lo, hi = bounds(schema, integer=False)
            ints = st.integers(min_value=None if lo is None else math.ceil(lo),
                               max_value=None if hi is None else math.floor(hi))
            floats = st.floats(min_value=lo, max_value=hi, allow_nan=False, allow_infinity=False,
                               exclude_min=schema.get("exclusiveMinimum") is not None and lo is not None,
                               exclude_max=schema.get("exclusiveMaximum") is not None and hi is not None)
            return st.one_of(ints, floats).filter(lambda v: multiple_ok(v, schema))
        if t == "string":
            return self.string(schema)
        if t == "array":
            items = schema.get("items", {})
            lo = schema.get("minItems", 0)
            hi = min(schema.get("maxItems", lo + 4), lo + 4)
            prefix = [self.valid(s, depth + 1) for s in schema.get("prefixItems", [])]
            rest = self.valid(items, depth + 1) if items is not False else st.nothing()
            if prefix:
                return st.tuples(st.tuples(*prefix), st.lists(rest, max_size=max(0, hi - len(prefix)))).map(
                    lambda p: list(p[0]) + p[1])
            return st.lists(rest, min_size=lo, max_size=max(lo, hi), unique_by=(lambda x: json.dumps(x, sort_keys=True))
                            if schema.get("uniqueItems") else None)
        if t == "object":
            props = schema.get("properties", {})
            required = set(schema.get("required", []))
            req = {k: self.field(k, props.get(k, {}), depth) for k in sorted(required)}
            opt = {k: self.field(k, v, depth) for k, v in sorted(props.items())
                   if k not in required and not (isinstance(v, dict) and v.get("readOnly"))}
            # Every optional field at random is rarely a request the server takes as a whole:
            # the required ones alone, now and then.
            gen = st.one_of(st.fixed_dictionaries(req), st.fixed_dictionaries(req, optional=opt)) if opt \
                else st.fixed_dictionaries(req)
            extra = schema.get("additionalProperties")
            if isinstance(extra, dict) and extra and not props:
                # A map (labels and the like): a few entries of the value schema.
                names = self.string(deref(self.doc, schema.get("propertyNames", {"type": "string"}), depth))
                gen = st.tuples(gen, st.dictionaries(names, self.valid(extra, depth + 1), max_size=3)).map(
                    lambda p: {**p[1], **p[0]})
            return gen
        return st.nothing()

    def string(self, schema):
        lo = schema.get("minLength", 0)
        hi = schema.get("maxLength")
        fmt = schema.get("format")
        if "pattern" in schema:
            try:
                rx = re.compile(schema["pattern"], re.ASCII)
            except re.error:
                return st.text(min_size=lo, max_size=hi if hi is not None else 40)
            gen = st.from_regex(rx, fullmatch=schema["pattern"].startswith("^") and schema["pattern"].endswith("$"))
            return gen.filter(lambda s: len(s) >= lo and (hi is None or len(s) <= hi))
        if fmt == "date-time":
            return st.datetimes(min_value=datetime.datetime(2000, 1, 1), max_value=datetime.datetime(2100, 1, 1)).map(
                lambda d: d.replace(microsecond=0).isoformat() + "Z")
        if fmt == "date":
            return st.dates(min_value=datetime.date(2000, 1, 1), max_value=datetime.date(2100, 1, 1)).map(
                lambda d: d.isoformat())
        if fmt == "uuid":
            return st.uuids().map(str)
        odd = [s for s in ODD_STRINGS if len(s) >= lo and (hi is None or len(s) <= hi)]
        text = st.text(min_size=lo, max_size=hi if hi is not None else max(lo, 40))
        # Names as servers like them (user names, labels): arbitrary Unicode alone rarely gets past
        # a server's own checks to the code behind them.
        names = st.from_regex(re.compile(r"[a-z_][a-z0-9_-]{0,15}", re.ASCII), fullmatch=True).filter(
            lambda s: len(s) >= lo and (hi is None or len(s) <= hi))
        return st.one_of(text, names, st.sampled_from(odd)) if odd else st.one_of(text, names)

    # -------------------------------------------------------- near-misses

    def mutations(self, schema, value, depth=0):
        """(what, mutated value) pairs that should break `schema`; the caller confirms each one."""
        schema = deref(self.doc, schema, depth)
        if depth > MAX_DEPTH:
            return []
        if "allOf" in schema:
            schema = merge_all_of(self.doc, schema, depth)
        out = []
        types = schema_types(schema)
        wrong = [t for t in JSON_TYPES if types and t not in types and not (t == "integer" and "number" in types)]
        for t in wrong[:7]:
            out.append((f"wrong type ({t})", sample_of_type(t)))
        if "enum" in schema:
            out.append(("not in enum", "not-one-of-" + "-".join(str(v)[:8] for v in schema["enum"][:2]) + "-x"))
        if isinstance(value, dict):
            props = schema.get("properties", {})
            if schema.get("additionalProperties") is False or schema.get("unevaluatedProperties") is False:
                out.append(("unknown property", {**value, "unknown_field_x": 1}))
            for k in schema.get("required", []):
                if k in value:
                    out.append((f"missing required '{k}'", {kk: vv for kk, vv in value.items() if kk != k}))
            for k, sub in props.items():
                cur = value.get(k)
                base = value if k in value else {**value, k: cur}
                for what, mv in self.mutations(sub, cur, depth + 1):
                    out.append((f"{k}: {what}", {**base, k: mv}))
        elif isinstance(value, list):
            items = schema.get("items")
            if "maxItems" in schema:
                out.append(("too many items", value + value[:1] * (schema["maxItems"] + 1 - len(value))
                            if value else [None] * (schema["maxItems"] + 1)))
            if schema.get("minItems", 0) > 0:
                out.append(("too few items", []))
            if isinstance(items, dict) and value:
                for what, mv in self.mutations(items, value[0], depth + 1):
                    out.append((f"[0]: {what}", [mv] + value[1:]))
        elif isinstance(value, bool) or value is None:
            pass
        elif isinstance(value, (int, float)):
            lo, hi = bounds(schema, integer="integer" in types and "number" not in types)
            if lo is not None:
                out.append(("below minimum", lo - 1))
            if hi is not None:
                out.append(("above maximum", hi + 1))
            if "integer" in types and "number" not in types:
                out.append(("fraction for an integer", (value if isinstance(value, int) else 1) + 0.5))
        elif isinstance(value, str):
            if "maxLength" in schema:
                out.append(("too long", "x" * (schema["maxLength"] + 1)))
            if schema.get("minLength", 0) > 0:
                out.append(("too short (empty)", ""))
            if "pattern" in schema:
                for s in ("", " ", "ü", "a b/c", "UPPER", "-x", "x" * 300, "0"):
                    if not re.search(schema["pattern"], s, re.ASCII):
                        out.append((f"not matching pattern ({s[:10]!r})", s))
                        break
            if schema.get("format") == "date-time":
                out.append(("not a date-time", "yesterday"))
        return out


def mutation_kind(what):
    what = what.rsplit(": ", 1)[-1]
    for k in ("unknown property", "missing", "wrong type", "minimum", "maximum", "fraction", "items"):
        if k in what:
            return k
    return "string"


def sample_of_type(t):
    return {"null": None, "boolean": True, "integer": 7, "number": 1.5, "string": "text",
            "array": [1], "object": {"k": 1}}[t]


def bounds(schema, integer):
    lo = schema.get("minimum")
    hi = schema.get("maximum")
    xlo = schema.get("exclusiveMinimum")
    xhi = schema.get("exclusiveMaximum")
    if isinstance(xlo, (int, float)) and not isinstance(xlo, bool):
        lo = max(lo, xlo + 1) if integer and lo is not None else (xlo + 1 if integer else (xlo if lo is None else max(lo, xlo)))
    if isinstance(xhi, (int, float)) and not isinstance(xhi, bool):
        hi = min(hi, xhi - 1) if integer and hi is not None else (xhi - 1 if integer else (xhi if hi is None else min(hi, xhi)))
    if integer:
        lo = None if lo is None else math.ceil(lo)
        hi = None if hi is None else math.floor(hi)
    return lo, hi


def multiple_ok(v, schema):
    m = schema.get("multipleOf")
    if not m:
        return True
    q = v / m
    return abs(q - round(q)) < 1e-9


# ---------------------------------------------------------------- parameters on the wire

def to_wire(value):
    """A query/path value as text (style form / simple), arrays as lists of texts."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, (list, tuple)):
        return [to_wire(v) for v in value]
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def from_wire(text, schema, doc):
    """What a server that honours `schema` reads from the text; None when no reading fits."""
    schema = deref(doc, schema)
    types = schema_types(schema) or ["string"]
    for t in types:
        try:
            if t == "integer" and re.fullmatch(r"-?\d+", text):
                return int(text)
            if t == "number" and re.fullmatch(r"-?\d+(\.\d+)?([eE][-+]?\d+)?", text):
                return float(text) if "." in text or "e" in text.lower() else int(text)
            if t == "boolean" and text in ("true", "false"):
                return text == "true"
            if t == "string":
                return text
            if t == "null" and text == "":
                return None
        except ValueError:
            continue
    return NotImplemented


# ---------------------------------------------------------------- HTTP

class Response:
    def __init__(self, status, headers, body, streamed):
        self.status = status
        self.headers = headers
        self.body = body
        self.streamed = streamed  # text/event-stream: headers only, the body never ends

    @property
    def media_type(self):
        ct = self.headers.get("content-type", "")
        return ct.split(";")[0].strip().lower()


class Client:
    def __init__(self, base_url, token, insecure, timeout=15):
        u = urllib.parse.urlsplit(base_url)
        if u.scheme not in ("http", "https"):
            raise RunFailed(f"--base-url must be http:// or https://, got {base_url}")
        self.scheme, self.netloc = u.scheme, u.netloc
        self.prefix = u.path.rstrip("/")
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.ctx = None
        if self.scheme == "https":
            self.ctx = ssl._create_unverified_context() if insecure else ssl.create_default_context()
        self.conn = None
        self.requests = 0

    def _connect(self):
        if self.scheme == "https":
            conn = http.client.HTTPSConnection(self.netloc, timeout=self.timeout, context=self.ctx)
        else:
            conn = http.client.HTTPConnection(self.netloc, timeout=self.timeout)
        conn.connect()
        # Small requests one after another: Nagle's delay against delayed ACKs would cost 40 ms each.
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    def send(self, method, target, body=None, auth=True, headers=None):
        """target: path with query, already encoded. Returns a Response or raises OSError."""
        h = {"Accept": "*/*"}
        if auth and self.token:
            h["Authorization"] = "Bearer " + self.token
        if body is not None:
            h["Content-Type"] = "application/json"
        h.update(headers or {})
        data = body.encode("utf-8") if isinstance(body, str) else body
        last = None
        for attempt in range(2):  # a kept-alive connection the server closed: one fresh try
            if self.conn is None:
                self.conn = self._connect()
            try:
                self.conn.request(method, self.prefix + target, body=data, headers=h)
                r = self.conn.getresponse()
                hdrs = {k.lower(): v for k, v in r.getheaders()}
                ct = hdrs.get("content-type", "").split(";")[0].strip().lower()
                self.requests += 1
                if ct == "text/event-stream":
                    self.close()
                    return Response(r.status, hdrs, b"", True)
                raw = r.read()
                if r.will_close:
                    self.close()
                return Response(r.status, hdrs, raw, False)
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as e:
                self.close()
                last = e
                if attempt == 0 and self.requests > 0:
                    continue
                raise
            except (OSError, http.client.HTTPException):
                self.close()
                raise
        raise last

    def close(self):
        if self.conn is not None:
            try:
                self.conn.close()
            except OSError:
                pass
            self.conn = None


class Request:
    def __init__(self, op, path_values, query, headers, body, invalid):
        self.op = op
        self.path_values = path_values
        self.query = query
        self.headers = headers
        self.body = body  # NO_BODY, or a JSON value
        self.invalid = invalid  # None, or what makes it invalid per the document

    def target(self):
        def sub(m):
            return urllib.parse.quote(to_wire(self.path_values[m.group(1)]), safe="")
        path = re.sub(r"{([^}]+)}", sub, self.op.path)
        pairs = []
        for k, v in self.query.items():
            w = to_wire(v)
            for item in (w if isinstance(w, list) else [w]):
                pairs.append(urllib.parse.quote(k, safe="") + "=" + urllib.parse.quote(item, safe=""))
        return path + ("?" + "&".join(pairs) if pairs else "")

    def body_text(self):
        if self.body is NO_BODY:
            return None
        return json.dumps(self.body, ensure_ascii=False, separators=(",", ":"))

    def size(self):
        return len(self.target()) + len(self.body_text() or "") + len(json.dumps(self.headers))

    def describe(self):
        b = self.body_text()
        s = f"{self.op.method} {self.target()}"
        if self.headers:
            s += " " + " ".join(f"[{k}: {v}]" for k, v in self.headers.items())
        if b is not None:
            s += f" body: {excerpt(b, 400)}"
        if self.invalid:
            s += f"   (invalid per the document: {self.invalid})"
        return s

    def curl(self, base_url, token_file, auth=True):
        parts = ["curl", "-sS", "-i", "--path-as-is", "-X", self.op.method]
        if auth:
            parts += ["-H", "Authorization: Bearer $(cat " + shlex.quote(token_file) + ")"]
        for k, v in self.headers.items():
            parts += ["-H", f"{k}: {v}"]
        b = self.body_text()
        if b is not None:
            parts += ["-H", "Content-Type: application/json", "--data-binary", b]
        parts.append(base_url + self.target())
        out = []
        for p in parts:
            if p.startswith("Authorization: Bearer $("):
                out.append('"' + p + '"')  # the token stays in its file
            else:
                out.append(shlex.quote(p))
        return " ".join(out)


def excerpt(s, n):
    if isinstance(s, bytes):
        s = s.decode("utf-8", "replace")
    s = s.replace("\n", "\\n")
    return s if len(s) <= n else s[:n] + f"... ({len(s)} chars)"


# ---------------------------------------------------------------- the checker

class Contradiction(AssertionError):
    """Raised inside a Hypothesis test so that it shrinks the request that showed one."""


class Finding:
    def __init__(self, op, rule, key, message, request, response, auth=True):
        self.op = op
        self.rule = rule
        self.key = key
        self.message = message
        self.request = request
        self.response = response
        self.auth = auth
        self.count = 1


class Checker:
    def __init__(self, document, client, args):
        self.document = document
        self.client = client
        self.args = args
        self.strategies = Strategies(document, lambda name: self.harvest_all.get(name, []))
        self.findings = {}  # (op_id, rule, key) -> smallest Finding
        self.harvest = {}  # collection path -> {field -> [values]}
        self.harvest_all = {}  # field -> [values]
        self.stats = {}  # op_id -> {status: n}
        self.notes = []  # what was skipped or reordered, and why
        self.generation_problems = []
        self.gone = None  # set when the server stops answering altogether
        self.start = time.monotonic()

    # -------------------------------------------------------- recording

    def record(self, op, rule, key, message, request, response, auth=True):
        k = (op.op_id, rule, key)
        f = self.findings.get(k)
        if f is None:
            self.findings[k] = Finding(op, rule, key, message, request, response, auth)
            return
        f.count += 1
        # Hypothesis tries ever simpler requests while it shrinks: of two as long, the later.
        if request.size() <= f.request.size():
            f.message, f.request, f.response, f.auth = message, request, response, auth

    def harvest_from(self, op, request, value):
        prefix = re.sub(r"/{[^}]+}.*$", "", op.path) if op.method != "GET" else op.path
        bucket = self.harvest.setdefault(prefix, {})

        def walk(v, depth):
            if depth > 4:
                return
            if isinstance(v, dict):
                for k, x in v.items():
                    if isinstance(x, (str, int)) and not isinstance(x, bool):
                        # The collection's own rows (depth 2: {"nodes": [{"name": ...}]}) name its
                        # things; a name deeper down (a node's GPUs) names something else.
                        targets = [self.harvest_all.setdefault(k, [])]
                        if depth <= 2:
                            targets.append(bucket.setdefault(k, []))
                        for b in targets:
                            if x not in b and len(b) < 40:
                                b.append(x)
                    walk(x, depth + 1)
            elif isinstance(v, list):
                for x in v[:20]:
                    walk(x, depth + 1)
        walk(value, 0)
        # The values a successful request itself used name real things too.
        for k, v in request.path_values.items():
            b = self.harvest_all.setdefault(k, [])
            if v not in b and len(b) < 40 and isinstance(v, (str, int)):
                b.append(v)

    def known_values(self, op, name):
        """Values seen in earlier answers that may name the thing {name} stands for."""
        prefix = op.path.split("/{" + name + "}")[0]
        last = prefix.rstrip("/").rsplit("/", 1)[-1]
        singular = last[:-1] if last.endswith("s") else last
        singular = singular.replace("-", "_")
        out = []
        for bucket in (self.harvest.get(prefix, {}),) + tuple(
                v for k, v in self.harvest.items() if k.startswith(prefix + "/") and "{" not in k[len(prefix):]):
            for key in (name, f"{singular}_{name}", f"{singular}_id" if name in ("id", "name") else None,
                        "id" if name.endswith("id") else None, "name" if name == "name" else None):
                if key and key in bucket:
                    out += bucket[key]
        if not out:  # only then anything of that name from anywhere
            for key in (name, f"{name}_id", f"{singular}_{name}"):
                out += self.harvest_all.get(key, [])
        seen, uniq = set(), []
        for v in out:
            if (type(v), v) not in seen:
                seen.add((type(v), v))
                uniq.append(v)
        return uniq[:40]

    # -------------------------------------------------------- strategies for one operation

    def request_strategy(self, op):
        doc = self.document.doc
        S = self.strategies
        path_valid, path_near = {}, {}
        query_req, query_opt, query_near = {}, {}, {}
        header_opt = {}
        for p in op.params:
            schema = p.get("schema", {"type": "string"})
            name = p.get("name")
            where = p.get("in")
            v = self.document.validator(schema, False)
            extra = []
            if "example" in p:
                extra.append(p["example"])
            for e in (p.get("examples") or {}).values():
                if isinstance(e, dict) and "value" in e:
                    extra.append(e["value"])
            if where == "path":
                extra += self.known_values(op, name)
            extra = [e for e in extra if v.is_valid(e) or v.is_valid(from_wire(to_wire(e), schema, doc))]
            gen = S.valid(schema)
            if where == "path":
                # An empty segment is another route, not a value of this parameter.
                gen = gen.filter(lambda x: to_wire(x) != "")
            gen = gen.filter(v.is_valid)
            if extra:
                # Mostly things that exist: a random id only ever finds a 404.
                known = st.sampled_from(extra)
                gen = st.one_of(*([known] * 4), gen) if where == "path" else st.one_of(known, gen)
            if where == "path":
                path_valid[name] = gen
                path_near[name] = self.wire_near_misses(schema)
            elif where == "query":
                (query_req if p.get("required") else query_opt)[name] = gen
                query_near[name] = self.wire_near_misses(schema)
                if p.get("required"):
                    query_near[name].append(("required but missing", OMIT))
            elif where == "header" and name.lower() not in ("authorization", "content-type", "accept"):
                header_opt[name] = gen.map(to_wire).filter(lambda s: isinstance(s, str) and
                                                           re.fullmatch(r"[\x20-\x7e]*", s) is not None)
        body_schema, body_required = None, False
        if op.body:
            content = op.body.get("content") or {}
            media = next((m for m in content if m.split(";")[0].strip().lower() in ("application/json",)
                          or m.endswith("+json")), None)
            if media is None and content:
                self.notes.append(f"{op.label}: request body is {', '.join(content)}, not JSON: sent without one")
            elif media is not None:
                body_schema = content[media].get("schema", {})
                body_required = bool(op.body.get("required"))
        body_validator = self.document.validator(body_schema, False) if body_schema is not None else None
        body_examples = []
        if body_schema is not None:
            m = (op.body.get("content") or {})
            for mt in m.values():
                if "example" in mt:
                    body_examples.append(mt["example"])
                for e in (mt.get("examples") or {}).values():
                    if isinstance(e, dict) and "value" in e:
                        body_examples.append(e["value"])
            body_examples = [e for e in body_examples if body_validator.is_valid(e)]
        body_gen = None
        if body_schema is not None:
            body_gen = S.valid(body_schema).filter(body_validator.is_valid)
            if body_examples:
                body_gen = st.one_of(st.sampled_from(body_examples), body_gen)

        modes = ["valid"]
        if body_gen is not None:
            modes.append("body")
        if any(path_near.values()):
            modes.append("path")
        if any(query_near.values()):
            modes.append("query")
        query_gen = st.fixed_dictionaries(query_req, optional=query_opt)
        header_gen = st.fixed_dictionaries({}, optional=header_opt)
        path_gen = st.fixed_dictionaries(path_valid)
        @st.composite
        def gen(draw):
            mode = draw(st.sampled_from(modes))
            path_values = draw(path_gen)
            query = draw(query_gen)
            headers = draw(header_gen)
            body = NO_BODY
            if body_gen is not None and (body_required or mode == "body" or draw(st.booleans())):
                body = draw(body_gen)
            invalid = None
            if mode == "body":
                muts = S.mutations(body_schema, body)
                if body_required:
                    muts.append(("required body missing", NO_BODY))
                if muts:
                    # The kind first, then one of its kind: a lone "unknown property" is drawn as
                    # often as the many wrong types of every field together.
                    kinds = sorted({mutation_kind(w) for w, _ in muts})
                    kind = draw(st.sampled_from(kinds))
                    what, mutated = draw(st.sampled_from([m for m in muts if mutation_kind(m[0]) == kind]))
                    if mutated is NO_BODY:
                        body, invalid = NO_BODY, what
                    elif not body_validator.is_valid(mutated):
                        body, invalid = mutated, f"body: {what}"
            elif mode == "path":
                name = draw(st.sampled_from(sorted(k for k, v in path_near.items() if v)))
                what, text = draw(st.sampled_from(path_near[name]))
                path_values = {**path_values, name: text}
                invalid = f"path parameter {name}: {what}"
            elif mode == "query":
                name = draw(st.sampled_from(sorted(k for k, v in query_near.items() if v)))
                what, text = draw(st.sampled_from(query_near[name]))
                query = {k: v for k, v in query.items() if k != name}
                if text is not OMIT:
                    query[name] = text
                invalid = f"query parameter {name}: {what}"
            return Request(op, path_values, query, headers, body, invalid)

        return gen()

    def wire_near_misses(self, schema):
        """Texts a parameter with this schema must refuse, each confirmed against the schema."""
        doc = self.document.doc
        s = deref(doc, schema)
        v = self.document.validator(schema, False)
        candidates = []
        types = schema_types(s)
        lo, hi = bounds(s, integer="integer" in types and "number" not in types)
        if "integer" in types or "number" in types:
            candidates += [("wrong type", "abc"), ("wrong type", "1x"), ("wrong type", "0x10")]
            if "integer" in types and "number" not in types:
                candidates.append(("fraction for an integer", "1.5"))
            if lo is not None:
                candidates.append(("below minimum", str(to_wire(lo - 1))))
            if hi is not None:
                candidates.append(("above maximum", str(to_wire(hi + 1))))
        if "boolean" in types and "string" not in types:
            candidates.append(("wrong type", "maybe"))
        if "enum" in s:
            candidates.append(("not in enum", "not-in-the-enum"))
        if "const" in s:
            candidates.append(("not the constant", "not-" + str(to_wire(s["const"]))))
        if "string" in types:
            if "maxLength" in s:
                candidates.append(("too long", "x" * (s["maxLength"] + 1)))
            if s.get("minLength", 0) > 1:
                candidates.append(("too short", "x"))
            if "pattern" in s:
                for t in (" ", "ü", "a b/c", "UPPER", "-x", "x" * 300, "0", "..", "a.b"):
                    if not re.search(s["pattern"], t, re.ASCII):
                        candidates.append((f"not matching pattern ({t[:10]!r})", t))
                        break
            if s.get("format") == "date-time":
                candidates.append(("not a date-time", "yesterday"))
        out = []
        for what, text in candidates:
            value = from_wire(text, schema, doc)
            if value is NotImplemented or not v.is_valid(value) or what == "not a date-time":
                out.append((what, text))
        return out

    # -------------------------------------------------------- checks on one answer

    def check(self, request, response, auth=True):
        """All contradictions one answer shows: [(rule, key, message)]."""
        op = request.op
        out = []
        status = response.status
        key, doc_resp = op.documented(status)
        if status >= 500 and not (self.args.allow_documented_5xx and status != 500 and key == str(status)):
            out.append(("server-error", str(status), f"answered {status} (a server error)"))
        if key is None or (key == "default" and self.args.strict_status):
            documented = ", ".join(sorted(op.responses)) or "none"
            why = "only the catch-all 'default' covers it" if key else "which the document does not list"
            out.append(("undocumented-status", str(status), f"answered {status}, {why} (documented: {documented})"))
        if request.invalid and 200 <= status < 300:
            out.append(("invalid-accepted", re.sub(r" \(.*?\)", "", request.invalid),
                        f"accepted ({status}) a request the document calls invalid: {request.invalid}"))
        if not auth and op.needs_auth and 200 <= status < 300:
            out.append(("unauthenticated", "", f"answered {status} to a request without credentials"))
        if doc_resp is not None:
            out += self.check_body(op, key, doc_resp, response)
        return out

    def check_body(self, op, key, doc_resp, response):
        out = []
        content = doc_resp.get("content") or {}
        has_body = response.streamed or len(response.body) > 0
        mt = response.media_type
        if not content:
            if has_body and op.method != "HEAD":
                out.append(("content-type", f"{key}:{mt}:undocumented-body",
                            f"answered {response.status} with a {mt or 'untyped'} body where the document has none"))
            return out
        if not has_body:
            if op.method != "HEAD":
                out.append(("content-type", f"{key}:empty",
                            f"answered {response.status} with no body where the document has {', '.join(content)}"))
            return out
        match = None
        for media in content:
            if media_matches(media, mt):
                match = media
                break
        if match is None:
            out.append(("content-type", f"{key}:{mt}",
                        f"answered {response.status} as {mt or 'no Content-Type'}; documented: {', '.join(content)}"))
            return out
        schema = content[match].get("schema")
        if schema is None or response.streamed:
            return out
        if not (mt == "application/json" or mt.endswith("+json")):
            if schema and deref(self.document.doc, schema).get("type") not in (None, "string"):
                out.append(("response-schema", f"{key}:not-json",
                            f"a {mt} body cannot be the {schema} the document gives"))
            return out
        try:
            value = json.loads(response.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            out.append(("response-schema", f"{key}:not-json", f"answered {mt} that is not JSON: {e}"))
            return out
        v = self.document.validator(schema, True)
        errors = list(v.iter_errors(value))
        # A property that fails its own schema counts as unevaluated too: say it once.
        deeper = [list(e.absolute_path) for e in errors]
        errors = [e for e in errors if not (e.validator == "unevaluatedProperties" and any(
            len(d) > len(e.absolute_path) and d[:len(e.absolute_path)] == list(e.absolute_path) for d in deeper))]
        errors.sort(key=lambda e: (len(list(e.absolute_path)), str(e.absolute_path)))
        for e in errors[:3]:
            where = "/" + "/".join(str(p) for p in e.absolute_path)
            # The key ignores array indexes: one wrong field is one finding, whichever row shows it.
            gen_where = "/" + "/".join("*" if isinstance(p, int) else str(p) for p in e.absolute_path)
            out.append(("response-schema", f"{key}:{gen_where}:{e.validator}",
                        f"answered {response.status}; body at {where}: {excerpt(e.message, 300)} "
                        f"(schema: {'/'.join(str(p) for p in e.absolute_schema_path)})"))
        return out

    # -------------------------------------------------------- running

    def send(self, request, auth=True):
        return self.client.send(request.op.method, request.target(), request.body_text(), auth=auth,
                                headers=request.headers)

    def exchange(self, op, request):
        """Sends one request and checks its answer: the contradictions, each recorded."""
        stats = self.stats.setdefault(op.op_id, {})
        try:
            response = self.send(request)
        except (OSError, http.client.HTTPException) as e:
            fake = Response(0, {}, str(e).encode(), False)
            if not self.alive():
                # Nothing more can be learnt, and shrinking would only knock on a closed door.
                self.gone = f"the server stopped answering; the last request sent: {request.describe()}"
                self.record(op, "no-answer", "gone", f"no answer ({type(e).__name__}: {e}), and the "
                            "server answers nothing any more", request, fake)
                return [("no-answer", "gone", "")]
            self.record(op, "no-answer", type(e).__name__, f"no answer: {type(e).__name__}: {e}", request, fake)
            return [("no-answer", type(e).__name__, "")]
        stats[response.status] = stats.get(response.status, 0) + 1
        if self.args.trace:
            print(f"     {response.status} {request.describe()[:300]} -> {excerpt(response.body, 200)}", flush=True)
        problems = self.check(request, response)
        if 200 <= response.status < 300 and not request.invalid and response.body and \
                response.media_type in ("application/json",):
            try:
                self.harvest_from(op, request, json.loads(response.body))
            except ValueError:
                pass
        for rule, key, msg in problems:
            self.record(op, rule, key, msg, request, response)
        return problems

    def hypothesis_run(self, strategy, test):
        run = settings(max_examples=self.args.examples, deadline=None, database=None, derandomize=False,
                       suppress_health_check=list(HealthCheck), report_multiple_bugs=False,
                       phases=[Phase.explicit, Phase.generate, Phase.shrink], print_blob=False)(
            given(request=strategy)(test))
        seed(self.args.seed)(run)()

    def run_operation(self, op, budget):
        """Hypothesis drives one operation for about `budget` seconds: first exploring (every
        contradiction recorded, none stopping the search, which would hide all but the first),
        then once per contradiction found, hunting it again and shrinking it to a minimal request."""
        try:
            strategy = self.request_strategy(op)
        except Exception as e:  # a schema this generator cannot read is a finding, not a crash
            self.generation_problems.append(f"{op.label}: cannot generate requests: {type(e).__name__}: {e}")
            return
        before = set(self.findings)
        deadline = time.monotonic() + budget

        def explore(request):
            if not self.gone and time.monotonic() < deadline:
                self.exchange(op, request)

        try:
            self.hypothesis_run(strategy, explore)
        except Exception as e:  # Unsatisfiable (nothing valid to send) and the like
            self.generation_problems.append(f"{op.label}: {type(e).__name__}: {excerpt(str(e), 300)}")
        new = [k for k in self.findings if k not in before and k[0] == op.op_id]
        for key in new[:self.args.max_shrinks]:
            if self.gone:
                break
            # Shrinking shares the run's time budget: past it, the first request seen stands.
            left = self.start + self.args.time_budget - time.monotonic()
            if left <= 0:
                break
            hunt_deadline = time.monotonic() + min(4.0, max(1.0, budget), left)
            wanted = key[1:]

            def hunt(request):
                if self.gone or time.monotonic() > hunt_deadline:
                    return
                if any((rule, k) == wanted for rule, k, _ in self.exchange(op, request)):
                    raise Contradiction(f"{op.label}: {key}")

            try:
                self.hypothesis_run(strategy, hunt)
            except Contradiction:
                pass
            except Exception:  # Flaky: it did not come back; what was seen is recorded already
                pass
        if self.gone:
            raise ServerGone(self.gone)

    def run_unauthenticated(self, op):
        """One request without credentials to an operation that needs them."""
        path_values = {}
        for p in op.params:
            if p.get("in") == "path":
                known = self.known_values(op, p["name"])
                path_values[p["name"]] = known[0] if known else "x"
        body = NO_BODY
        if op.body and op.method not in ("GET", "HEAD"):
            body = {}
        request = Request(op, path_values, {}, {}, body, None)
        try:
            response = self.send(request, auth=False)
        except (OSError, http.client.HTTPException) as e:
            self.record(op, "no-answer", "unauth", f"no answer without credentials: {e}", request,
                        Response(0, {}, b"", False), auth=False)
            return
        stats = self.stats.setdefault(op.op_id, {})
        stats[response.status] = stats.get(response.status, 0) + 1
        for rule, key, msg in self.check(request, response, auth=False):
            self.record(op, rule, "unauth:" + key, msg + " (sent without credentials)", request, response, auth=False)

    def alive(self):
        for path in ("/healthz", "/"):
            try:
                r = self.client.send("GET", path)
                if r.status:
                    return True
            except (OSError, http.client.HTTPException):
                continue
        return False

    def run(self):
        selected = []
        for op in self.document.operations:
            if self.args.only and not re.search(self.args.only, f"{op.op_id} {op.method} {op.path}"):
                continue
            why = op.dangerous()
            if op.op_id in self.args.skip:
                why = "named with --skip"
            if why:
                self.notes.append(f"skipped {op.label}: {why}")
                continue
            selected.append(op)
        selected.sort(key=lambda o: (o.phase(), o.path.count("{"), o.path, o.method))
        for op in selected:
            if op.phase() == 4:
                self.notes.append(f"ran last: {op.label}: a bulk delete (no path parameter) would empty what "
                                  "the other operations work on")
        total_budget = self.args.time_budget
        for i, op in enumerate(selected):
            elapsed = time.monotonic() - self.start
            left = total_budget - elapsed
            if left <= 0:
                self.generation_problems.append(f"not run (time budget of {total_budget:.0f} s spent): {op.label}")
                continue
            budget = max(0.5, min(self.args.op_budget, left / (len(selected) - i)))
            if self.args.verbose:
                print(f"  .. {op.label} ({budget:.1f} s)", flush=True)
            if op.needs_auth and not self.args.no_auth_check:
                self.run_unauthenticated(op)
            self.run_operation(op, budget)
        return selected

    def report(self, selected, out=sys.stdout):
        elapsed = time.monotonic() - self.start
        p = lambda *a: print(*a, file=out)
        p(f"openapi_check: {len(selected)} operations, {self.client.requests} requests in {elapsed:.1f} s "
          f"(seed {self.args.seed}, up to {self.args.examples} examples per operation)")
        for n in self.notes:
            p(f"  note: {n}")
        for n in self.generation_problems:
            p(f"  warning: {n}")
        never_ok = []
        for op in selected:
            stats = self.stats.get(op.op_id, {})
            line = " ".join(f"{s}x{n}" for s, n in sorted(stats.items()))
            if self.args.verbose:
                p(f"  {op.method:6} {op.path:55} {line}")
            if not any(200 <= s < 300 for s in stats):
                never_ok.append(f"{op.method} {op.path}")
        if never_ok:
            p(f"  coverage: no 2xx answer seen for {len(never_ok)} operation(s): {', '.join(never_ok)}")
        problems = [("document", w, m) for w, m in self.document.problems]
        findings = sorted(self.findings.values(), key=lambda f: (f.rule, f.op.path, f.op.method, f.key))
        total = len(problems) + len(findings)
        if total == 0:
            p("no contradiction between the document and the server")
            return 0
        p(f"CONTRADICTIONS: {total}")
        n = 0
        for rule, where, msg in problems:
            n += 1
            p(f"[{n}] document: {where}: {msg}")
        for f in findings:
            n += 1
            p(f"[{n}] {f.rule}: {f.op.label}: {f.message}" + (f" (seen {f.count}x)" if f.count > 1 else ""))
            p(f"     request:  {f.request.describe()}" + ("" if f.auth else "  [no credentials]"))
            if f.response.status:
                p(f"     response: {f.response.status} {f.response.headers.get('content-type', '')} "
                  f"{excerpt(f.response.body, 300)}")
            p(f"     repeat:   {f.request.curl(self.client.base_url, self.args.token_file or 'TOKEN_FILE', f.auth)}")
        return 1

    def json_report(self, path, selected):
        data = {
            "operations": len(selected), "requests": self.client.requests,
            "seconds": round(time.monotonic() - self.start, 2), "notes": self.notes,
            "warnings": self.generation_problems,
            "statuses": {k: {str(s): n for s, n in v.items()} for k, v in self.stats.items()},
            "contradictions": [{"rule": "document", "where": w, "message": m} for w, m in self.document.problems] + [
                {"rule": f.rule, "operation": f.op.op_id, "method": f.op.method, "path": f.op.path,
                 "message": f.message, "request": f.request.describe(), "status": f.response.status,
                 "count": f.count} for f in self.findings.values()],
        }
        with open(path, "w") as fh:
            json.dump(data, fh, indent=1)


class ServerGone(Exception):
    pass


def media_matches(documented, actual):
    d = documented.split(";")[0].strip().lower()
    if d in ("*/*", actual):
        return True
    if d.endswith("/*"):
        return actual.startswith(d[:-1])
    return False


# ---------------------------------------------------------------- main

def main(argv=None):
    ap = argparse.ArgumentParser(description="Property-based check of a live server against its OpenAPI 3.1 document")
    ap.add_argument("--base-url", required=True, help="e.g. http://127.0.0.1:8080")
    ap.add_argument("--token-file", help="file holding the bearer token (omit for a server without auth)")
    ap.add_argument("--spec", help="the document (JSON); default: GET BASE/openapi.json")
    ap.add_argument("--examples", type=int, default=25, help="Hypothesis examples per operation (default 25)")
    ap.add_argument("--seed", type=int, default=0, help="Hypothesis seed (default 0: the same requests each run)")
    ap.add_argument("--time-budget", type=float, default=60.0, help="seconds for all operations (default 60)")
    ap.add_argument("--op-budget", type=float, default=6.0, help="most seconds for one operation (default 6)")
    ap.add_argument("--only", help="regex: only operations whose 'operationId METHOD path' matches")
    ap.add_argument("--skip", action="append", default=[], help="operationId not to send (repeatable)")
    ap.add_argument("--no-auth-check", action="store_true", help="do not send requests without credentials")
    ap.add_argument("--max-shrinks", type=int, default=4, help="contradictions shrunk per operation (default 4)")
    ap.add_argument("--strict-status", action="store_true",
                    help="a status only the 'default' response covers is a contradiction too")
    ap.add_argument("--allow-documented-5xx", action="store_true",
                    help="a 5xx other than 500 that the operation documents is not a contradiction")
    ap.add_argument("--insecure", action="store_true", help="https without certificate verification")
    ap.add_argument("--json", help="also write the findings as JSON to this file")
    ap.add_argument("-v", "--verbose", action="store_true", help="each operation and the statuses it got")
    ap.add_argument("--trace", action="store_true", help="every request and the start of its answer")
    args = ap.parse_args(argv)
    try:
        token = ""
        if args.token_file:
            with open(args.token_file) as fh:
                token = fh.read().strip()
        client = Client(args.base_url, token, args.insecure)
        if args.spec:
            with open(args.spec) as fh:
                doc = json.load(fh)
        else:
            try:
                r = client.send("GET", "/openapi.json")
            except (OSError, http.client.HTTPException) as e:
                raise RunFailed(f"cannot fetch {args.base_url}/openapi.json: {e}")
            if r.status != 200:
                raise RunFailed(f"GET {args.base_url}/openapi.json answered {r.status}: {excerpt(r.body, 200)}")
            doc = json.loads(r.body)
        if not isinstance(doc, dict):
            raise RunFailed("the document is not a JSON object")
        document = Document(doc)
        # A relative server URL with a path ("/api") is where the paths live under the base URL.
        servers = doc.get("servers") or []
        if servers and isinstance(servers[0], dict):
            url = str(servers[0].get("url", "/"))
            if url.startswith("/") and url.rstrip("/"):
                client.prefix += url.rstrip("/")
        if not client_alive(client):
            raise RunFailed(f"{args.base_url} does not answer")
        checker = Checker(document, client, args)
        try:
            selected = checker.run()
        except ServerGone as e:
            selected = [op for op in document.operations if op.op_id in checker.stats]
            checker.generation_problems.append(f"{e}; the run stopped there")
        rc = checker.report(selected)
        if args.json:
            checker.json_report(args.json, selected)
        return rc
    except RunFailed as e:
        print(f"openapi_check: {e}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as e:
        print(f"openapi_check: {type(e).__name__}: {e}", file=sys.stderr)
        return 2


def client_alive(client):
    for path in ("/healthz", "/"):
        try:
            client.send("GET", path)
            return True
        except (OSError, http.client.HTTPException):
            continue
    return False


if __name__ == "__main__":
    sys.exit(main())
