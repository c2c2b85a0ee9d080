#!/usr/bin/python3
"""A test-only stand-in for the kubelet: runs the pods bound to the fake GPU nodes
(tests/k8s/fake_nodes.py) as Docker containers and reports them to the real API server.

It is what makes "the pod is Running and Ready at an IP, and sshd answers there"
true in the test cluster, with the kubelet's visible behaviour: list+watch of the
pods bound to its nodes (relisting on 410 Gone), volumes (secret, configMap,
projected with service-account tokens, downwardAPI, emptyDir, persistentVolumeClaim,
hostPath) with the kubelet's ownership rules for fsGroup, the device plugin's
NVIDIA_VISIBLE_DEVICES for nvidia.com/* requests, the security context mapped onto
Docker, readiness probes, ErrImagePull/ImagePullBackOff for images not present
(it never pulls), activeDeadlineSeconds, exit codes, and the final DELETE of a
pod being deleted. It also provisions PersistentVolumes for a StorageClass whose
provisioner it is. It is not a kubelet: one container per pod (the first), no
init containers, no restarts with back-off, no cgroups beyond Docker's limits.

  fake_kubelet.py --nodes gpu-0,gpu-1 --state-dir DIR --network NAME
                  [--storage-class NAME] [--ready-file FILE]

Credentials as fake_nodes.py (--server/--ca/--cert/--key or $K8S_*). Every container
it makes carries the label sandman.test.kubelet=<network name>; on SIGTERM it removes
those containers and the network (if it made it), and touches nothing else.
"""

import argparse
import base64
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kube import Api, ApiError, now_rfc3339, parse_quantity  # noqa: E402

PROVISIONER = "sandman.test/fake-kubelet"
DEVICES_ANNOTATION = "sandman.test/devices"
LABEL = "sandman.test.kubelet"
STOP = threading.Event()


def log(msg):
    sys.stderr.write(time.strftime("%H:%M:%S ") + "fake-kubelet: " + msg + "\n")
    sys.stderr.flush()


def docker(*args, check=True, timeout=120):
    r = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise RuntimeError(f"docker {args[0]}: {r.stderr.strip() or r.stdout.strip()}")
    return r


