// Nodes: the GPU nodes sessions are placed on (the local host on Docker, the
// cluster's GPU nodes on Kubernetes), with their status; an admin takes one
// out of service (maintenance, drained) here, and the page says that creates
// are then refused.
import { useEffect, useRef, useState } from "preact/hooks";
import { api, errorText } from "../api";
import { useLive } from "../live";
import { until, when } from "../format";
import type { Gpu, GpuNode, NodeList } from "../types";
import type { Who } from "../main";

const STATUSES = ["active", "maintenance", "drained"] as const;

// Devices (MIG instances, whole GPUs) in use and free. The Docker backend's
// node is this host, whose inventory the live state holds; a cluster node
// reports its extended resources' use itself.
function usage(n: GpuNode, gpus: Gpu[]): { used: number; free: number } | null {
  if (n.resources) {
    return n.resources.reduce((a, r) => ({ used: a.used + r.in_use, free: a.free + r.free }), { used: 0, free: 0 });
  }
  if (n.backend !== "docker") return null;
  let used = 0;
  let free = 0;
  for (const g of gpus) {
    if (g.mig_enabled) {
      for (const i of g.mig_instances) i.session_id ? used++ : free++;
    } else {
      g.session_id ? used++ : free++;
    }
  }
  return { used, free };
}

function models(n: GpuNode): string {
  if (n.gpu_models) {
    const m = Object.entries(n.gpu_models).map(([k, c]) => `${c} × ${k.replace(/^NVIDIA /, "")}`);
    return m.length ? m.join(", ") : "–";
  }
  return n.product ? n.product.replace(/^NVIDIA[ -]/, "") : "–";
}

function StatusPill({ n }: { n: GpuNode }) {
  return <span class={`pill status-${n.status}`}>{n.status}</span>;
}

// What changes the list: node events (a status or metadata set), sessions
// coming and going (session events, which also refresh the GPU inventory),
// and a `reset`, which reloads it.
function useLiveKey(): unknown[] {
  const live = useLive();
  return [live.nodeChanges, live.gpus, [...live.sessions.keys()].join()];
}

