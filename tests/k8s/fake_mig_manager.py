#!/usr/bin/python3
"""A stand-in for the GPU operator's MIG manager, for fake nodes made by fake_nodes.py.

It watches the nodes it is given for a change of the label nvidia.com/mig.config, and then
does what the MIG manager does, visibly: nvidia.com/mig.config.state=pending, a pause (the
GPUs being repartitioned), the node's GPU feature discovery labels, device annotation and
nvidia.com/mig-* capacity and allocatable rewritten for the new layout (fake_nodes.py's own
layout code), and state=success. A layout the node's GPUs cannot take, or a config named in
--fail, ends in state=failed with the node as it was.

  fake_mig_manager.py --node name=gpu-a,fixture=mixed-host.json,gpus=2 [--node ...] [--delay 1] [--fail NAME]

Credentials as fake_nodes.py ($K8S_SERVER, $K8S_CA, $K8S_ADMIN_CERT, $K8S_ADMIN_KEY).
Logs one line per step on stdout.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fake_nodes  # noqa: E402
from kube import Api, ApiError  # noqa: E402

CONFIG = "nvidia.com/mig.config"
STATE = "nvidia.com/mig.config.state"


def log(msg):
    print(time.strftime("%H:%M:%S ") + msg, flush=True)


def set_state(api, name, state):
    api.merge_patch(f"/api/v1/nodes/{name}", {"metadata": {"labels": {STATE: state}}})
    log(f"{name}: {STATE}={state}")


def apply_layout(api, node, spec, config):
    """Rewrites the node for layout `config`; False when its GPUs cannot take it."""
    name = node["metadata"]["name"]
    try:
        labels, devices = fake_nodes.build_node(dict(spec, mig=config))
    except SystemExit:  # fake_nodes.die(): a profile these GPUs do not have, or too many slices
        return False
    for k in (CONFIG, STATE):  # the label Sandman set stays; the state is set last
        labels.pop(k, None)
    old_labels = node["metadata"].get("labels", {})
    label_patch = {k: None for k in old_labels if k.startswith("nvidia.com/mig-") and k not in labels}
    label_patch.update(labels)
    api.merge_patch(f"/api/v1/nodes/{name}", {"metadata": {
        "labels": label_patch,
        "annotations": {fake_nodes.DEVICES_ANNOTATION: fake_nodes.json.dumps(devices, sort_keys=True)}}})
    status = node.get("status", {})
    resources = {}
    for key in ("capacity", "allocatable"):
        patch = {k: None for k in status.get(key, {}) if k.startswith("nvidia.com/") and k not in devices}
        patch.update({k: str(len(v)) for k, v in devices.items()})
        resources[key] = patch
    api.merge_patch(f"/api/v1/nodes/{name}/status", {"status": resources})
    log(f"{name}: layout {config}: " + ", ".join(f"{k}={len(v)}" for k, v in sorted(devices.items())))
    return True


def handle(api, name, spec, config, args):
    set_state(api, name, "pending")
    time.sleep(args.delay)
    node = api.get(f"/api/v1/nodes/{name}")
    ok = config not in args.fail and apply_layout(api, node, spec, config)
    set_state(api, name, "success" if ok else "failed")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for flag in ("--server", "--ca", "--cert", "--key", "--token"):
        ap.add_argument(flag)
    ap.add_argument("--node", action="append", required=True, help="name=...,fixture=...,gpus=... as fake_nodes.py")
    ap.add_argument("--delay", type=float, default=1.0, help="seconds in state pending")
    ap.add_argument("--fail", action="append", default=[], help="a config that ends in state failed")
    ap.add_argument("--ready-file", help="touched once the first list is done")
    args = ap.parse_args()
    api = Api.from_env(args)
    specs = {}
    for s in args.node:
        spec = dict(kv.split("=", 1) for kv in s.split(",") if kv)
        specs[spec["name"]] = spec
    applied = {}  # node -> the mig.config value it last acted on
    rv = ""
    while True:
        if not rv:
            lst = api.get("/api/v1/nodes")
            for n in lst["items"]:
                name = n["metadata"]["name"]
                if name in specs and name not in applied:
                    applied[name] = n["metadata"].get("labels", {}).get(CONFIG, "")
            rv = lst["metadata"]["resourceVersion"]
            if args.ready_file:
                open(args.ready_file, "w").close()
                log("watching " + ", ".join(sorted(specs)))
        try:
            for ev in api.watch("/api/v1/nodes", rv, timeout_seconds=60):
                obj = ev.get("object", {})
                if ev.get("type") == "ERROR":
                    rv = ""
                    break
                rv = obj.get("metadata", {}).get("resourceVersion", rv)
                if ev.get("type") not in ("ADDED", "MODIFIED"):
                    continue
                name = obj["metadata"]["name"]
                if name not in specs:
                    continue
                config = obj["metadata"].get("labels", {}).get(CONFIG, "")
                if config and config != applied.get(name):
                    applied[name] = config
                    log(f"{name}: {CONFIG} changed to {config}")
                    handle(api, name, specs[name], config, args)
        except ApiError as e:
            if e.status != 410:
                log(f"watch error: {e}")
                time.sleep(1)
            rv = ""
        except OSError as e:
            log(f"watch connection: {e}")
            time.sleep(1)


if __name__ == "__main__":
    main()
