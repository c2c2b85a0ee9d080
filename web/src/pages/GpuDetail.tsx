// GPU detail: history charts (utilisation, temperature, power, memory) over a
// chosen range (buttons, or drag across a chart to zoom), and its MIG
// instances with their holders.
import { useEffect, useMemo, useState } from "preact/hooks";
import { api, errorText } from "../api";
import { useLive } from "../live";
import { Chart } from "../components/LazyChart";
import { MigBar } from "../components/MigBar";
import { celsius, holderColour, pct } from "../format";
import type { Who } from "../main";

interface Stat {
  min: number | null;
  avg: number | null;
  max: number | null;
}
interface Point {
  t: string;
  utilization_pct: Stat;
  temperature_c: Stat;
  power_w: Stat;
  memory_used_mib: Stat;
}

const RANGES: [string, number][] = [
  ["15 min", 15 * 60],
  ["1 h", 3600],
  ["6 h", 6 * 3600],
  ["24 h", 24 * 3600],
  ["7 days", 7 * 86400],
];

export function GpuDetail({ uuid }: { uuid: string; who: Who }) {
  const live = useLive();
  const gpu = live.gpus.find((g) => g.uuid === uuid);
  const [range, setRange] = useState<{ from: number; to: number } | null>(null);
  const [span, setSpan] = useState(3600);
  const [points, setPoints] = useState<Point[]>([]);
  const [error, setError] = useState("");

  useEffect(() => {
    const to = range ? range.to * 1000 : Date.now();
    const from = range ? range.from * 1000 : to - span * 1000;
    const q = new URLSearchParams({ from: new Date(from).toISOString(), to: new Date(to).toISOString() });
    api.get<{ points: Point[] }>(`/api/v1/gpus/${encodeURIComponent(uuid)}/metrics?${q}`).then(
      (r) => {
        setPoints(r.points);
        setError("");
      },
      (e) => setError(errorText(e)),
    );
  }, [uuid, span, range]);

  const data = useMemo(() => {
    const times = points.map((p) => new Date(p.t).getTime() / 1000);
    const s = (f: (p: Point) => Stat, colour: string) => [
      { label: "avg", values: points.map((p) => f(p).avg), colour },
      { label: "max", values: points.map((p) => f(p).max), colour: "#999" },
    ];
    return {
      times,
      util: s((p) => p.utilization_pct, "#3b5bdb"),
      temp: s((p) => p.temperature_c, "#e8590c"),
      power: s((p) => p.power_w, "#2b8a3e"),
      mem: s((p) => p.memory_used_mib, "#862e9c"),
    };
  }, [points]);
  const select = (from: number, to: number) => setRange({ from, to });

  if (!gpu && live.loaded) {
    return (
      <>
        <h1 tabIndex={-1}>GPU not found</h1>
        <p>No GPU {uuid} on this daemon. <a href="#/">Back to the overview</a></p>
      </>
    );
  }
  const rt = live.realtime.get(uuid);
  return (
    <>
      <h1 tabIndex={-1}>GPU {gpu?.index} · {gpu?.name.replace(/^NVIDIA /, "")}</h1>
      <p class="hint"><code>{uuid}</code> · {celsius(rt?.temperature_c)} · utilisation {pct(rt?.utilization_pct)} · {rt?.power_w != null ? `${Math.round(rt.power_w)} W` : "–"}</p>
      <div class="range" role="group" aria-label="Time range">
        {RANGES.map(([label, secs]) => (
          <button type="button" aria-pressed={!range && span === secs} onClick={() => { setRange(null); setSpan(secs); }}>
            {label}
          </button>
        ))}
        {range && <span class="hint">Zoomed: {new Date(range.from * 1000).toLocaleTimeString()} – {new Date(range.to * 1000).toLocaleTimeString()} <button type="button" onClick={() => setRange(null)}>Reset</button></span>}
        <span class="hint">Drag across a chart to zoom in.</span>
      </div>
      {error && <p role="alert" class="error">{error}</p>}
      <div class="charts">
        <Chart title="Utilisation (%)" times={data.times} series={data.util} unit="%" onSelect={select} />
        <Chart title="Temperature (°C)" times={data.times} series={data.temp} unit="°C" onSelect={select} />
        <Chart title="Power (W)" times={data.times} series={data.power} unit="W" onSelect={select} />
        <Chart title="Memory used (MiB)" times={data.times} series={data.mem} unit="MiB" onSelect={select} />
      </div>
      {gpu && (
        <section aria-labelledby="inst-h">
          <h2 id="inst-h">{gpu.mig_enabled ? "MIG instances" : "Holder"}</h2>
          <MigBar gpu={gpu} sessions={live.sessions} />
          {gpu.mig_enabled && (
            <table>
              <thead><tr><th scope="col">Instance</th><th scope="col">Profile</th><th scope="col">Slices</th><th scope="col">Holder</th><th scope="col">Utilisation</th></tr></thead>
              <tbody>
                {gpu.mig_instances.map((i) => {
                  const s = i.session_id ? live.sessions.get(i.session_id) : undefined;
                  const holder = s?.user_id ?? i.session_id;
                  return (
                    <tr key={i.uuid}>
                      <td><code>{i.uuid}</code></td>
                      <td>{i.profile}</td>
                      <td>{i.placement ? `${i.placement.start}–${i.placement.start + i.placement.size - 1}` : "–"}</td>
                      <td>{holder ? <><span class="dot" style={{ background: holderColour(holder) }} />{holder} <code>{i.session_id}</code></> : "free"}</td>
                      <td>{pct(live.realtime.get(i.uuid)?.utilization_pct)}</td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          )}
        </section>
      )}
    </>
  );
}
