#!/usr/bin/python3
"""Fake GPU nodes for the test cluster: real Node objects, as GPU feature discovery
and NVIDIA's device plugin (mixed MIG strategy) would make them look.

The real kube-scheduler then decides what fits: a pod asking for
nvidia.com/mig-1g.10gb lands on a node with one free, and stays Pending with
"Insufficient nvidia.com/mig-1g.10gb" once all are taken. No kubelet runs here;
tests/k8s/fake_kubelet.py plays it for pods bound to these nodes, and reads the
device UUIDs each node offers from its annotation sandman.test/devices.

  fake_nodes.py --node name=gpu-h100,fixture=mixed-host.json,gpus=2,mig=all-balanced [--node ...]

Node keys (comma-separated key=value):
  name      node name (with replicas=N: NAME-0 .. NAME-<N-1>)
  fixture   an NVML simulator machine description; a bare name is looked up in
            tests/fixtures/nvml-sim (default mixed-host.json)
  gpus      the fixture's GPU indexes on this node, '+'-separated, or "all" (default)
  mig       MIG layout per MIG-capable GPU, like the GPU operator's mig.config:
              fixture        the fixture's own instances; MIG on but none: all-balanced (default)
              all-balanced   e.g. 1g.10gb x2 + 2g.20gb + 3g.40gb on an 80 GB card
              all-disabled   MIG off: the GPU is one nvidia.com/gpu
              all-<profile>  as many of <profile> as fit, e.g. all-1g.10gb (7)
              <profile>:<n>+<profile>:<n>...   an explicit layout, e.g. 1g.10gb:2+3g.40gb:1
            GPUs without MIG (RTX 4090) are always whole nvidia.com/gpu.
  cpu, memory, pods, ephemeral-storage   the node's other capacity (16, 128Gi, 110, 500Gi)
  replicas  how many identical nodes (default 1)

Credentials: --server/--ca/--cert/--key (or --token), else $K8S_SERVER, $K8S_CA,
$K8S_ADMIN_CERT, $K8S_ADMIN_KEY as tests/k8s/lib.sh exports them. Prints a JSON
summary {node: {resource: count}} on stdout.
"""

import argparse
import json
import os
import sys
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kube import Api, ApiError, now_rfc3339  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.normpath(os.path.join(HERE, "..", "fixtures", "nvml-sim"))
KUBE_VERSION = "v1.35.4"
DEVICES_ANNOTATION = "sandman.test/devices"
# Namespace for the MIG device UUIDs made up here (stable across runs).
MIG_NS = uuid.UUID("6f1c3a52-2d0e-4a7b-9b59-5d3e0c1a8f21")

# The NVML simulator's catalog (tools/nvml-sim/catalog.cc, from reference/mig.md):
# per model its product name, memory (MiB), architecture, compute capability,
# memory/compute slices and GPU-instance profiles:
#   name: (compute slices, memory slices, MiB, max instances, multiprocessors, copy engines, decoders)
_A100_40 = {"1g.5gb": (1, 1, 4864, 7, 14, 1, 0), "2g.10gb": (2, 2, 9856, 3, 28, 2, 1),
            "3g.20gb": (3, 4, 19968, 2, 42, 3, 2), "4g.20gb": (4, 4, 19968, 1, 56, 4, 2),
            "7g.40gb": (7, 8, 40192, 1, 98, 7, 5), "1g.10gb": (1, 2, 9856, 4, 14, 1, 1)}
_A100_80 = {"1g.10gb": (1, 1, 9728, 7, 14, 1, 0), "2g.20gb": (2, 2, 19968, 3, 28, 2, 1),
            "3g.40gb": (3, 4, 40192, 2, 42, 3, 2), "4g.40gb": (4, 4, 40192, 1, 56, 4, 2),
            "7g.80gb": (7, 8, 80896, 1, 98, 7, 5), "1g.20gb": (1, 2, 19968, 4, 14, 1, 1)}
_A30 = {"1g.6gb": (1, 1, 5952, 4, 14, 1, 1), "2g.12gb": (2, 2, 11968, 2, 28, 2, 2),
        "4g.24gb": (4, 4, 24000, 1, 56, 4, 4)}
