// The dashboard's live state: loaded once, then kept current by the daemon's
// event stream (GET /api/v1/events/stream), never by polling. Pages read it
// through useLive() and re-render when it changes.
import { useEffect, useState } from "preact/hooks";
import { api } from "./api";
import type { Alert, Budget, DeviceSample, Gpu, Realtime, Session } from "./types";

// How many samples each sparkline keeps (one per telemetry sample).
export const SPARK_POINTS = 60;

export interface History {
  util: number[];
  temp: number[];
}

export interface LiveState {
  loaded: boolean;
  gpus: Gpu[];
  realtime: Map<string, DeviceSample>; // by device uuid (GPU or MIG)
  history: Map<string, History>; // by GPU uuid
  sessions: Map<string, Session>;
  alerts: Map<number, Alert>;
  budgets: Budget[];
  monthToDateUsd: number | null;
  nodeChanges: number; // counts node events: the node views refetch when it moves
  stream: "connecting" | "live" | "reconnecting" | "unavailable";
  error: string;
}

const state: LiveState = {
  loaded: false,
  gpus: [],
  realtime: new Map(),
  history: new Map(),
  sessions: new Map(),
  alerts: new Map(),
  budgets: [],
  monthToDateUsd: null,
  nodeChanges: 0,
  stream: "connecting",
  error: "",
};

let version = 0;
const listeners = new Set<(v: number) => void>();
let scheduled = false;
// Many events can arrive in one frame (a sample per GPU); render once per frame.
function changed() {
  version++;
  if (scheduled) return;
  scheduled = true;
  requestAnimationFrame(() => {
    scheduled = false;
    for (const l of listeners) l(version);
  });
}

export function useLive(): LiveState {
  const [, setV] = useState(version);
  useEffect(() => {
    listeners.add(setV);
    return () => void listeners.delete(setV);
  }, []);
  return state;
}

export function liveState(): LiveState {
  return state;
}

function monthStart(): string {
  const d = new Date();
  return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1)).toISOString();
}

function applySample(rt: Realtime) {
  for (const d of [...rt.gpus, ...rt.instances]) state.realtime.set(d.uuid, d);
  for (const g of rt.gpus) {
    let h = state.history.get(g.uuid);
    if (!h) state.history.set(g.uuid, (h = { util: [], temp: [] }));
    h.util.push(g.utilization_pct ?? averageInstanceUtil(rt, g.uuid));
    h.temp.push(g.temperature_c ?? NaN);
    if (h.util.length > SPARK_POINTS) h.util.shift();
    if (h.temp.length > SPARK_POINTS) h.temp.shift();
  }
}

// A MIG-mode GPU reports no utilisation of its own: show the mean of its slices.
function averageInstanceUtil(rt: Realtime, gpu: string): number {
  const v = rt.instances.filter((i) => i.gpu_uuid === gpu && i.utilization_pct != null);
  return v.length ? v.reduce((a, i) => a + (i.utilization_pct ?? 0), 0) / v.length : NaN;
}

async function refreshGpus() {
  const r = await api.get<{ gpus: Gpu[] }>("/api/v1/gpus");
  state.gpus = r.gpus;
}

// Events that arrive while loadAll() reads the lists: applied on top of what
// it read once it is done, so an event that raced the load is not overwritten.
let held: (() => void)[] | null = null;

