// Overview: every GPU with its MIG slots to scale, live utilisation and
// temperature, the running sessions, firing alerts and this month's spend.
import { useEffect } from "preact/hooks";
import { useLive } from "../live";
import { MigBar } from "../components/MigBar";
import { Sparkline } from "../components/Sparkline";
import { celsius, holderColour, usd, until } from "../format";

let marked = false;

export function Overview() {
  const live = useLive();
  // The first render with data, for the render-time figure (performance API).
  useEffect(() => {
    if (live.loaded && !marked) {
      marked = true;
      performance.mark("sandman:overview-rendered");
    }
  });
  const sessions = [...live.sessions.values()].filter((s) => !s.ended_at);
  const firing = [...live.alerts.values()].filter((a) => a.state === "firing");
  const budget = live.budgets.reduce((a, b) => a + b.usd_per_month, 0);
  const holders = new Set(sessions.map((s) => s.user_id));
  const slices = live.gpus.reduce((a, g) => a + (g.mig_enabled ? g.mig_instances.length : 1), 0);
  const held = live.gpus.reduce(
    (a, g) => a + (g.mig_enabled ? g.mig_instances.filter((i) => i.session_id).length : g.session_id ? 1 : 0),
    0,
  );
  return (
    <>
      <h1 tabIndex={-1}>Overview</h1>
      <section class="tiles" aria-label="Summary">
        <div class="tile"><span class="tile-label">GPUs</span><span class="tile-value">{live.gpus.length}</span></div>
        <div class="tile"><span class="tile-label">Slices held</span><span class="tile-value">{held} / {slices}</span></div>
        <div class="tile"><span class="tile-label">Sessions</span><span class="tile-value">{sessions.length}</span></div>
        <div class={firing.length ? "tile tile-alert" : "tile"}>
          <span class="tile-label">Alerts firing</span><span class="tile-value">{firing.length}</span>
        </div>
        <div class="tile">
          <span class="tile-label">Spend this month</span>
          <span class="tile-value">{usd(live.monthToDateUsd)}</span>
          {budget > 0 && (
            <>
              <meter min={0} max={budget} value={live.monthToDateUsd ?? 0} high={budget * 0.8} optimum={0} aria-label="Spend against budget" />
              <span class="tile-sub">of {usd(budget)} budgeted</span>
            </>
          )}
        </div>
      </section>

      <section aria-labelledby="gpus-h">
        <h2 id="gpus-h">GPUs</h2>
        {!live.loaded && <p aria-busy="true">Loading…</p>}
        {live.loaded && live.gpus.length === 0 && <p>No GPUs: the daemon runs CPU-only.</p>}
        <ul class="gpu-grid">
          {live.gpus.map((g) => {
            const h = live.history.get(g.uuid) ?? { util: [], temp: [] };
            const rt = live.realtime.get(g.uuid);
            return (
              <li class="gpu-card" key={g.uuid}>
                <a class="gpu-name" href={`#/gpus/${encodeURIComponent(g.uuid)}`}>
                  GPU {g.index} · {g.name.replace(/^NVIDIA /, "")}
                </a>
                <MigBar gpu={g} sessions={live.sessions} />
                <div class="gpu-sparks">
                  <Sparkline values={h.util} max={100} label="utilisation" unit="%" />
                  <Sparkline values={h.temp} max={100} label="temperature" unit="°C" />
                </div>
                <span class="gpu-temp">{celsius(rt?.temperature_c ?? g.temperature)}</span>
              </li>
            );
          })}
        </ul>
      </section>

      <div class="two-col">
        <section aria-labelledby="sess-h">
          <h2 id="sess-h">Sessions</h2>
          {sessions.length === 0 ? (
            <p>No session runs.</p>
          ) : (
            <table>
              <thead><tr><th scope="col">User</th><th scope="col">Device</th><th scope="col">Status</th><th scope="col">Ends in</th></tr></thead>
              <tbody>
                {sessions.slice(0, 20).map((s) => (
                  <tr key={s.id}>
                    <td><span class="dot" style={{ background: holderColour(s.user_id) }} />{s.user_id}</td>
                    <td>{s.mig_profile ?? (s.gpu_index != null ? `GPU ${s.gpu_index}` : "CPU")}</td>
                    <td>{s.status}</td>
                    <td>{until(s.expires_at)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          {holders.size > 0 && <p class="hint">{holders.size} user(s) hold devices; colours match the slots above.</p>}
        </section>
        <section aria-labelledby="alerts-h">
          <h2 id="alerts-h">Firing alerts</h2>
          {firing.length === 0 ? (
            <p>Nothing fires.</p>
          ) : (
            <ul class="alert-list" aria-live="polite">
              {firing.map((a) => (
                <li key={a.id} class={`sev-${a.severity}`}>
                  <strong>{a.rule}</strong> {a.summary}
                </li>
              ))}
            </ul>
          )}
        </section>
      </div>
    </>
  );
}