_H100_80 = {"1g.10gb": (1, 1, 9984, 7, 16, 1, 1), "2g.20gb": (2, 2, 20096, 3, 32, 2, 2),
            "3g.40gb": (3, 4, 40448, 2, 60, 3, 3), "4g.40gb": (4, 4, 40448, 1, 64, 4, 4),
            "7g.80gb": (7, 8, 81152, 1, 132, 8, 7), "1g.20gb": (1, 2, 20096, 4, 26, 1, 1)}
_H200 = {"1g.18gb": (1, 1, 18432, 7, 16, 1, 1), "2g.35gb": (2, 2, 35840, 3, 32, 2, 2),
         "3g.71gb": (3, 4, 72704, 2, 60, 3, 3), "4g.71gb": (4, 4, 72704, 1, 64, 4, 4),
         "7g.141gb": (7, 8, 144384, 1, 132, 8, 7), "1g.35gb": (1, 2, 35840, 4, 26, 1, 1)}

MODELS = {
    # key: (product name, MiB, family, (major, minor), compute slices, memory slices, profiles, balanced)
    "A100-SXM4-40GB": ("NVIDIA A100-SXM4-40GB", 40960, "ampere", (8, 0), 7, 8, _A100_40,
                       {"1g.5gb": 2, "2g.10gb": 1, "3g.20gb": 1}),
    "A100-PCIE-40GB": ("NVIDIA A100-PCIE-40GB", 40960, "ampere", (8, 0), 7, 8, _A100_40,
                       {"1g.5gb": 2, "2g.10gb": 1, "3g.20gb": 1}),
    "A100-SXM4-80GB": ("NVIDIA A100-SXM4-80GB", 81920, "ampere", (8, 0), 7, 8, _A100_80,
                       {"1g.10gb": 2, "2g.20gb": 1, "3g.40gb": 1}),
    "A100-PCIE-80GB": ("NVIDIA A100 80GB PCIe", 81920, "ampere", (8, 0), 7, 8, _A100_80,
                       {"1g.10gb": 2, "2g.20gb": 1, "3g.40gb": 1}),
    "A30-24GB": ("NVIDIA A30", 24576, "ampere", (8, 0), 4, 4, _A30, {"1g.6gb": 2, "2g.12gb": 1}),
    "H100-SXM5-80GB": ("NVIDIA H100 80GB HBM3", 81559, "hopper", (9, 0), 7, 8, _H100_80,
                       {"1g.10gb": 2, "2g.20gb": 1, "3g.40gb": 1}),
    "H100-PCIE-80GB": ("NVIDIA H100 PCIe", 81559, "hopper", (9, 0), 7, 8, _H100_80,
                       {"1g.10gb": 2, "2g.20gb": 1, "3g.40gb": 1}),
    "H200-141GB": ("NVIDIA H200 141GB HBM3e", 144384, "hopper", (9, 0), 7, 8, _H200,
                   {"1g.18gb": 2, "2g.35gb": 1, "3g.71gb": 1}),
    "RTX-4090": ("NVIDIA GeForce RTX 4090", 24564, "ada-lovelace", (8, 9), 0, 0, {}, {}),
    "RTX-3090": ("NVIDIA GeForce RTX 3090", 24576, "ampere", (8, 6), 0, 0, {}, {}),
    "V100-SXM2-16GB": ("Tesla V100-SXM2-16GB", 16384, "volta", (7, 0), 0, 0, {}, {}),
    "V100-SXM2-32GB": ("Tesla V100-SXM2-32GB", 32768, "volta", (7, 0), 0, 0, {}, {}),
}


def die(msg):
    print("fake_nodes.py: " + msg, file=sys.stderr)
    sys.exit(2)


def model_of(gpu):
    key = gpu.get("model", "")
    for k in MODELS:
        if k.lower() == key.lower():
            return k
    die(f"model {key!r} is not in this tool's catalog ({', '.join(MODELS)})")


