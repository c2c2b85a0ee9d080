// Alerts: what fires or waits (live), acknowledged with one button; resolved
// ones on request.
import { useEffect, useState } from "preact/hooks";
import { api, errorText } from "../api";
import { noteAlert, useLive } from "../live";
import { when } from "../format";
import type { Alert } from "../types";
import type { Who } from "../main";

export function Alerts({ who }: { who: Who }) {
  const live = useLive();
  const [state, setState] = useState("active");
  const [past, setPast] = useState<Alert[]>([]);
  const [error, setError] = useState("");
  useEffect(() => {
    if (state === "active") return;
    api.get<{ alerts: Alert[] }>(`/api/v1/alerts?state=${state}`).then((r) => setPast(r.alerts), (e) => setError(errorText(e)));
  }, [state]);
  const rows = state === "active" ? [...live.alerts.values()].sort((a, b) => b.id - a.id) : past;

  async function ack(a: Alert) {
    try {
      const r = await api.post<Alert | { alert: Alert }>(`/api/v1/alerts/${a.id}/ack`);
      noteAlert(r && "alert" in r ? r.alert : { ...a, ...(r as Alert), acked_at: (r as Alert)?.acked_at ?? new Date().toISOString() });
    } catch (e) {
      setError(errorText(e));
    }
  }
  return (
    <>
      <h1 tabIndex={-1}>Alerts</h1>
      <div class="filters">
        <label>
          Show
          <select value={state} onChange={(e) => setState((e.target as HTMLSelectElement).value)}>
            <option value="active">active (live)</option>
            <option value="resolved">resolved</option>
            <option value="all">all</option>
          </select>
        </label>
      </div>
      {error && <p role="alert" class="error">{error}</p>}
      {rows.length === 0 ? (
        <p>No alert.</p>
      ) : (
        <table class="alerts" aria-live="polite">
          <thead><tr><th scope="col">State</th><th scope="col">Severity</th><th scope="col">Rule</th><th scope="col">Summary</th><th scope="col">Since</th><th scope="col">Acknowledged</th></tr></thead>
          <tbody>
            {rows.map((a) => (
              <tr key={a.id} data-alert={a.rule} class={`sev-${a.severity}`}>
                <td>{a.state}</td>
                <td>{a.severity}</td>
                <td>{a.rule}</td>
                <td>{a.summary}</td>
                <td>{when(a.fired_at ?? a.pending_at)}</td>
                <td>
                  {a.acked_at ? `${a.acked_by ?? "yes"}, ${when(a.acked_at)}` : who.role === "admin" && a.state !== "resolved" ? (
                    <button type="button" onClick={() => ack(a)} aria-label={`Acknowledge ${a.rule} ${a.id}`}>Acknowledge</button>
                  ) : "no"}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}
