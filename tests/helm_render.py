#!/usr/bin/env python3
"""Renders a chart with real Helm and checks every manifest against the official Kubernetes
schemas.

    helm_render.py CHART [SITE_VALUES]

helm-sdkpy (the Helm v4 library) has no `template`, so this runs its `Install` against a
small fake Kubernetes API server on a loopback port: just enough of the API for Helm
(`/version`, discovery, a store for objects with GET/list/POST/PUT/PATCH). The objects
Helm POSTs are the manifests real Helm rendered from the chart, with the labels and
annotations Helm adds; the release Secret Helm stores carries the rendered manifest as
well, and the two are cross-checked. Every created object is then validated with PyPI
kubernetes-validate (strict: unknown fields are errors) for the oldest and the newest
Kubernetes version it ships schemas for.

SITE_VALUES (YAML) are passed to Helm as the install's values (Helm merges them over
values.yaml itself, like `helm install -f SITE_VALUES`).

Prints one JSON object:
    {"kinds": {"Deployment": ["im-server", ...], ...},   created objects by kind
     "replicas": {"im-server": 1, ...},                  each workload's spec.replicas
     "errors": ["Kind/name (k8s 1.25): message at path", ...],
     "kubernetes_versions": [...], "validator": "1.37.0", "helm_error": null | "...",
     "requests": ["GET /version", ...], "unanswered": ["GET /apis/x/y", ...]}
Exit status 0 when Helm installed and nothing failed validation, 1 otherwise, 3 when
helm-sdkpy or kubernetes-validate is not installed.
"""

import asyncio
import base64
import copy
import gzip
import json
import os
import re
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

try:
    import helm_sdkpy
    import kubernetes_validate
    import kubernetes_validate.utils
    import yaml
except ImportError as e:  # pragma: no cover - reported to the Rust test
    print(f"helm-sdkpy or kubernetes-validate is not importable: {e}", file=sys.stderr)
    sys.exit(3)

RELEASE = "im"
NAMESPACE = "default"

# What the fake API serves: group/version -> [(resource, kind, namespaced)].
RESOURCES = {
    "v1": [
        ("namespaces", "Namespace", False),
        ("services", "Service", True),
        ("configmaps", "ConfigMap", True),
        ("secrets", "Secret", True),
        ("persistentvolumeclaims", "PersistentVolumeClaim", True),
        ("serviceaccounts", "ServiceAccount", True),
        ("pods", "Pod", True),
        ("endpoints", "Endpoints", True),
        ("events", "Event", True),
    ],
    "apps/v1": [
        ("deployments", "Deployment", True),
        ("statefulsets", "StatefulSet", True),
        ("daemonsets", "DaemonSet", True),
        ("replicasets", "ReplicaSet", True),
    ],
    "batch/v1": [("jobs", "Job", True), ("cronjobs", "CronJob", True)],
    "networking.k8s.io/v1": [
        ("ingresses", "Ingress", True),
        ("networkpolicies", "NetworkPolicy", True),
    ],
    "policy/v1": [("poddisruptionbudgets", "PodDisruptionBudget", True)],
}
VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]


def resource_list(gv):
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": gv,
        "resources": [
            {
                "name": name,
                "singularName": kind.lower(),
                "namespaced": namespaced,
                "kind": kind,
                "verbs": VERBS,
            }
            for name, kind, namespaced in RESOURCES[gv]
        ],
    }


def api_groups():
    groups = []
    for gv in RESOURCES:
        if "/" not in gv:
            continue
        group, version = gv.split("/")
        v = {"groupVersion": gv, "version": version}
        groups.append({"name": group, "versions": [v], "preferredVersion": v})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def status(code, reason, message):
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


def selected(obj, selector):
    """Equality-based label selectors (`a=b,c=d`, `a!=b`), all Helm's storage uses."""
    labels = obj.get("metadata", {}).get("labels") or {}
    for term in filter(None, (selector or "").split(",")):
        if "!=" in term:
            k, v = term.split("!=", 1)
            if labels.get(k) == v:
                return False
        elif "=" in term:
            k, v = term.split("=", 1)
            if labels.get(k.rstrip("=")) != v.lstrip("="):
                return False
        elif labels.get(term) is None:
            return False
    return True