def rfc3339(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def parse_time(s):
    import calendar
    return calendar.timegm(time.strptime(s.replace(".000000", "").rstrip("Z")[:19], "%Y-%m-%dT%H:%M:%S"))


class Kubelet:
    def __init__(self, api, nodes, state_dir, network, storage_class):
        self.api = api
        self.nodes = nodes
        self.state = os.path.abspath(state_dir)
        self.network = network
        self.storage_class = storage_class
        self.made_network = False
        self.host_ip = None
        self.pools = {}          # node -> resource -> [device ids]
        self.used = {}           # device id -> pod uid
        self.lock = threading.Lock()
        self.workers = {}        # uid -> PodWorker
        self.finished = set()    # uids whose deletion this kubelet completed (late events ignored)
        self.relists = 0

    # ------------------------------------------------------------ set-up / tear-down

    def setup(self):
        os.makedirs(self.state, exist_ok=True)
        if docker("network", "inspect", self.network, check=False).returncode != 0:
            docker("network", "create", "--label", f"{LABEL}={self.network}", self.network)
            self.made_network = True
        info = json.loads(docker("network", "inspect", self.network).stdout)[0]
        self.host_ip = info["IPAM"]["Config"][0]["Gateway"]
        for n in self.nodes:
            node = self.api.get(f"/api/v1/nodes/{n}")
            ann = node["metadata"].get("annotations", {}).get(DEVICES_ANNOTATION, "{}")
            self.pools[n] = json.loads(ann)
            addrs = [{"type": "InternalIP", "address": self.host_ip}, {"type": "Hostname", "address": n}]
            self.api.merge_patch(f"/api/v1/nodes/{n}/status", {"status": {"addresses": addrs}})
        if self.storage_class:
            sc = {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                  "metadata": {"name": self.storage_class,
                               "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
                  "provisioner": PROVISIONER, "reclaimPolicy": "Delete", "volumeBindingMode": "Immediate"}
            try:
                self.api.post("/apis/storage.k8s.io/v1/storageclasses", sc)
            except ApiError as e:
                if e.status != 409:
                    raise
        # Devices of containers left by an earlier run of this kubelet stay taken.
        for line in docker("ps", "-a", "--filter", f"label={LABEL}={self.network}",
                           "--format", '{{.Label "sandman.test.pod-uid"}} {{.Label "sandman.test.devices"}}').stdout.splitlines():
            uid, _, devs = line.partition(" ")
            for d in filter(None, devs.split(",")):
                self.used[d] = uid
        log(f"serving nodes {','.join(self.nodes)} on network {self.network} (host IP {self.host_ip})")

    def teardown(self):
        ids = docker("ps", "-aq", "--filter", f"label={LABEL}={self.network}", check=False).stdout.split()
        if ids:
            docker("rm", "-f", *ids, check=False)
        if self.made_network:
            docker("network", "rm", self.network, check=False)
        log(f"removed {len(ids)} containers" + (f" and network {self.network}" if self.made_network else ""))

    # ------------------------------------------------------------ devices

    def allocate(self, node, uid, want):
        """want: {resource: n} -> [device ids], or None when the node lacks them."""
        with self.lock:
            got = []
            for res, n in want.items():
                free = [d for d in self.pools.get(node, {}).get(res, []) if d not in self.used]
                if len(free) < n:
                    return None
                got += free[:n]
            for d in got:
                self.used[d] = uid
            return got

    def release(self, uid):
        with self.lock:
            for d in [d for d, u in self.used.items() if u == uid]:
                del self.used[d]

    # ------------------------------------------------------------ pod watch

    def ours(self, pod):
        # Pods labelled sandman.test/kubelet=ignore are run by the test itself (node
        # agents as host processes, their status set through the status subresource).
        if pod.get("metadata", {}).get("labels", {}).get("sandman.test/kubelet") == "ignore":
            return False
        return pod.get("spec", {}).get("nodeName") in self.nodes

    def dispatch(self, pod):
        uid = pod["metadata"]["uid"]
        w = self.workers.get(uid)
        if w is None:
            if not self.ours(pod) or uid in self.finished:
                return
            w = PodWorker(self, pod)
            self.workers[uid] = w
            w.start()
        else:
            w.update(pod)

    def dispatch_deleted(self, uid):
        w = self.workers.get(uid)
        if w:
            w.mark_gone()

    def watch_pods(self):
        path = "/api/v1/pods?fieldSelector=" + urllib.parse.quote("spec.nodeName!=")
        while not STOP.is_set():
            try:
                lst = self.api.get(path)
            except (ApiError, OSError, http.client.HTTPException) as e:
                log(f"list pods failed ({e}); retrying")
                time.sleep(0.5)
                continue
            rv = lst["metadata"]["resourceVersion"]
            seen = set()
            for pod in lst.get("items", []):
                seen.add(pod["metadata"]["uid"])
                self.dispatch(pod)
            for uid in list(self.workers):
                if uid not in seen:
                    self.dispatch_deleted(uid)
            log(f"listed pods at resourceVersion {rv} ({len(seen)} bound)")
            expired = False
            while not STOP.is_set() and not expired:
                try:
                    for ev in self.api.watch(path, rv, timeout_seconds=120):
                        t, obj = ev.get("type"), ev.get("object", {})
                        if t == "ERROR":
                            if obj.get("code") == 410:
                                expired = True
                                log(f"watch from resourceVersion {rv} expired (410 {obj.get('reason')}): relisting")
                                break
                            log(f"watch error event: {obj.get('message')}")
                            time.sleep(0.5)
                            break
                        rv = obj.get("metadata", {}).get("resourceVersion", rv)
                        if t == "BOOKMARK":
                            continue
                        if t == "DELETED":
                            self.dispatch_deleted(obj["metadata"]["uid"])
                        else:
                            self.dispatch(obj)
                except ApiError as e:
                    if e.status == 410:
                        expired = True
                        log(f"watch from resourceVersion {rv} answered 410: relisting")
                    else:
                        log(f"watch failed: {e}")
                        time.sleep(0.5)
                except (OSError, http.client.HTTPException, ValueError) as e:
                    log(f"watch connection lost ({e.__class__.__name__}: {e}); resuming from {rv}")
                    time.sleep(0.5)
            if expired:
                self.relists += 1

    # ------------------------------------------------------------ volume provisioning

    def provision_loop(self):
        while not STOP.is_set():
            try:
                self.provision_once()
            except (ApiError, OSError, http.client.HTTPException) as e:
                log(f"provisioner: {e}")
            STOP.wait(0.5)

    def provision_once(self):
        classes = {c["metadata"]["name"]: c for c in
                   self.api.get("/apis/storage.k8s.io/v1/storageclasses").get("items", [])}
        for pvc in self.api.get("/api/v1/persistentvolumeclaims").get("items", []):
            md, spec = pvc["metadata"], pvc["spec"]
            ann = md.get("annotations", {})
            prov = ann.get("volume.kubernetes.io/storage-provisioner") or ann.get(
                "volume.beta.kubernetes.io/storage-provisioner")
            if spec.get("volumeName") or prov != PROVISIONER:
                continue
            sc = classes.get(spec.get("storageClassName") or "", {})
            selected = ann.get("volume.kubernetes.io/selected-node")
            if sc.get("volumeBindingMode") == "WaitForFirstConsumer" and selected not in self.nodes:
                continue
            hostdir = os.path.join(self.state, "pvc", md["namespace"], md["name"])
            pv = {"apiVersion": "v1", "kind": "PersistentVolume",
                  "metadata": {"name": "pvc-" + md["uid"],
                               "annotations": {"pv.kubernetes.io/provisioned-by": PROVISIONER}},
                  "spec": {"capacity": {"storage": spec["resources"]["requests"]["storage"]},
                           "accessModes": spec.get("accessModes", ["ReadWriteOnce"]),
                           "persistentVolumeReclaimPolicy": sc.get("reclaimPolicy", "Delete"),
                           "storageClassName": spec.get("storageClassName", ""),
                           "volumeMode": spec.get("volumeMode", "Filesystem"),
                           "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                                        "namespace": md["namespace"], "name": md["name"], "uid": md["uid"]},
                           "hostPath": {"path": hostdir, "type": "DirectoryOrCreate"}}}
            try:
                self.api.post("/api/v1/persistentvolumes", pv)
                log(f"provisioned {pv['metadata']['name']} for {md['namespace']}/{md['name']}")
            except ApiError as e:
                if e.status != 409:
                    raise
        for pv in self.api.get("/api/v1/persistentvolumes").get("items", []):
            md = pv["metadata"]
            if (md.get("annotations", {}).get("pv.kubernetes.io/provisioned-by") == PROVISIONER and
                    pv.get("status", {}).get("phase") == "Released" and
                    pv["spec"].get("persistentVolumeReclaimPolicy") == "Delete"):
                path = pv["spec"].get("hostPath", {}).get("path", "")
                if path.startswith(self.state + os.sep):
                    shutil.rmtree(path, ignore_errors=True)
                try:
                    self.api.delete(f"/api/v1/persistentvolumes/{md['name']}")
                    log(f"deleted released {md['name']}")
                except ApiError as e:
                    if e.status != 404:
                        raise


class PodWorker(threading.Thread):
    """Keeps one pod's container and status in line with the pod object."""

    def __init__(self, kubelet, pod):
        super().__init__(daemon=True)
        self.k = kubelet
        self.pod = pod
        md = pod["metadata"]
        self.uid, self.ns, self.name = md["uid"], md["namespace"], md["name"]
        self.node = pod["spec"]["nodeName"]
        self.wake = threading.Event()
        self.gone = False
        self.done = False
        self.cid = None
        self.devices = None
        self.start_time = None
        self.terminal = pod.get("status", {}).get("phase") in ("Failed", "Succeeded")
        self.waiting = None           # (reason, message) while the container cannot start
        self.terminated = None        # container terminated state
        self.phase_reason = None      # (reason, message) for a Failed pod
        self.ready = False
        self.probe_ok = 0
        self.probe_fail = 0
        self.next_probe = 0.0
        self.restarts = 0
        self.started_at = None
        self.ip = None
        self.image_id = ""
        self.pull_attempts = 0
        self.next_pull = 0.0
        self.pulled_at = 0.0
        self.last_status = None
        self.transitions = {}
        self.events_sent = {}
        self.dir = os.path.join(kubelet.state, "pods", self.uid)

    # -------------------------------------------------------- plumbing

    def update(self, pod):
        self.pod = pod
        self.wake.set()

    def mark_gone(self):
        self.gone = True
        self.wake.set()

    def run(self):
        while not self.done and not STOP.is_set():
            try:
                self.sync()
            except Exception as e:  # keep serving the pod; the next sync retries
                log(f"{self.ns}/{self.name}: sync failed: {e.__class__.__name__}: {e}")
            if self.done:
                break
            self.wake.wait(0.5)
            self.wake.clear()
        self.k.workers.pop(self.uid, None)

    @property
    def ctr(self):
        return self.pod["spec"]["containers"][0]

    def event(self, etype, reason, message, once_per=None):
        key = (reason, message)
        now = time.time()
        if once_per is not None and now - self.events_sent.get(key, -1e9) < once_per:
            return
        self.events_sent[key] = now
        ev = {"apiVersion": "v1", "kind": "Event",
              "metadata": {"name": f"{self.name}.{int(now * 1e6):x}", "namespace": self.ns},
              "involvedObject": {"apiVersion": "v1", "kind": "Pod", "namespace": self.ns, "name": self.name,
                                 "uid": self.uid, "fieldPath": f"spec.containers{{{self.ctr['name']}}}"},
              "reason": reason, "message": message, "type": etype,
              "source": {"component": "kubelet", "host": self.node},
              "reportingComponent": "kubelet", "reportingInstance": self.node,
              "firstTimestamp": now_rfc3339(), "lastTimestamp": now_rfc3339(), "count": 1}
        try:
            self.k.api.post(f"/api/v1/namespaces/{self.ns}/events", ev)
        except (ApiError, OSError, http.client.HTTPException) as e:
            log(f"{self.ns}/{self.name}: event {reason} not posted: {e}")

    # -------------------------------------------------------- the state machine

    def sync(self):
        pod = self.pod
        if self.gone:
            self.remove_container()
            self.k.release(self.uid)
            shutil.rmtree(self.dir, ignore_errors=True)
            self.done = True
            return
        if pod["metadata"].get("deletionTimestamp"):
            return self.finish_deletion()
        if self.terminal:
            return
        if self.start_time is None:
            st = pod.get("status", {}).get("startTime")
            self.start_time = parse_time(st) if st else time.time()
        ads = pod["spec"].get("activeDeadlineSeconds")
        if ads is not None and time.time() >= self.start_time + ads:
            if self.cid:
                docker("kill", self.cid, check=False)
                self.inspect()
            self.event("Normal", "DeadlineExceeded", "Pod was active on the node longer than the specified deadline")
            return self.fail("DeadlineExceeded", "Pod was active on the node longer than the specified deadline")
        if self.cid is None:
            self.adopt() or self.create()
        if self.cid is not None:
            self.check_running()
        self.report()

    def adopt(self):
        out = docker("ps", "-a", "--filter", f"label=sandman.test.pod-uid={self.uid}", "--format",
                     '{{.ID}} {{.Label "sandman.test.devices"}}').stdout.split()
        if not out:
            return False
        self.cid = out[0]
        self.devices = out[1].split(",") if len(out) > 1 else []
        self.inspect()
        log(f"{self.ns}/{self.name}: adopted container {self.cid[:12]}")
        return True

    def fail(self, reason, message):
        self.terminal = True
        self.phase_reason = (reason, message)
        self.k.release(self.uid)
        self.report()

    def create(self):
        spec = self.pod["spec"]
        c = self.ctr
        if self.devices is None:
            want = {}
            for src in (c.get("resources", {}).get("requests", {}), c.get("resources", {}).get("limits", {})):
                for res, q in src.items():
                    if res.startswith("nvidia.com/"):
                        want[res] = int(parse_quantity(q))
            got = self.k.allocate(self.node, self.uid, want) if want else []
            if got is None:
                msg = f"Allocate failed due to requested number of devices unavailable for {', '.join(want)}"
                self.event("Warning", "UnexpectedAdmissionError", msg)
                return self.fail("UnexpectedAdmissionError", msg)
            self.devices = got
        image = c["image"]
        now = time.time()
        if self.waiting and self.waiting[0] in ("ErrImagePull", "ImagePullBackOff") and now < self.next_pull:
            # ErrImagePull stands until the next sync, which the back-off turns into ImagePullBackOff.
            if self.waiting[0] == "ErrImagePull" and now >= self.pulled_at + 2:
                self.waiting = ("ImagePullBackOff", f'Back-off pulling image "{image}"')
                self.event("Normal", "BackOff", f'Back-off pulling image "{image}"')
            return
        inspect = docker("image", "inspect", image, check=False)
        if inspect.returncode != 0:
            self.pull_attempts += 1
            self.pulled_at = now
            self.next_pull = now + min(10 * 2 ** (self.pull_attempts - 1), 300)
            repo = image.rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image
            msg = (f'Failed to pull image "{image}": Error response from daemon: pull access denied for {repo}, '
                   "repository does not exist or may require 'docker login'")
            self.waiting = ("ErrImagePull", msg)
            self.event("Normal", "Pulling", f'Pulling image "{image}"')
            self.event("Warning", "Failed", msg)
            self.event("Warning", "Failed", "Error: ErrImagePull")
            return
        img = json.loads(inspect.stdout)[0]
        self.image_id = img.get("Id", "")
        psc, csc = spec.get("securityContext", {}), c.get("securityContext", {})
        uid = csc.get("runAsUser", psc.get("runAsUser"))
        gid = csc.get("runAsGroup", psc.get("runAsGroup"))
        if csc.get("runAsNonRoot", psc.get("runAsNonRoot")):
            user = str(uid) if uid is not None else (img.get("Config", {}).get("User") or "0").split(":")[0]
            if user in ("0", "root"):
                msg = "container has runAsNonRoot and image will run as root"
                self.waiting = ("CreateContainerConfigError", msg)
                self.event("Warning", "Failed", "Error: " + msg, once_per=30)
                return
        try:
            mounts = self.volumes(psc)
            env = self.environment()
        except MountPending as e:
            self.waiting = ("ContainerCreating", None)
            self.event("Warning", "FailedMount", str(e), once_per=10)
            return
        self.event("Normal", "Pulled", f'Container image "{image}" already present on machine')
        args = ["run", "-d", "--name", f"k8s_{c['name']}_{self.name}_{self.ns}_{self.uid[:8]}"[:200],
                "--label", f"{LABEL}={self.k.network}", "--label", f"sandman.test.pod-uid={self.uid}",
                "--label", f"sandman.test.pod={self.ns}/{self.name}",
                "--label", f"sandman.test.devices={','.join(self.devices)}",
                "--network", self.k.network, "--hostname", (spec.get("hostname") or self.name)[:63],
                "--restart", "no"]
        if uid is not None:
            args += ["--user", f"{uid}:{gid}" if gid is not None else str(uid)]
        groups = list(psc.get("supplementalGroups", []))
        if psc.get("fsGroup") is not None:
            groups.append(psc["fsGroup"])
        for g in groups:
            args += ["--group-add", str(g)]
        if csc.get("readOnlyRootFilesystem"):
            args.append("--read-only")
        if csc.get("privileged"):
            args.append("--privileged")
        caps = csc.get("capabilities", {})
        for cap in caps.get("drop", []):
            args += ["--cap-drop", cap]
        for cap in caps.get("add", []):
            args += ["--cap-add", cap]
        if csc.get("allowPrivilegeEscalation") is False:
            args += ["--security-opt", "no-new-privileges"]
        seccomp = csc.get("seccompProfile", psc.get("seccompProfile", {})).get("type", "RuntimeDefault")
        if seccomp == "Unconfined":
            args += ["--security-opt", "seccomp=unconfined"]
        limits = c.get("resources", {}).get("limits", {})
        if "memory" in limits:
            args += ["--memory", str(int(parse_quantity(limits["memory"])))]
        if "cpu" in limits:
            args += ["--cpus", f"{parse_quantity(limits['cpu']):.3f}"]
        if c.get("workingDir"):
            args += ["--workdir", c["workingDir"]]
        for k, v in env:
            args += ["--env", f"{k}={v}"]
        args += mounts
        command, cargs = c.get("command"), c.get("args")
        if command:
            args += ["--entrypoint", command[0], image, *command[1:], *(cargs or [])]
        else:
            args += [image, *(cargs or [])]
        r = docker(*args, check=False)
        if r.returncode != 0:
            msg = r.stderr.strip()
            self.waiting = ("CreateContainerError", msg)
            self.event("Warning", "Failed", "Error: " + msg, once_per=30)
            docker("rm", "-f", f"k8s_{c['name']}_{self.name}_{self.ns}_{self.uid[:8]}", check=False)
            return
        self.cid = r.stdout.strip()
        self.waiting = None
        self.event("Normal", "Created", f"Created container: {c['name']}")
        self.event("Normal", "Started", f"Started container {c['name']}")
        self.inspect()
        log(f"{self.ns}/{self.name}: started container {self.cid[:12]}" + (f" at {self.ip}" if self.ip else "")
            + (f" with {','.join(self.devices)}" if self.devices else ""))

    def inspect(self):
        r = docker("inspect", self.cid, check=False)
        if r.returncode != 0:
            self.cid = None
            return None
        info = json.loads(r.stdout)[0]
        self.ip = info["NetworkSettings"]["Networks"].get(self.k.network, {}).get("IPAddress") or self.ip
        self.started_at = info["State"].get("StartedAt", "")[:19] + "Z"
        return info

    def check_running(self):
        info = self.inspect()
        if info is None:
            return
        st = info["State"]
        if st["Running"]:
            self.probe()
            return
        code = st.get("ExitCode", 0)
        finished = st.get("FinishedAt", "")[:19] + "Z"
        policy = self.pod["spec"].get("restartPolicy", "Always")
        if policy == "Always" or (policy == "OnFailure" and code != 0):
            self.restarts += 1
            self.ready = False
            docker("start", self.cid, check=False)
            self.event("Warning", "BackOff", "Back-off restarting failed container", once_per=10)
            return
        self.ready = False
        self.terminated = {"exitCode": code, "reason": "Completed" if code == 0 else "Error",
                           "startedAt": self.started_at, "finishedAt": finished, "containerID": "docker://" + self.cid}
        self.terminal = True
        self.k.release(self.uid)

    def probe(self):
        p = self.ctr.get("readinessProbe")
        if not p:
            self.ready = True
            return
        now = time.time()
        if now < self.next_probe:
            return
        if self.started_at and now < parse_time(self.started_at) + p.get("initialDelaySeconds", 0):
            return
        self.next_probe = now + p.get("periodSeconds", 10)
        ok = self.run_probe(p)
        if ok:
            self.probe_ok += 1
            self.probe_fail = 0
            if self.probe_ok >= p.get("successThreshold", 1):
                self.ready = True
        else:
            self.probe_fail += 1
            self.probe_ok = 0
            if self.probe_fail >= p.get("failureThreshold", 3) or not self.ready:
                if self.ready:
                    self.event("Warning", "Unhealthy", "Readiness probe failed")
                self.ready = False

    def port_of(self, port):
        if isinstance(port, int):
            return port
        for cp in self.ctr.get("ports", []):
            if cp.get("name") == port:
                return cp["containerPort"]
        return int(port)

    def run_probe(self, p):
        timeout = p.get("timeoutSeconds", 1)
        if "tcpSocket" in p:
            try:
                with socket.create_connection((self.ip, self.port_of(p["tcpSocket"]["port"])), timeout=timeout):
                    return True
            except OSError:
                return False
        if "httpGet" in p:
            g = p["httpGet"]
            try:
                c = http.client.HTTPConnection(self.ip, self.port_of(g["port"]), timeout=timeout)
                c.request("GET", g.get("path", "/"))
                return 200 <= c.getresponse().status < 400
            except (OSError, http.client.HTTPException):
                return False
        if "exec" in p:
            return docker("exec", self.cid, *p["exec"]["command"], check=False, timeout=timeout + 5).returncode == 0
        return True

    def remove_container(self):
        if self.cid:
            docker("rm", "-f", self.cid, check=False)
        else:
            ids = docker("ps", "-aq", "--filter", f"label=sandman.test.pod-uid={self.uid}", check=False).stdout.split()
            if ids:
                docker("rm", "-f", *ids, check=False)
        self.cid = None

    def finish_deletion(self):
        md = self.pod["metadata"]
        grace = md.get("deletionGracePeriodSeconds", 30)
        if self.cid:
            self.event("Normal", "Killing", f"Stopping container {self.ctr['name']}")
            docker("stop", "-t", str(max(0, min(int(grace), 30))), self.cid, check=False, timeout=60)
        self.remove_container()
        self.k.release(self.uid)
        shutil.rmtree(self.dir, ignore_errors=True)
        try:
            self.k.api.delete(f"/api/v1/namespaces/{self.ns}/pods/{self.name}",
                              {"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0,
                               "preconditions": {"uid": self.uid}})
        except ApiError as e:
            if e.status not in (404, 409):
                raise
        log(f"{self.ns}/{self.name}: deleted")
        self.k.finished.add(self.uid)
        self.done = True

    # -------------------------------------------------------- status

    def condition(self, ctype, status, reason=None, message=None):
        prev = self.transitions.get(ctype)
        if prev is None or prev[0] != status:
            self.transitions[ctype] = (status, now_rfc3339())
        c = {"type": ctype, "status": status, "lastProbeTime": None,
             "lastTransitionTime": self.transitions[ctype][1]}
        if reason:
            c["reason"] = reason
        if message:
            c["message"] = message
        return c

    def report(self):
        c = self.ctr
        cs = {"name": c["name"], "image": c["image"], "imageID": self.image_id, "ready": False,
              "restartCount": self.restarts, "started": False}
        if self.cid:
            cs["containerID"] = "docker://" + self.cid
        if self.terminated:
            cs["state"] = {"terminated": self.terminated}
        elif self.terminal and self.phase_reason:
            cs["state"] = {"terminated": {"exitCode": 137, "reason": "Error", "startedAt": self.started_at,
                                          "finishedAt": now_rfc3339()}} if self.cid else {
                "waiting": {"reason": "ContainerCreating"}}
        elif self.cid:
            cs["state"] = {"running": {"startedAt": self.started_at}}
            cs["ready"] = self.ready
            cs["started"] = True
        else:
            w = {"reason": (self.waiting or ("ContainerCreating",))[0]}
            if self.waiting and self.waiting[1]:
                w["message"] = self.waiting[1]
            cs["state"] = {"waiting": w}
        ready = cs["ready"] and not self.terminal
        if self.terminal:
            phase = "Failed" if self.phase_reason or (self.terminated or {}).get("exitCode", 1) != 0 else "Succeeded"
        else:
            phase = "Running" if self.cid else "Pending"
        unready = None if ready else f"containers with unready status: [{c['name']}]"
        status = {
            "phase": phase,
            "conditions": [
                self.condition("PodReadyToStartContainers", "True" if self.cid else "False"),
                self.condition("Initialized", "True"),
                self.condition("Ready", "True" if ready else "False",
                               None if ready else ("PodCompleted" if self.terminal else "ContainersNotReady"), unready),
                self.condition("ContainersReady", "True" if ready else "False",
                               None if ready else ("PodCompleted" if self.terminal else "ContainersNotReady"), unready),
                self.condition("PodScheduled", "True"),
            ],
            "hostIP": self.k.host_ip, "hostIPs": [{"ip": self.k.host_ip}],
            "startTime": rfc3339(self.start_time),
            "containerStatuses": [cs],
        }
        if self.ip and phase == "Running":
            status["podIP"] = self.ip
            status["podIPs"] = [{"ip": self.ip}]
        else:
            status["podIP"] = None
            status["podIPs"] = None
        if self.phase_reason:
            status["reason"], status["message"] = self.phase_reason
        if status == self.last_status:
            return
        self.k.api.merge_patch(f"/api/v1/namespaces/{self.ns}/pods/{self.name}/status", {"status": status})
        if self.last_status is None or self.last_status["phase"] != phase or \
                self.last_status["containerStatuses"][0].get("ready") != cs["ready"]:
            log(f"{self.ns}/{self.name}: {phase}" + (" Ready" if ready else "") +
                (f" ({status.get('reason')})" if status.get("reason") else "") +
                (f" waiting {self.waiting[0]}" if self.waiting and not self.cid else ""))
        self.last_status = status

    # -------------------------------------------------------- volumes and environment

    def chown_tree(self, path, gid, writable):
        """What the kubelet does for fsGroup: group gid, setgid dirs, group read (and write)."""
        for root, dirs, files in os.walk(path):
            for n in [root] + [os.path.join(root, f) for f in files]:
                if os.path.islink(n):
                    continue
                os.lchown(n, -1, gid)
                m = os.stat(n).st_mode & 0o7777
                m |= 0o060 if writable else 0o040
                if os.path.isdir(n):
                    m |= 0o2010
                os.chmod(n, m)

    def write_files(self, base, files, fsgroup):
        """Writes {relpath: (bytes, mode)} as the kubelet's atomic writer lays out a volume:
        a timestamped dir, ..data pointing at it, and top-level names linking through ..data."""
        if os.path.isdir(base):
            return
        os.makedirs(base)
        ts = "..%s" % time.strftime("%Y_%m_%d_%H_%M_%S", time.gmtime()) + ".%d" % os.getpid()
        data = os.path.join(base, ts)
        os.makedirs(data)
        for rel, (content, mode) in files.items():
            p = os.path.join(data, rel)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "wb") as f:
                f.write(content)
            os.chmod(p, mode)
        os.symlink(ts, os.path.join(base, "..data"))
        for top in {rel.split("/")[0] for rel in files}:
            os.symlink(os.path.join("..data", top), os.path.join(base, top))
        if fsgroup is not None:
            self.chown_tree(base, fsgroup, writable=False)
        else:
            os.chmod(base, 0o755)

    def keyed_files(self, data, items, default_mode, optional, what):
        """data {key: bytes} + items -> {path: (bytes, mode)}."""
        out = {}
        if items:
            for it in items:
                if it["key"] not in data:
                    if optional:
                        continue
                    raise MountPending(f"{what}: key {it['key']!r} not found")
                out[it["path"]] = (data[it["key"]], it.get("mode", default_mode))
        else:
            for key, val in data.items():
                out[key] = (val, default_mode)
        return out

    def get_secret(self, name, optional, vol):
        try:
            s = self.k.api.get(f"/api/v1/namespaces/{self.ns}/secrets/{name}")
        except ApiError as e:
            if e.status == 404:
                if optional:
                    return {}
                raise MountPending(f'MountVolume.SetUp failed for volume "{vol}" : secret "{name}" not found')
            raise
        return {k: base64.b64decode(v) for k, v in s.get("data", {}).items()}

    def get_configmap(self, name, optional, vol):
        try:
            cm = self.k.api.get(f"/api/v1/namespaces/{self.ns}/configmaps/{name}")
        except ApiError as e:
            if e.status == 404:
                if optional:
                    return {}
                raise MountPending(f'MountVolume.SetUp failed for volume "{vol}" : configmap "{name}" not found')
            raise
        d = {k: v.encode() for k, v in cm.get("data", {}).items()}
        d.update({k: base64.b64decode(v) for k, v in cm.get("binaryData", {}).items()})
        return d

    def field(self, path):
        md = self.pod["metadata"]
        if path == "metadata.name":
            return md["name"]
        if path == "metadata.namespace":
            return md["namespace"]
        if path == "metadata.uid":
            return md["uid"]
        if path == "spec.nodeName":
            return self.node
        if path == "spec.serviceAccountName":
            return self.pod["spec"].get("serviceAccountName", "")
        if path == "status.hostIP":
            return self.k.host_ip
        if path == "status.podIP":
            return self.ip or ""
        for kind in ("labels", "annotations"):
            pre = f"metadata.{kind}['"
            if path.startswith(pre):
                return md.get(kind, {}).get(path[len(pre):-2], "")
            if path == f"metadata.{kind}":
                return "\n".join(f'{k}="{v}"' for k, v in sorted(md.get(kind, {}).items()))
        return ""

    def token(self, sa, audience, seconds):
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                "spec": {"audiences": [audience] if audience else [], "expirationSeconds": seconds,
                         "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": self.name, "uid": self.uid}}}
        r = self.k.api.post(f"/api/v1/namespaces/{self.ns}/serviceaccounts/{sa}/token", body)
        return r["status"]["token"].encode()

    def volumes(self, psc):
        fsgroup = psc.get("fsGroup")
        paths = {}     # volume name -> host path, or ("tmpfs", opts)
        for v in self.pod["spec"].get("volumes", []):
            name = v["name"]
            base = os.path.join(self.dir, "volumes", name)
            if "secret" in v:
                s = v["secret"]
                data = self.get_secret(s["secretName"], s.get("optional", False), name)
                files = self.keyed_files(data, s.get("items"), s.get("defaultMode", 0o644), s.get("optional", False),
                                         f'secret "{s["secretName"]}"')
                self.write_files(base, files, fsgroup)
                paths[name] = base
            elif "configMap" in v:
                s = v["configMap"]
                data = self.get_configmap(s["name"], s.get("optional", False), name)
                files = self.keyed_files(data, s.get("items"), s.get("defaultMode", 0o644), s.get("optional", False),
                                         f'configmap "{s["name"]}"')
                self.write_files(base, files, fsgroup)
                paths[name] = base
            elif "downwardAPI" in v:
                s = v["downwardAPI"]
                files = {it["path"]: (self.field(it["fieldRef"]["fieldPath"]).encode(),
                                      it.get("mode", s.get("defaultMode", 0o644)))
                         for it in s.get("items", []) if "fieldRef" in it}
                self.write_files(base, files, fsgroup)
                paths[name] = base
            elif "projected" in v:
                s = v["projected"]
                mode = s.get("defaultMode", 0o644)
                files = {}
                for src in s.get("sources", []):
                    if "secret" in src:
                        x = src["secret"]
                        files.update(self.keyed_files(self.get_secret(x["name"], x.get("optional", False), name),
                                                      x.get("items"), mode, x.get("optional", False),
                                                      f'secret "{x["name"]}"'))
                    elif "configMap" in src:
                        x = src["configMap"]
                        files.update(self.keyed_files(self.get_configmap(x["name"], x.get("optional", False), name),
                                                      x.get("items"), mode, x.get("optional", False),
                                                      f'configmap "{x["name"]}"'))
                    elif "downwardAPI" in src:
                        for it in src["downwardAPI"].get("items", []):
                            if "fieldRef" in it:
                                files[it["path"]] = (self.field(it["fieldRef"]["fieldPath"]).encode(),
                                                     it.get("mode", mode))
                    elif "serviceAccountToken" in src:
                        x = src["serviceAccountToken"]
                        sa = self.pod["spec"].get("serviceAccountName", "default")
                        files[x["path"]] = (self.token(sa, x.get("audience"), x.get("expirationSeconds", 3600)), mode)
                self.write_files(base, files, fsgroup)
                paths[name] = base
            elif "emptyDir" in v:
                e = v["emptyDir"] or {}
                if e.get("medium") == "Memory":
                    opts = "tmpfs-mode=1777"
                    if e.get("sizeLimit"):
                        opts += f",tmpfs-size={int(parse_quantity(e['sizeLimit']))}"
                    paths[name] = ("tmpfs", opts)
                else:
                    if not os.path.isdir(base):
                        os.makedirs(base)
                        os.chmod(base, 0o777)
                        if fsgroup is not None:
                            os.chown(base, -1, fsgroup)
                            os.chmod(base, 0o2777)
                    paths[name] = base
            elif "persistentVolumeClaim" in v:
                claim = v["persistentVolumeClaim"]["claimName"]
                try:
                    pvc = self.k.api.get(f"/api/v1/namespaces/{self.ns}/persistentvolumeclaims/{claim}")
                except ApiError as e:
                    if e.status == 404:
                        raise MountPending(f'persistentvolumeclaim "{claim}" not found')
                    raise
                if pvc.get("status", {}).get("phase") != "Bound":
                    raise MountPending(f'persistentvolumeclaim "{claim}" is not bound')
                d = os.path.join(self.k.state, "pvc", self.ns, claim)
                if not os.path.isdir(d):
                    # A fresh filesystem's root: root-owned 0755, writable only through fsGroup.
                    os.makedirs(d)
                    os.chmod(d, 0o755)
                if fsgroup is not None and os.stat(d).st_gid != fsgroup:
                    # fsGroupChangePolicy OnRootMismatch (Always would walk every time; same result here).
                    self.chown_tree(d, fsgroup, writable=True)
                paths[name] = d
            elif "hostPath" in v:
                paths[name] = v["hostPath"]["path"]
            else:
                raise MountPending(f'volume "{name}": this fake kubelet does not support its type')
        args = []
        for m in self.ctr.get("volumeMounts", []):
            src = paths.get(m["name"])
            if src is None:
                raise MountPending(f'volume "{m["name"]}" is not defined')
            vol = next(v for v in self.pod["spec"]["volumes"] if v["name"] == m["name"])
            ro = m.get("readOnly", False) or any(k in vol for k in ("secret", "configMap", "downwardAPI", "projected"))
            if isinstance(src, tuple):
                args += ["--mount", f"type=tmpfs,destination={m['mountPath']},{src[1]}"]
                continue
            if m.get("subPath"):
                # The kubelet bind-mounts the resolved path (through ..data for secrets).
                src = os.path.realpath(os.path.join(src, m["subPath"]))
                if not os.path.exists(src):
                    os.makedirs(src)
            args += ["--mount", f"type=bind,source={src},destination={m['mountPath']}" + (",readonly" if ro else "")]
        return args

    def environment(self):
        env = []
        if self.devices:
            # The device plugin's envvar strategy (DEVICE_LIST_STRATEGY=envvar, DEVICE_ID_STRATEGY=uuid).
            env.append(("NVIDIA_VISIBLE_DEVICES", ",".join(self.devices)))
        c = self.ctr
        for ef in c.get("envFrom", []):
            pre = ef.get("prefix", "")
            if "configMapRef" in ef:
                r = ef["configMapRef"]
                data = self.get_configmap(r["name"], r.get("optional", False), "envFrom")
            else:
                r = ef["secretRef"]
                data = self.get_secret(r["name"], r.get("optional", False), "envFrom")
            env += [(pre + k, v.decode()) for k, v in data.items()]
        for e in c.get("env", []):
            if "valueFrom" not in e:
                env.append((e["name"], e.get("value", "")))
                continue
            vf = e["valueFrom"]
            if "fieldRef" in vf:
                env.append((e["name"], self.field(vf["fieldRef"]["fieldPath"])))
            elif "secretKeyRef" in vf:
                r = vf["secretKeyRef"]
                data = self.get_secret(r["name"], r.get("optional", False), "env")
                if r["key"] in data:
                    env.append((e["name"], data[r["key"]].decode()))
            elif "configMapKeyRef" in vf:
                r = vf["configMapKeyRef"]
                data = self.get_configmap(r["name"], r.get("optional", False), "env")
                if r["key"] in data:
                    env.append((e["name"], data[r["key"]].decode()))
        return env


