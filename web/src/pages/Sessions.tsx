// Sessions: filter, create (with a picker of what fits now and its price),
// extend, delete, connection history, and the ssh command ready to copy.
import { Fragment } from "preact";
import { useEffect, useMemo, useState } from "preact/hooks";
import { api, errorText } from "../api";
import { noteSession, useLive } from "../live";
import { usd, until, when } from "../format";
import type { Available, CatalogModel, Connection, Gpu, NodeList, Session } from "../types";
import type { Who } from "../main";

interface Choice {
  value: string; // "mig:<profile>", "gpu:<product>" or "" (no GPU)
  label: string;
  fits: boolean;
}

function norm(s: string) {
  return s.toUpperCase().replace(/^NVIDIA\s+/, "").replace(/[\s_]+/g, "-");
}

// The catalog model of a GPU name as NVML reports it ("NVIDIA A100-SXM4-80GB").
function modelOf(name: string, catalog: CatalogModel[]): CatalogModel | undefined {
  const n = norm(name);
  let best: CatalogModel | undefined;
  for (const m of catalog) {
    const frags = [m.key, ...(m.match ?? [])].map(norm);
    if (frags.some((f) => n.includes(f)) && (!best || m.key.length > best.key.length)) best = m;
  }
  return best;
}

function choices(av: Available, gpus: Gpu[], catalog: CatalogModel[]): Choice[] {
  const byUuid = new Map(gpus.map((g) => [g.uuid, g]));
  const price = new Map<string, number>();
  const free = new Map<string, number>();
  const note = (profile: string, gpuName: string | undefined) => {
    const m = gpuName ? modelOf(gpuName, catalog) : undefined;
    const p = m?.profiles.find((x) => x.name === profile)?.usd_per_hour;
    if (p != null && (!price.has(profile) || p < price.get(profile)!)) price.set(profile, p);
  };
  for (const i of av.available_instances) {
    free.set(i.profile, (free.get(i.profile) ?? 0) + 1);
    note(i.profile, byUuid.get(i.parent_gpu)?.name);
  }
  const migGpus = gpus.filter((g) => g.mig_enabled);
  for (const p of Object.keys(av.creatable ?? {})) for (const g of migGpus) note(p, g.name);
  const profiles = new Set([...free.keys(), ...Object.keys(av.creatable ?? {})]);
  const out: Choice[] = [{ value: "", label: "No GPU (CPU only)", fits: true }];
  for (const p of [...profiles].sort((a, b) => parseInt(a) - parseInt(b) || a.localeCompare(b))) {
    const f = free.get(p) ?? 0;
    const c = av.creatable?.[p] ?? 0;
    const now = f > 0 ? `${f} free` : c > 0 ? `${c} can be made` : "none fits now";
    const cost = price.has(p) ? `, ${usd(price.get(p))}/h` : "";
    out.push({ value: `mig:${p}`, label: `MIG ${p} (${now}${cost})`, fits: f > 0 || c > 0 });
  }
  for (const w of av.whole_gpus ?? []) {
    const m = modelOf(w.name, catalog);
    out.push({
      value: `gpu:${w.name}`,
      label: `Whole GPU ${w.index}: ${w.name.replace(/^NVIDIA /, "")} (free${m ? `, ${usd(m.usd_per_hour)}/h` : ""})`,
      fits: true,
    });
  }
  return out;
}

function SshCommand({ s }: { s: Session }) {
  const [copied, setCopied] = useState(false);
  if (!s.ssh_command) return null;
  const cmd = s.ssh_command;
  return (
    <span class="ssh">
      <code data-testid="ssh-command">{cmd}</code>
      <button
        type="button"
        aria-label={`Copy ssh command for ${s.id}`}
        onClick={async () => {
          try {
            await navigator.clipboard.writeText(cmd);
            setCopied(true);
            setTimeout(() => setCopied(false), 1500);
          } catch {
            /* no clipboard permission: the command stays selectable */
          }
        }}
      >
        {copied ? "Copied" : "Copy"}
      </button>
    </span>
  );
}