def protobuf_fields(buf):
    """(field number, value) pairs of a protobuf message: ints for varints, bytes otherwise."""
    i = 0
    while i < len(buf):
        key, i = varint(buf, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, i = varint(buf, i)
        elif wire == 2:
            n, i = varint(buf, i)
            value, i = buf[i : i + n], i + n
        elif wire == 1:
            value, i = buf[i : i + 8], i + 8
        elif wire == 5:
            value, i = buf[i : i + 4], i + 4
        else:
            raise ValueError(f"protobuf wire type {wire}")
        yield field, value


def varint(buf, i):
    shift = value = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return value, i


def protobuf_map(entries):
    out = {}
    for entry in entries:
        kv = dict(protobuf_fields(entry))
        out[kv.get(1, b"").decode()] = kv.get(2, b"")
    return out


def secret_from_protobuf(body):
    """A Secret sent as Kubernetes protobuf (`k8s\\0` + runtime.Unknown), as JSON.

    Helm's release storage uses client-go's typed Secret client, which sends protobuf; the
    fields Helm sets are decoded (metadata name, namespace, labels, annotations; data; type;
    immutable) and anything else is refused, so nothing is silently lost."""
    if not body.startswith(b"k8s\x00"):
        raise ValueError("not Kubernetes protobuf")
    unknown = dict(protobuf_fields(body[4:]))
    type_meta = dict(protobuf_fields(unknown[1]))
    kind = type_meta.get(2, b"").decode()
    if kind != "Secret":
        raise ValueError(f"protobuf for {kind}, only Secret is decoded")
    secret = {"apiVersion": type_meta.get(1, b"v1").decode(), "kind": "Secret"}
    data, meta = [], {}
    for field, value in protobuf_fields(unknown[2]):
        if field == 1:
            labels, annotations = [], []
            for mf, mv in protobuf_fields(value):
                if mf in (1, 3, 5, 6):
                    if mv:
                        key = {1: "name", 3: "namespace", 5: "uid", 6: "resourceVersion"}[mf]
                        meta[key] = mv.decode()
                elif mf == 11:
                    labels.append(mv)
                elif mf == 12:
                    annotations.append(mv)
                elif mf in (2, 4, 7, 8):
                    pass  # generateName, selfLink, generation, creationTimestamp: unset
                else:
                    raise ValueError(f"ObjectMeta field {mf} is not decoded")
            if labels:
                meta["labels"] = {k: v.decode() for k, v in protobuf_map(labels).items()}
            if annotations:
                meta["annotations"] = {k: v.decode() for k, v in protobuf_map(annotations).items()}
        elif field == 2:
            data.append(value)
        elif field == 3:
            if value:
                secret["type"] = value.decode()
        elif field == 5:
            secret["immutable"] = bool(value)
        else:
            raise ValueError(f"Secret field {field} is not decoded")
    secret["metadata"] = meta
    if data:
        secret["data"] = {k: base64.b64encode(v).decode() for k, v in protobuf_map(data).items()}
    return secret


def decode_body(body, content_type):
    if "protobuf" in (content_type or ""):
        return secret_from_protobuf(body)
    return json.loads(body)


def merge_patch(base, patch):
    if not isinstance(patch, dict):
        return patch
    out = dict(base) if isinstance(base, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


class FakeApi:
    """The objects by (api prefix, namespace, resource, name); every request logged."""

    def __init__(self, kube_version):
        self.kube_version = kube_version
        self.objects = {}
        self.created = []  # the POST bodies, in order
        self.requests = []
        self.unanswered = []
        self.lock = threading.RLock()
        self.rv = 0

    def stamp(self, obj, new):
        with self.lock:
            self.rv += 1
            rv = self.rv
        meta = obj.setdefault("metadata", {})
        meta["resourceVersion"] = str(rv)
        if new:
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            meta.setdefault("generation", 1)
        return obj

    def handle(self, method, path, query, body, content_type=None):
        """(status code, JSON response)."""
        self.requests.append(f"{method} {path}")
        if os.environ.get("HELM_RENDER_DEBUG"):
            print(f"{method} {path} {content_type} {body[:200]!r}", file=sys.stderr)
        if path == "/version":
            major, minor, _ = self.kube_version.split(".")
            return 200, {
                "major": major,
                "minor": minor,
                "gitVersion": f"v{self.kube_version}",
                "platform": "linux/amd64",
            }
        if path == "/api":
            return 200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}
        if path == "/apis":
            return 200, api_groups()
        m = re.fullmatch(r"/api/v1|/apis/([^/]+/[^/]+)", path)
        if m:
            gv = m.group(1) or "v1"
            if gv in RESOURCES:
                return 200, resource_list(gv)
        m = re.fullmatch(
            r"/(?:api/(v1)|apis/([^/]+/[^/]+))(?:/namespaces/([^/]+))?/([^/]+)(?:/([^/]+))?", path
        )
        if m:
            gv = m.group(1) or m.group(2)
            ns, resource, name = m.group(3), m.group(4), m.group(5)
            if gv == "v1" and ns is None and resource == "namespaces" and name:
                # The namespaces Helm installs into exist.
                return 200, {
                    "kind": "Namespace",
                    "apiVersion": "v1",
                    "metadata": {"name": name},
                    "status": {"phase": "Active"},
                }
            kinds = {r: k for r, k, _ in RESOURCES.get(gv, [])}
            if resource in kinds:
                return self.objects_call(
                    method, gv, ns, resource, kinds[resource], name, query, body, content_type
                )
        self.unanswered.append(f"{method} {path}")
        return 404, status(404, "NotFound", f"the server could not find the requested resource ({path})")

    def objects_call(self, method, gv, ns, resource, kind, name, query, body, content_type):
        key = (gv, ns, resource)
        with self.lock:
            bucket = self.objects.setdefault(key, {})
            if method == "GET" and name is None:
                selector = (query.get("labelSelector") or [""])[0]
                items = [o for o in bucket.values() if selected(o, selector)]
                return 200, {
                    "kind": f"{kind}List",
                    "apiVersion": gv,
                    "metadata": {"resourceVersion": str(self.rv)},
                    "items": items,
                }
            if method == "GET":
                if name in bucket:
                    return 200, bucket[name]
                return 404, status(404, "NotFound", f'{resource} "{name}" not found')
            if method == "POST" and name is None:
                obj = decode_body(body, content_type)
                name = obj.get("metadata", {}).get("name")
                if name in bucket:
                    return 409, status(409, "AlreadyExists", f'{resource} "{name}" already exists')
                self.created.append(copy.deepcopy(obj))
                bucket[name] = self.stamp(obj, new=True)
                return 201, obj
            if method == "PUT" and name in bucket:
                obj = decode_body(body, content_type)
                obj["metadata"]["uid"] = bucket[name]["metadata"]["uid"]
                bucket[name] = self.stamp(obj, new=False)
                return 200, obj
            if method == "PATCH" and name in bucket:
                obj = merge_patch(bucket[name], json.loads(body))
                bucket[name] = self.stamp(obj, new=False)
                return 200, obj
            if method == "DELETE" and name in bucket:
                return 200, bucket.pop(name)
        if name is not None:
            return 404, status(404, "NotFound", f'{resource} "{name}" not found')
        self.unanswered.append(f"{method} {gv} {resource}")
        return 405, status(405, "MethodNotAllowed", f"{method} is not supported here")


def serve(api):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do(self):
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            try:
                code, doc = api.handle(
                    self.command,
                    url.path,
                    parse_qs(url.query),
                    body,
                    self.headers.get("Content-Type"),
                )
            except Exception as e:  # a bug here must show, not hang Helm
                api.unanswered.append(f"{self.command} {url.path}: {e!r}")
                code, doc = 500, status(500, "InternalError", repr(e))
            out = json.dumps(doc).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def release_manifest(api):
    """The rendered manifest in the release Secret Helm stored (base64 of gzip'd JSON)."""
    for (gv, _, resource), bucket in api.objects.items():
        if (gv, resource) != ("v1", "secrets"):
            continue
        for obj in bucket.values():
            if obj.get("type") == "helm.sh/release.v1":
                raw = base64.b64decode(base64.b64decode(obj["data"]["release"]))
                return json.loads(gzip.decompress(raw))["manifest"]
    return None


def main():
    chart = os.path.abspath(sys.argv[1])
    values = None
    if len(sys.argv) > 2:
        with open(sys.argv[2]) as f:
            values = yaml.safe_load(f) or None
    shipped = kubernetes_validate.utils.all_versions()
    versions = [shipped[0], shipped[-1]]
    api = FakeApi(versions[-1])
    server = serve(api)
    helm_error = None
    with tempfile.TemporaryDirectory() as work:
        kubeconfig = os.path.join(work, "kubeconfig")
        with open(kubeconfig, "w") as f:
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [
                        {
                            "name": "fake",
                            "cluster": {"server": f"http://127.0.0.1:{server.server_port}"},
                        }
                    ],
                    "users": [{"name": "fake", "user": {"token": "fake"}}],
                    "contexts": [
                        {
                            "name": "fake",
                            "context": {"cluster": "fake", "user": "fake", "namespace": NAMESPACE},
                        }
                    ],
                    "current-context": "fake",
                },
                f,
            )
        # Helm keeps caches and its registry config under these.
        for var in ("HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"):
            os.environ[var] = os.path.join(work, var.lower())
        config = helm_sdkpy.Configuration(namespace=NAMESPACE, kubeconfig=kubeconfig)
        install = helm_sdkpy.Install(config).run(
            RELEASE,
            chart,
            values=values,
            wait=False,
            timeout=60,
            disable_openapi_validation=True,
        )
        try:
            asyncio.run(asyncio.wait_for(install, 120))
        except Exception as e:
            helm_error = f"{type(e).__name__}: {e}"
    server.shutdown()

    kinds = {}
    replicas = {}
    errors = []
    prefix = f"{RELEASE}-"
    for obj in api.created:
        kind, name = obj.get("kind"), obj["metadata"]["name"]
        if kind == "Secret" and obj.get("type") == "helm.sh/release.v1":
            continue  # Helm's own record of the release, not the chart's
        short = name[len(prefix):] if name.startswith(prefix) else name
        kinds.setdefault(kind, []).append(short)
        if kind in ("Deployment", "StatefulSet"):
            replicas[short] = obj.get("spec", {}).get("replicas")
        for v in versions:
            try:
                kubernetes_validate.validate(obj, v, strict=True)
            except kubernetes_validate.utils.ValidationError as e:
                where = "/".join(str(p) for p in e.absolute_path) or "(top)"
                errors.append(f"{kind}/{name} (k8s {v}): {e.message} at {where}")
            except kubernetes_validate.utils.SchemaNotFoundError as e:
                errors.append(f"{kind}/{name} (k8s {v}): {e.message}")

    # The objects Helm created are the objects of the manifest it recorded.
    manifest = release_manifest(api)
    if helm_error is None:
        if manifest is None:
            errors.append("Helm stored no release Secret with the rendered manifest")
        else:
            recorded = sorted(
                (d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all(manifest) if d
            )
            posted = sorted(
                (o["kind"], o["metadata"]["name"])
                for o in api.created
                if o.get("type") != "helm.sh/release.v1"
            )
            if recorded != posted:
                errors.append(f"the release manifest has {recorded}, Helm created {posted}")

    print(
        json.dumps(
            {
                "kinds": {k: sorted(v) for k, v in sorted(kinds.items())},
                "replicas": dict(sorted(replicas.items())),
                "errors": errors,
                "kubernetes_versions": versions,
                "validator": kubernetes_validate.__version__
                if hasattr(kubernetes_validate, "__version__")
                else kubernetes_validate.utils.__version__,
                "helm_error": helm_error,
                "requests": api.requests,
                "unanswered": api.unanswered,
            },
            indent=1,
        )
    )
    sys.stdout.flush()
    # helm-sdkpy's Go runtime may still hold threads: leave at once.
    os._exit(0 if helm_error is None and not errors else 1)


if __name__ == "__main__":
    main()