class MountPending(Exception):
    """A volume's source does not exist yet; the kubelet retries until it does."""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--server")
    ap.add_argument("--ca")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--token")
    ap.add_argument("--token-file")
    ap.add_argument("--nodes", required=True, help="comma-separated node names this kubelet serves")
    ap.add_argument("--state-dir", required=True, help="volumes and workspaces (PVC data survives pod deletion)")
    ap.add_argument("--network", required=True, help="Docker network for the pods (made if missing)")
    ap.add_argument("--storage-class", help="make this default StorageClass and provision its volumes")
    ap.add_argument("--ready-file", help="touched once the kubelet serves its nodes")
    args = ap.parse_args()

    k = Kubelet(Api.from_env(args), args.nodes.split(","), args.state_dir, args.network, args.storage_class)
    signal.signal(signal.SIGTERM, lambda *_: STOP.set())
    signal.signal(signal.SIGINT, lambda *_: STOP.set())
    try:
        k.setup()
        threading.Thread(target=k.watch_pods, daemon=True).start()
        if args.storage_class:
            threading.Thread(target=k.provision_loop, daemon=True).start()
        if args.ready_file:
            open(args.ready_file, "w").close()
        while not STOP.is_set():
            STOP.wait(1)
    finally:
        STOP.set()
        k.teardown()


if __name__ == "__main__":
    main()