// Everything the stream then keeps current; also run after an `event: reset`.
export async function loadAll() {
  held = held ?? [];
  try {
    const [gpus, rt, sessions, alerts, budgets, cost] = await Promise.all([
      api.get<{ gpus: Gpu[] }>("/api/v1/gpus"),
      api.get<Realtime>("/api/v1/metrics/realtime"),
      api.get<Session[]>("/api/v1/sessions?status=active&limit=1000"),
      api.get<{ alerts: Alert[] }>("/api/v1/alerts"),
      api.get<{ budgets: Budget[] }>("/api/v1/budgets"),
      api.get<{ total_usd: number }>(`/api/v1/cost?from=${encodeURIComponent(monthStart())}&group_by=team`),
    ]);
    state.gpus = gpus.gpus;
    applySample(rt);
    state.sessions = new Map(sessions.map((s) => [s.id, s]));
    state.alerts = new Map(alerts.alerts.map((a) => [a.id, a]));
    state.budgets = budgets.budgets;
    state.monthToDateUsd = cost.total_usd;
    state.error = "";
  } catch (e) {
    state.error = e instanceof Error ? e.message : String(e);
  }
  state.loaded = true;
  const replay = held;
  held = null;
  for (const f of replay) f();
  changed();
}

let source: EventSource | null = null;
let lastEventId = "";
let retryTimer: number | undefined;

export function startStream(available: boolean) {
  if (!available) {
    state.stream = "unavailable";
    changed();
    return;
  }
  if (source) return;
  // EventSource resends Last-Event-ID itself when it reconnects; a stream it
  // gave up on (an answer other than 200) is opened anew here, resuming by the
  // query parameter. It cookie-authenticates like any GET.
  source = new EventSource(
    lastEventId ? `/api/v1/events/stream?last_event_id=${encodeURIComponent(lastEventId)}` : "/api/v1/events/stream",
  );
  source.onopen = () => {
    state.stream = "live";
    changed();
  };
  source.onerror = () => {
    state.stream = "reconnecting";
    changed();
    if (source?.readyState !== EventSource.CLOSED) return;
    source = null;
    clearTimeout(retryTimer);
    // A lapsed login shows as a 401 here (api's handler shows the login page then).
    retryTimer = window.setTimeout(() => {
      api.get("/api/v1/whoami").then(() => startStream(true), () => {});
    }, 5000);
  };
  const on = (type: string, f: (d: any) => void) =>
    source!.addEventListener(type, (ev) => {
      if ((ev as MessageEvent).lastEventId) lastEventId = (ev as MessageEvent).lastEventId;
      let d: unknown;
      try {
        d = JSON.parse((ev as MessageEvent).data);
      } catch (e) {
        console.warn(`bad ${type} event`, e);
        return;
      }
      if (held) held.push(() => f(d));
      else f(d);
      changed();
    });
  on("session", (d) => {
    const s = d.session as Session;
    if (d.action === "deleted" || d.action === "ended" || s.ended_at) state.sessions.delete(s.id);
    else state.sessions.set(s.id, s);
    // A session takes or frees a slice: the inventory's holders change with it.
    void refreshGpus().then(changed, () => {});
  });
  on("gpu", (d) => applySample({ gpus: d.gpus ?? [], instances: d.instances ?? [] }));
  on("alert", (d) => {
    const a = d.alert as Alert;
    if (d.action === "resolved") state.alerts.delete(a.id);
    else state.alerts.set(a.id, a);
  });
  on("cost", (d) => {
    if (typeof d.month_to_date_usd === "number") state.monthToDateUsd = d.month_to_date_usd;
    if (Array.isArray(d.budgets)) state.budgets = d.budgets;
  });
  on("node", () => {
    state.nodeChanges++;
  });
  source.addEventListener("reset", (ev) => {
    if ((ev as MessageEvent).lastEventId) lastEventId = (ev as MessageEvent).lastEventId;
    void loadAll();
  });
}

export function stopStream() {
  clearTimeout(retryTimer);
  source?.close();
  source = null;
  lastEventId = "";
}

// Other pages tell the state about their own writes at once (the stream confirms).
export function noteSession(s: Session, gone = false) {
  if (gone) state.sessions.delete(s.id);
  else state.sessions.set(s.id, s);
  changed();
}

export function noteBudgets(b: Budget[]) {
  state.budgets = b;
  changed();
}

export function noteAlert(a: Alert) {
  state.alerts.set(a.id, a);
  changed();
}