function NodeList({ who }: { who: Who }) {
  const live = useLive();
  const [search, setSearch] = useState("");
  const [status, setStatus] = useState("");
  const [list, setList] = useState<NodeList | null>(null);
  const [error, setError] = useState("");
  const seq = useRef(0);
  const key = useLiveKey();

  useEffect(() => {
    const q = new URLSearchParams({ limit: "1000" });
    if (search.trim()) q.set("search", search.trim());
    if (status) q.set("status", status);
    const mine = ++seq.current;
    api.get<NodeList>(`/api/v1/gpu-nodes?${q}`).then(
      (r) => {
        // Typing fires a request per key: only the latest answer is shown.
        if (mine !== seq.current) return;
        setList(r);
        setError("");
      },
      (e) => mine === seq.current && setError(errorText(e)),
    );
  }, [search, status, ...key]);

  const closed = list?.nodes.filter((n) => !n.takes_sessions) ?? [];
  return (
    <>
      <h1 tabIndex={-1}>Nodes</h1>
      {closed.length > 0 && (
        <p class="notice" role="status" data-testid="nodes-closed">
          {closed.length === list?.nodes.length ? "No node takes new sessions" : `${closed.length} node${closed.length > 1 ? "s take" : " takes"} no new sessions`}
          : {closed.map((n) => `${n.name} (${n.status}${n.status_reason ? `: ${n.status_reason}` : ""})`).join(", ")}.
          {closed.length === list?.nodes.length && " Creating a session is refused until one is active again."}
        </p>
      )}
      <div class="filters" role="search" aria-label="Filter nodes">
        <label>
          Search
          <input type="search" value={search} onInput={(e) => setSearch((e.target as HTMLInputElement).value)} autocomplete="off" placeholder="name, description, cluster" />
        </label>
        <label>
          Status
          <select value={status} onChange={(e) => setStatus((e.target as HTMLSelectElement).value)}>
            <option value="">any</option>
            {STATUSES.map((s) => <option value={s}>{s}</option>)}
          </select>
        </label>
        {list && <span class="hint" role="status">{list.count === list.total ? `${list.total} node${list.total === 1 ? "" : "s"}` : `the first ${list.count} of ${list.total} nodes`}</span>}
      </div>
      {error && <p role="alert" class="error">{error}</p>}
      {!list && !error && <p aria-busy="true">Loading…</p>}
      {list && list.nodes.length > 0 && (
        <div class="scroll-x">
          <table class="nodes">
            <thead>
              <tr>
                <th scope="col">Node</th><th scope="col">Status</th><th scope="col">GPUs</th><th scope="col">Models</th>
                <th scope="col">Devices in use / free</th><th scope="col">Sessions</th><th scope="col">Description</th>
              </tr>
            </thead>
            <tbody>
              {list.nodes.map((n) => {
                const u = usage(n, live.gpus);
                return (
                  <tr key={n.id} data-node={n.name}>
                    <td><a href={`#/nodes/${encodeURIComponent(n.name)}`}>{n.name}</a>{n.cluster && <span class="hint"> · {n.cluster}</span>}</td>
                    <td><StatusPill n={n} />{n.status_reason && <span class="hint"> {n.status_reason}</span>}</td>
                    <td>{n.gpu_count}</td>
                    <td>{models(n)}</td>
                    <td>{u ? `${u.used} / ${u.free}` : "–"}</td>
                    <td>{n.running_sessions}</td>
                    <td>{n.description || <span class="hint">–</span>}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
      {list && list.nodes.length === 0 && <p>{search.trim() || status ? "No node matches." : "No GPU node."}</p>}
      {who.role !== "admin" && <p class="hint">Only an admin changes a node's status.</p>}
    </>
  );
}

function StatusForm({ node, onSet }: { node: GpuNode; onSet: (n: GpuNode) => void }) {
  const [status, setStatus] = useState<string>(node.status);
  const [reason, setReason] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState("");
  useEffect(() => setStatus(node.status), [node.status]);

  async function submit(e: Event) {
    e.preventDefault();
    setBusy(true);
    setError("");
    try {
      const body: Record<string, string> = { status, by: "dashboard" };
      if (reason.trim()) body.reason = reason.trim();
      const n = await api.patch<GpuNode>(`/api/v1/gpu-nodes/${encodeURIComponent(node.name)}/status`, body);
      setReason("");
      onSet(n);
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <form class="inline-form status-form" onSubmit={submit} aria-labelledby="status-form-h">
      <h2 id="status-form-h" class="sr">Set the node's status</h2>
      <label>
        New status
        <select value={status} onChange={(e) => setStatus((e.target as HTMLSelectElement).value)}>
          {STATUSES.map((s) => <option value={s}>{s}</option>)}
        </select>
      </label>
      <label>
        Reason
        <input value={reason} maxLength={512} onInput={(e) => setReason((e.target as HTMLInputElement).value)} placeholder={status === "active" ? "optional" : "e.g. PSU swap"} autocomplete="off" />
      </label>
      <button type="submit" disabled={busy}>Set status</button>
      <span class="hint">
        {status === "active" ? "Takes new sessions." : status === "maintenance" ? "Refuses new sessions; running ones continue." : "Refuses new sessions and reports when the last one has ended."}
      </span>
      {error && <p role="alert" class="error">{error}</p>}
    </form>
  );
}

function NodeDetail({ name, who }: { name: string; who: Who }) {
  const live = useLive();
  const [node, setNode] = useState<GpuNode | null>(null);
  const [error, setError] = useState("");
  const [missing, setMissing] = useState(false);
  const key = useLiveKey();
  useEffect(() => {
    api.get<GpuNode>(`/api/v1/gpu-nodes/${encodeURIComponent(name)}`).then(
      (n) => {
        setNode(n);
        setError("");
        setMissing(false);
      },
      (e) => {
        if (e?.status === 404) setMissing(true);
        setError(errorText(e));
      },
    );
  }, [name, ...key]);

  if (missing) {
    return (
      <>
        <p class="crumbs"><a href="#/nodes">Nodes</a> /</p>
        <h1 tabIndex={-1}>Node not found</h1>
        <p>{error} <a href="#/nodes">All nodes</a></p>
      </>
    );
  }
  if (!node) {
    return (
      <>
        <p class="crumbs"><a href="#/nodes">Nodes</a> /</p>
        <h1 tabIndex={-1}>Node {name}</h1>
        {error ? <p role="alert" class="error">{error}</p> : <p aria-busy="true">Loading…</p>}
      </>
    );
  }
  const byUuid = new Map(live.gpus.map((g) => [g.uuid, g]));
  const u = usage(node, live.gpus);
  const labels = Object.entries(node.labels ?? {});
  return (
    <>
      <p class="crumbs"><a href="#/nodes">Nodes</a> /</p>
      <h1 tabIndex={-1}>Node {node.name}</h1>
      <section aria-labelledby="status-h" class="panel">
        <h2 id="status-h">Status: <StatusPill n={node} /></h2>
        {node.status_reason && <p>Reason: {node.status_reason}</p>}
        {node.updated_at && <p class="hint">Set {when(node.updated_at)}{node.updated_by ? ` by ${node.updated_by}` : ""}.</p>}
        {node.takes_sessions ? (
          <p data-testid="node-takes">Takes new sessions.</p>
        ) : (
          <p class="notice" role="status" data-testid="node-refusal">
            <strong>Creates are refused here.</strong> {node.refusal}
          </p>
        )}
        {node.drain_complete === true && <p>Drained: nothing runs here any more, so the machine may go down.</p>}
        {node.drain_complete === false && <p>Draining: {node.running_sessions} session{node.running_sessions === 1 ? "" : "s"} still run{node.running_sessions === 1 ? "s" : ""} here.</p>}
        {who.role === "admin" && <StatusForm node={node} onSet={setNode} />}
      </section>
      {error && <p role="alert" class="error">{error}</p>}

      <dl class="facts">
        <dt>Backend</dt><dd>{node.backend}</dd>
        <dt>Cluster</dt><dd>{node.cluster || "–"}</dd>
        <dt>Description</dt><dd>{node.description || "–"}</dd>
        <dt>GPUs</dt><dd>{node.gpu_count}{node.gpu_memory_mib ? ` (${Math.round(node.gpu_memory_mib / 1024)} GiB)` : ""}: {models(node)}</dd>
        <dt>Devices in use / free</dt><dd>{u ? `${u.used} / ${u.free}` : "–"}</dd>
        {labels.length > 0 && <><dt>Labels</dt><dd>{labels.map(([k, v]) => <code class="label">{k}={v}</code>)}</dd></>}
        {node.telemetry_at && <><dt>Telemetry</dt><dd>{when(node.telemetry_at)}</dd></>}
        {node.ready != null && <><dt>Ready</dt><dd>{node.ready ? "yes" : "no"}{node.cordoned ? ", cordoned" : ""}</dd></>}
      </dl>

      {node.gpus && (
        <section aria-labelledby="node-gpus-h">
          <h2 id="node-gpus-h">GPUs</h2>
          <table>
            <thead><tr><th scope="col">GPU</th><th scope="col">Model</th><th scope="col">Memory</th><th scope="col">MIG</th><th scope="col">In use / free</th></tr></thead>
            <tbody>
              {node.gpus.map((g) => {
                const live_ = byUuid.get(g.uuid);
                const one = live_ ? usage({ ...node, resources: undefined, backend: "docker" }, [live_]) : null;
                return (
                  <tr key={g.uuid}>
                    <td><a href={`#/gpus/${encodeURIComponent(g.uuid)}`}>GPU {g.index}</a></td>
                    <td>{g.model.replace(/^NVIDIA /, "")}</td>
                    <td>{Math.round(g.memory_total_mib / 1024)} GiB</td>
                    <td>{g.mig_enabled ? `on${live_ ? `, ${live_.mig_instances.length} instances` : ""}` : "off"}</td>
                    <td>{one ? `${one.used} / ${one.free}` : "–"}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </section>
      )}
      {node.resources && (
        <section aria-labelledby="node-res-h">
          <h2 id="node-res-h">GPU resources</h2>
          <table>
            <thead><tr><th scope="col">Resource</th><th scope="col">Capacity</th><th scope="col">Allocatable</th><th scope="col">In use</th><th scope="col">Free</th></tr></thead>
            <tbody>
              {node.resources.map((r) => (
                <tr key={r.resource}><td><code>{r.resource}</code></td><td>{r.capacity}</td><td>{r.allocatable}</td><td>{r.in_use}</td><td>{r.free}</td></tr>
              ))}
            </tbody>
          </table>
        </section>
      )}
      <section aria-labelledby="node-sessions-h">
        <h2 id="node-sessions-h">Sessions here</h2>
        {(node.still_running ?? []).length === 0 ? (
          <p>None.</p>
        ) : (
          <table>
            <thead><tr><th scope="col">Session</th><th scope="col">User</th><th scope="col">Status</th><th scope="col">Ends in</th></tr></thead>
            <tbody>
              {node.still_running!.map((s) => {
                const ls = live.sessions.get(s.id);
                return (
                  <tr key={s.id}>
                    <td><code>{s.id}</code></td>
                    <td>{s.user_id ?? ls?.user_id ?? "–"}</td>
                    <td>{s.status ?? ls?.status ?? "–"}</td>
                    <td>{s.expires_at ?? ls?.expires_at ? until(s.expires_at ?? ls?.expires_at) : "–"}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        )}
      </section>
    </>
  );
}

export function Nodes({ who, name }: { who: Who; name?: string }) {
  return name ? <NodeDetail name={name} who={who} /> : <NodeList who={who} />;
}
