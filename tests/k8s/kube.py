"""A small Kubernetes API client for the test tools in tests/k8s (stdlib only).

fake_nodes.py and fake_kubelet.py use it to talk to the test cluster's real
kube-apiserver, with the admin client certificate or a bearer token.
"""

import http.client
import json
import os
import ssl
import time
import urllib.parse


class ApiError(Exception):
    def __init__(self, status, body, method="", path=""):
        self.status = status
        self.body = body
        self.method = method
        self.path = path
        msg = body.get("message") if isinstance(body, dict) else str(body)
        super().__init__(f"{method} {path}: HTTP {status}: {msg}")


class Api:
    """One API server; a fresh connection per request (the test cluster is local)."""

    def __init__(self, server, ca, cert=None, key=None, token=None, timeout=30):
        u = urllib.parse.urlsplit(server)
        self.host = u.hostname
        self.port = u.port or 443
        self.ctx = ssl.create_default_context(cafile=ca)
        if cert:
            self.ctx.load_cert_chain(cert, key)
        self.token = token
        self.timeout = timeout

    @classmethod
    def from_env(cls, args=None):
        """--server/--ca/--cert/--key/--token from args, else K8S_* from tests/k8s/lib.sh."""
        g = lambda name, env: (getattr(args, name, None) if args else None) or os.environ.get(env)
        token = g("token", "K8S_TOKEN")
        tf = g("token_file", "K8S_TOKEN_FILE")
        if not token and tf:
            with open(tf) as f:
                token = f.read().strip()
        return cls(g("server", "K8S_SERVER"), g("ca", "K8S_CA"),
                   None if token else g("cert", "K8S_ADMIN_CERT"),
                   None if token else g("key", "K8S_ADMIN_KEY"), token)

    def _conn(self, timeout=None):
        return http.client.HTTPSConnection(self.host, self.port, context=self.ctx,
                                           timeout=timeout or self.timeout)

    def _headers(self, content_type=None):
        h = {"Accept": "application/json", "User-Agent": "sandman-test-tools"}
        if self.token:
            h["Authorization"] = "Bearer " + self.token
        if content_type:
            h["Content-Type"] = content_type
        return h

    def request(self, method, path, body=None, content_type="application/json", query=None, ok=(200, 201, 202)):
        if query:
            path += ("&" if "?" in path else "?") + urllib.parse.urlencode(query)
        data = None if body is None else json.dumps(body).encode()
        c = self._conn()
        try:
            c.request(method, path, body=data, headers=self._headers(content_type if data else None))
            r = c.getresponse()
            raw = r.read()
        finally:
            c.close()
        try:
            obj = json.loads(raw) if raw else {}
        except ValueError:
            obj = {"message": raw.decode(errors="replace")}
        if r.status not in ok:
            raise ApiError(r.status, obj, method, path)
        return obj

    def get(self, path, **query):
        return self.request("GET", path, query=query or None)

    def post(self, path, body, **query):
        return self.request("POST", path, body, query=query or None)

    def put(self, path, body):
        return self.request("PUT", path, body)

    def merge_patch(self, path, body):
        return self.request("PATCH", path, body, "application/merge-patch+json")

    def delete(self, path, body=None, **query):
        return self.request("DELETE", path, body, query=query or None)

    def watch(self, path, resource_version, timeout_seconds=300):
        """Yields watch events (dicts with type/object) until the stream ends.

        Raises ApiError for a non-200 answer (410 Gone included); an ERROR event is
        yielded like any other, the caller decides (code 410 means relist).
        """
        q = {"watch": "1", "allowWatchBookmarks": "true", "timeoutSeconds": str(timeout_seconds)}
        if resource_version:
            q["resourceVersion"] = resource_version
        full = path + ("&" if "?" in path else "?") + urllib.parse.urlencode(q)
        c = self._conn(timeout=timeout_seconds + 30)
        try:
            c.request("GET", full, headers=self._headers())
            r = c.getresponse()
            if r.status != 200:
                raw = r.read()
                try:
                    obj = json.loads(raw)
                except ValueError:
                    obj = {"message": raw.decode(errors="replace")}
                raise ApiError(r.status, obj, "WATCH", full)
            while True:
                line = r.readline()
                if not line:
                    return
                line = line.strip()
                if line:
                    yield json.loads(line)
        finally:
            c.close()


def now_rfc3339():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def parse_quantity(q):
    """A Kubernetes resource quantity ("500m", "2Gi", "1e3", "3") as a float."""
    q = str(q).strip()
    suffixes = [("Ki", 2**10), ("Mi", 2**20), ("Gi", 2**30), ("Ti", 2**40), ("Pi", 2**50), ("Ei", 2**60),
                ("n", 1e-9), ("u", 1e-6), ("m", 1e-3), ("k", 1e3), ("M", 1e6), ("G", 1e9), ("T", 1e12),
                ("P", 1e15), ("E", 1e18)]
    for s, mul in suffixes:
        if q.endswith(s):
            return float(q[: -len(s)]) * mul
    return float(q)