def layout_for(gpu, model, mig):
    """{profile: count} for a MIG GPU, or None when the GPU is whole."""
    name, mib, fam, cc, ncompute, nmem, profiles, balanced = MODELS[model]
    if not profiles or mig == "all-disabled":
        return None
    if mig == "fixture":
        if not gpu.get("mig_mode"):
            return None
        inst = gpu.get("mig_instances") or []
        if not inst:
            return dict(balanced)
        out = {}
        for i in inst:
            out[i["profile"]] = out.get(i["profile"], 0) + 1
        return out
    if mig == "all-balanced":
        return dict(balanced)
    if mig.startswith("all-"):
        p = mig[4:]
        if p not in profiles:
            die(f"{model} has no MIG profile {p} ({', '.join(profiles)})")
        c, m, _, mx, *_ = profiles[p]
        return {p: min(mx, ncompute // c, nmem // m)}
    out = {}
    for part in mig.split("+"):
        p, _, n = part.partition(":")
        if p not in profiles:
            die(f"{model} has no MIG profile {p} ({', '.join(profiles)})")
        out[p] = out.get(p, 0) + int(n or 1)
    return out


def check_layout(model, layout):
    _, _, _, _, ncompute, nmem, profiles, _ = MODELS[model]
    c = sum(profiles[p][0] * n for p, n in layout.items())
    m = sum(profiles[p][1] * n for p, n in layout.items())
    for p, n in layout.items():
        if n > profiles[p][3]:
            die(f"{model}: at most {profiles[p][3]} x {p}")
    if c > ncompute or m > nmem:
        die(f"{model}: layout {layout} needs {c} compute / {m} memory slices, the GPU has {ncompute} / {nmem}")


def build_node(spec):
    fixture = spec.get("fixture", "mixed-host.json")
    path = fixture if os.sep in fixture else os.path.join(FIXTURES, fixture)
    with open(path) as f:
        machine = json.load(f)
    gpus = machine.get("gpus", [])
    sel = spec.get("gpus", "all")
    idx = list(range(len(gpus))) if sel == "all" else [int(x) for x in sel.split("+")]
    mig = spec.get("mig", "fixture")

    devices = {}     # resource -> [device ids]
    labels = {
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "node-role.kubernetes.io/gpu": "",
        "sandman.test/fake-node": "true",
    }
    mig_totals = {}  # profile -> (count, MiB, SM, copy engines, decoders, compute slices)
    models = []
    for i in idx:
        if i >= len(gpus):
            die(f"{path} has {len(gpus)} GPUs; no index {i}")
        g = gpus[i]
        model = model_of(g)
        models.append(model)
        guuid = g.get("uuid") or "GPU-" + str(uuid.uuid5(MIG_NS, f"gpu/{i}/{model}"))
        layout = layout_for(g, model, mig)
        if layout is None:
            devices.setdefault("nvidia.com/gpu", []).append(guuid)
            continue
        check_layout(model, layout)
        profiles = MODELS[model][6]
        for p, n in sorted(layout.items()):
            res = "nvidia.com/mig-" + p
            for k in range(n):
                devices.setdefault(res, []).append("MIG-" + str(uuid.uuid5(MIG_NS, f"{guuid}/{p}/{k}")))
            c, _, mib, _, sm, ce, dec = profiles[p]
            prev = mig_totals.get(p, (0,))[0]
            mig_totals[p] = (prev + n, mib, sm, ce, dec, c)
    if not models:
        die("a node needs at least one GPU")
    first = MODELS[models[0]]
    product, mib, family, (major, minor) = first[0], first[1], first[2], first[3]
    drv = machine.get("driver_version", "550.54.15").split(".")
    cuda = int(machine.get("cuda_driver_version", 12040))
    labels.update({
        "nvidia.com/gpu.present": "true",
        "nvidia.com/gpu.product": product.replace(" ", "-"),
        "nvidia.com/gpu.count": str(len(models)),
        "nvidia.com/gpu.memory": str(mib),
        "nvidia.com/gpu.family": family,
        "nvidia.com/gpu.compute.major": str(major),
        "nvidia.com/gpu.compute.minor": str(minor),
        "nvidia.com/gpu.replicas": "1",
        "nvidia.com/gpu.mode": "compute",
        "nvidia.com/gpu.machine": "sandman-test",
        "nvidia.com/cuda.driver-version.major": drv[0],
        "nvidia.com/cuda.driver-version.minor": drv[1] if len(drv) > 1 else "0",
        "nvidia.com/cuda.driver-version.revision": drv[2] if len(drv) > 2 else "0",
        "nvidia.com/cuda.driver-version.full": ".".join(drv),
        "nvidia.com/cuda.runtime-version.major": str(cuda // 1000),
        "nvidia.com/cuda.runtime-version.minor": str(cuda % 1000 // 10),
        "nvidia.com/mig.capable": "true" if first[6] else "false",
        "nvidia.com/mig.strategy": "mixed",
    })
    if mig_totals:
        labels["nvidia.com/mig.config"] = mig if mig.startswith("all-") else "custom-config"
        labels["nvidia.com/mig.config.state"] = "success"
    for p, (n, pmib, sm, ce, dec, c) in mig_totals.items():
        pre = f"nvidia.com/mig-{p}."
        labels.update({pre + "count": str(n), pre + "memory": str(pmib), pre + "multiprocessors": str(sm),
                       pre + "slices.gi": str(c), pre + "slices.ci": str(c),
                       pre + "engines.copy": str(ce), pre + "engines.decoder": str(dec)})
    return labels, devices


def apply_node(api, name, spec):
    labels, devices = build_node(spec)
    labels["kubernetes.io/hostname"] = name
    gpu_taint = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
    node = {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": labels,
                     "annotations": {DEVICES_ANNOTATION: json.dumps(devices, sort_keys=True)}},
        "spec": {"taints": [gpu_taint]},
    }
    try:
        api.post("/api/v1/nodes", node)
    except ApiError as e:
        if e.status != 409:
            raise
        api.merge_patch(f"/api/v1/nodes/{name}", {"metadata": node["metadata"]})
    capacity = {
        "cpu": spec.get("cpu", "16"),
        "memory": spec.get("memory", "128Gi"),
        "pods": spec.get("pods", "110"),
        "ephemeral-storage": spec.get("ephemeral-storage", "500Gi"),
    }
    for res, ids in devices.items():
        capacity[res] = str(len(ids))
    now = now_rfc3339()
    cond = lambda t, s, reason, msg: {"type": t, "status": s, "reason": reason, "message": msg,
                                      "lastHeartbeatTime": now, "lastTransitionTime": now}
    status = {
        "capacity": capacity,
        "allocatable": dict(capacity),
        "conditions": [
            cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
            cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
            cond("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
        ],
        "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": name}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
        "nodeInfo": {"machineID": "", "systemUUID": "", "bootID": "", "kernelVersion": os.uname().release,
                     "osImage": "sandman fake node", "containerRuntimeVersion": "docker://fake",
                     "kubeletVersion": KUBE_VERSION, "kubeProxyVersion": "", "operatingSystem": "linux",
                     "architecture": "amd64"},
    }
    api.merge_patch(f"/api/v1/nodes/{name}/status", {"status": status})
    # TaintNodesByCondition admission tainted the new node not-ready; the node lifecycle
    # controller (off in this cluster: nothing heartbeats) would lift it on Ready. Keep only ours.
    api.merge_patch(f"/api/v1/nodes/{name}", {"spec": {"taints": [gpu_taint]}})
    return capacity


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--server")
    ap.add_argument("--ca")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--token")
    ap.add_argument("--node", action="append", required=True, help="name=...,fixture=...,gpus=...,mig=...")
    args = ap.parse_args()
    api = Api.from_env(args)
    out = {}
    for s in args.node:
        spec = dict(kv.split("=", 1) for kv in s.split(",") if kv)
        if "name" not in spec:
            die(f"--node {s}: name= is required")
        n = int(spec.get("replicas", "1"))
        names = [spec["name"]] if n == 1 and "replicas" not in spec else [f"{spec['name']}-{i}" for i in range(n)]
        for name in names:
            cap = apply_node(api, name, spec)
            out[name] = {k: v for k, v in cap.items() if k.startswith("nvidia.com/")}
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    print()


if __name__ == "__main__":
    main()