function Connections({ id }: { id: string }) {
  const [rows, setRows] = useState<Connection[] | null>(null);
  const [error, setError] = useState("");
  useEffect(() => {
    api.get<Connection[] | { connections: Connection[] }>(`/api/v1/sessions/${encodeURIComponent(id)}/connections`).then(
      (r) => setRows(Array.isArray(r) ? r : r.connections),
      (e) => setError(errorText(e)),
    );
  }, [id]);
  if (error) return <p role="alert" class="error">{error}</p>;
  if (!rows) return <p aria-busy="true">Loading…</p>;
  if (rows.length === 0) return <p>No connection yet.</p>;
  return (
    <table class="sub">
      <caption>Connections of {id}</caption>
      <thead><tr><th scope="col">Started</th><th scope="col">Source</th><th scope="col">Outcome</th><th scope="col">Duration</th><th scope="col">Bytes in / out</th></tr></thead>
      <tbody>
        {rows.map((c) => (
          <tr key={c.id}>
            <td>{when(c.started_at)}</td>
            <td>{c.source}</td>
            <td>{c.outcome}{c.reason ? `: ${c.reason}` : ""}</td>
            <td>{c.duration_seconds == null ? "open" : `${Math.round(c.duration_seconds)} s`}</td>
            <td>{c.bytes_in} / {c.bytes_out}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function CreateForm({ onCreated }: { onCreated: (s: Session) => void }) {
  const live = useLive();
  const [av, setAv] = useState<Available | null>(null);
  const [catalog, setCatalog] = useState<CatalogModel[]>([]);
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  // Nodes out of service (maintenance, drained): said before a create is tried, not only in its refusal.
  const [closed, setClosed] = useState<{ all: boolean; names: string[] }>({ all: false, names: [] });
  const load = () => {
    api.get<Available>("/api/v1/gpus/available").then(setAv, (e) => setError(errorText(e)));
    api.get<NodeList>("/api/v1/gpu-nodes?limit=1000").then(
      (r) => {
        const names = r.nodes.filter((n) => !n.takes_sessions).map((n) => `${n.name} (${n.status})`);
        setClosed({ all: r.nodes.length > 0 && names.length === r.nodes.length, names });
      },
      () => {}, // an older daemon without nodes: nothing to say
    );
  };
  useEffect(() => {
    load();
    api.get<{ models: CatalogModel[] }>("/api/v1/cost/catalog").then((c) => setCatalog(c.models), () => {});
  }, [live.gpus, live.nodeChanges]);
  const opts = useMemo(() => (av ? choices(av, live.gpus, catalog) : []), [av, live.gpus, catalog]);

  async function submit(e: Event) {
    e.preventDefault();
    const f = new FormData(e.currentTarget as HTMLFormElement);
    const body: Record<string, unknown> = { user_id: String(f.get("user_id")).trim(), ttl_minutes: Number(f.get("ttl")) };
    const device = String(f.get("device") ?? "");
    if (device.startsWith("mig:")) body.mig_profile = device.slice(4);
    if (device.startsWith("gpu:")) body.gpu_product = device.slice(4);
    const key = String(f.get("key") ?? "").trim();
    if (key) body.ssh_public_key = key;
    const project = String(f.get("project") ?? "").trim();
    if (project) body.project = project;
    setBusy(true);
    setError("");
    try {
      const s = await api.post<Session>("/api/v1/sessions", body);
      onCreated(s);
      load();
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <form class="create" onSubmit={submit} aria-labelledby="create-h">
      <h2 id="create-h">New session</h2>
      {closed.names.length > 0 && (
        <p class="notice" data-testid="create-closed">
          {closed.all ? "Creates are refused now: " : "Not taking sessions: "}
          <a href="#/nodes">{closed.names.join(", ")}</a>.
        </p>
      )}
      <div class="fields">
        <label>User <input name="user_id" required pattern="[a-z_][a-z0-9_\-]*" autocomplete="off" /></label>
        <label>
          Device
          <select name="device" data-testid="profile-picker">
            {opts.map((o) => (
              <option value={o.value} disabled={!o.fits}>{o.label}</option>
            ))}
          </select>
        </label>
        <label>Time to live (minutes) <input name="ttl" type="number" min={1} max={10080} value={60} required /></label>
        <label>Project <input name="project" autocomplete="off" placeholder="the user's first" /></label>
        <label class="wide">
          SSH public key <textarea name="key" rows={2} placeholder="ssh-ed25519 AAAA… (empty: a key pair is made and its private key shown once)" />
        </label>
      </div>
      <button type="submit" disabled={busy}>Create session</button>
      {error && <p role="alert" class="error">{error}</p>}
    </form>
  );
}

export function Sessions({ who }: { who: Who }) {
  const live = useLive();
  const [status, setStatus] = useState("active");
  const [user, setUser] = useState("");
  const [list, setList] = useState<Session[]>([]);
  const [error, setError] = useState("");
  const [created, setCreated] = useState<Session | null>(null);
  const [open, setOpen] = useState<string | null>(null);
  const admin = who.role === "admin";
  // The private key (shown once) as a download, revoked when it is replaced.
  const keyUrl = useMemo(
    () => (created?.ssh_private_key ? URL.createObjectURL(new Blob([created.ssh_private_key], { type: "text/plain" })) : ""),
    [created],
  );
  useEffect(() => () => keyUrl && URL.revokeObjectURL(keyUrl), [keyUrl]);

  useEffect(() => {
    const q = new URLSearchParams({ limit: "200" });
    if (status) q.set("status", status);
    if (user.trim()) q.set("user_id", user.trim());
    api.get<Session[]>(`/api/v1/sessions?${q}`).then(
      (r) => {
        setList(r);
        setError("");
      },
      (e) => setError(errorText(e)),
    );
    // The live set changes (stream): the listing follows it.
  }, [status, user, live.sessions.size, [...live.sessions.values()].map((s) => s.status + s.expires_at).join()]);

  async function extend(s: Session) {
    try {
      // The API sets the time left from now: an hour more than what is left.
      const left = s.expires_at ? Math.max(0, Math.ceil((new Date(s.expires_at).getTime() - Date.now()) / 60000)) : 0;
      const r = await api.patch<Session>(`/api/v1/sessions/${encodeURIComponent(s.id)}`, { ttl_minutes: left + 60 });
      noteSession(r);
    } catch (e) {
      setError(errorText(e));
    }
  }
  async function remove(s: Session) {
    if (!confirm(`Delete session ${s.id} of ${s.user_id}? Its container stops; the workspace stays.`)) return;
    try {
      await api.del(`/api/v1/sessions/${encodeURIComponent(s.id)}`);
      noteSession(s, true);
      setList((l) => l.filter((x) => x.id !== s.id));
      if (created?.id === s.id) setCreated(null);
    } catch (e) {
      setError(errorText(e));
    }
  }

  return (
    <>
      <h1 tabIndex={-1}>Sessions</h1>
      {admin && (
        <CreateForm
          onCreated={(s) => {
            setCreated(s);
            noteSession(s);
          }}
        />
      )}
      {created && (
        <section class="created" aria-labelledby="created-h" role="status">
          <h2 id="created-h">Session {created.id} is {created.status}</h2>
          <p>Log in with:</p>
          <SshCommand s={created} />
          {created.ssh_private_key && (
            <p>
              Its private key is shown this once:{" "}
              <a download={`${created.id}.key`} href={keyUrl}>
                download the key
              </a>{" "}
              and use <code>ssh -i {created.id}.key …</code>.
            </p>
          )}
        </section>
      )}
      <section aria-labelledby="list-h">
        <h2 id="list-h">All sessions</h2>
        <div class="filters" role="search">
          <label>
            Status
            <select value={status} onChange={(e) => setStatus((e.target as HTMLSelectElement).value)}>
              <option value="active">active</option>
              <option value="running">running</option>
              <option value="ended">ended</option>
              <option value="failed">failed</option>
              <option value="">any</option>
            </select>
          </label>
          <label>
            User <input value={user} onInput={(e) => setUser((e.target as HTMLInputElement).value)} autocomplete="off" />
          </label>
        </div>
        {error && <p role="alert" class="error">{error}</p>}
        <table class="sessions">
          <thead>
            <tr><th scope="col">Session</th><th scope="col">User</th><th scope="col">Device</th><th scope="col">Status</th><th scope="col">Ends in</th><th scope="col">SSH</th><th scope="col"><span class="sr">Actions</span></th></tr>
          </thead>
          <tbody>
            {list.map((s) => (
              <Fragment key={s.id}>
                <tr data-session={s.id}>
                  <td><code>{s.id}</code></td>
                  <td>{s.user_id}</td>
                  <td>{s.mig_profile ?? (s.gpu_index != null ? `GPU ${s.gpu_index}` : "CPU")}</td>
                  <td>{s.status}</td>
                  <td>{s.ended_at ? `ended ${when(s.ended_at)}` : until(s.expires_at)}</td>
                  <td><SshCommand s={s} /></td>
                  <td class="actions">
                    <button type="button" aria-expanded={open === s.id} onClick={() => setOpen(open === s.id ? null : s.id)}>Connections</button>
                    {admin && !s.ended_at && <button type="button" onClick={() => extend(s)} aria-label={`Extend ${s.id} by an hour`}>+1 h</button>}
                    {admin && !s.ended_at && <button type="button" class="danger" onClick={() => remove(s)} aria-label={`Delete ${s.id}`}>Delete</button>}
                  </td>
                </tr>
                {open === s.id && (
                  <tr><td colSpan={7}><Connections id={s.id} /></td></tr>
                )}
              </Fragment>
            ))}
          </tbody>
        </table>
        {list.length === 0 && !error && <p>No session matches.</p>}
      </section>
    </>
  );
}
