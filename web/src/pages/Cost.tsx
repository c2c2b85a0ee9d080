// Cost: spend grouped by user, team, project, model, profile or session over
// a range, as a chart and a table; budgets with their use and forecast.
import { useEffect, useMemo, useState } from "preact/hooks";
import { api, errorText } from "../api";
import { noteBudgets, useLive } from "../live";
import { Chart } from "../components/LazyChart";
import { holderColour, usd } from "../format";
import type { CostReport } from "../types";
import type { Who } from "../main";

const GROUPS = ["team", "user", "project", "gpu_model", "profile", "session"];
const STD = new Set(["bucket_start", "cost_usd", "idle_cost_usd", "held_hours", "idle_hours"]);
const keyOf = (r: Record<string, unknown>) => String(Object.entries(r).find(([k]) => !STD.has(k))?.[1] ?? "–");

export function Cost({ who }: { who: Who }) {
  const live = useLive();
  const [group, setGroup] = useState("team");
  const [step, setStep] = useState("day");
  const [days, setDays] = useState(30);
  const [report, setReport] = useState<CostReport | null>(null);
  const [error, setError] = useState("");
  const [budgetError, setBudgetError] = useState("");

  useEffect(() => {
    const from = new Date(Date.now() - days * 86400000).toISOString();
    api.get<CostReport>(`/api/v1/cost?group_by=${group}&step=${step}&from=${encodeURIComponent(from)}`).then(
      (r) => {
        setReport(r);
        setError("");
      },
      (e) => setError(errorText(e)),
    );
  }, [group, step, days, live.monthToDateUsd]);

  const chart = useMemo(() => {
    if (!report) return null;
    const buckets = [...new Set(report.rows.map((r) => String(r.bucket_start)))].sort();
    const keys = [...new Set(report.rows.map(keyOf))];
    const times = buckets.map((b) => new Date(b).getTime() / 1000);
    const series = keys.map((k) => ({
      label: k,
      colour: holderColour(k),
      values: buckets.map((b) => {
        const row = report.rows.find((r) => String(r.bucket_start) === b && keyOf(r) === k);
        return row ? Number(row.cost_usd) : 0;
      }),
    }));
    return { times, series };
  }, [report]);

  async function addBudget(e: Event) {
    e.preventDefault();
    const form = e.currentTarget as HTMLFormElement;
    const f = new FormData(form);
    try {
      await api.post("/api/v1/budgets", { scope: f.get("scope"), name: String(f.get("name")).trim(), usd_per_month: Number(f.get("usd")) });
      form.reset();
      setBudgetError("");
      const b = await api.get<{ budgets: typeof live.budgets }>("/api/v1/budgets");
      noteBudgets(b.budgets);
    } catch (err) {
      setBudgetError(errorText(err));
    }
  }

  return (
    <>
      <h1 tabIndex={-1}>Cost</h1>
      <div class="filters">
        <label>
          Group by
          <select value={group} onChange={(e) => setGroup((e.target as HTMLSelectElement).value)}>
            {GROUPS.map((g) => <option value={g}>{g.replace("_", " ")}</option>)}
          </select>
        </label>
        <label>
          Step
          <select value={step} onChange={(e) => setStep((e.target as HTMLSelectElement).value)}>
            <option value="day">day</option><option value="week">week</option><option value="month">month</option>
          </select>
        </label>
        <label>
          Last
          <select value={days} onChange={(e) => setDays(Number((e.target as HTMLSelectElement).value))}>
            <option value={7}>7 days</option><option value={30}>30 days</option><option value={90}>90 days</option><option value={365}>a year</option>
          </select>
        </label>
      </div>
      {error && <p role="alert" class="error">{error}</p>}
      {report && (
        <>
          <p class="tiles-inline">
            Total <strong>{usd(report.total_usd)}</strong>, of which idle <strong>{usd(report.idle_total_usd)}</strong>
          </p>
          {chart && chart.times.length > 0 ? (
            <Chart title={`Cost per ${step} by ${group.replace("_", " ")} (USD)`} times={chart.times} series={chart.series} unit="$" />
          ) : (
            <p>No cost in this range.</p>
          )}
          {report.totals.length > 0 && (
            <table>
              <thead><tr><th scope="col">{group.replace("_", " ")}</th><th scope="col">Cost</th><th scope="col">Idle cost</th><th scope="col">Held hours</th></tr></thead>
              <tbody>
                {report.totals.map((t) => (
                  <tr><td>{keyOf(t)}</td><td>{usd(Number(t.cost_usd))}</td><td>{usd(Number(t.idle_cost_usd))}</td><td>{Number(t.held_hours).toFixed(2)}</td></tr>
                ))}
              </tbody>
            </table>
          )}
        </>
      )}
      <section aria-labelledby="budgets-h">
        <h2 id="budgets-h">Budgets this month</h2>
        {live.budgets.length === 0 ? (
          <p>No budget set.</p>
        ) : (
          <table>
            <thead><tr><th scope="col">Budget</th><th scope="col">Per month</th><th scope="col">Used</th><th scope="col">Forecast</th></tr></thead>
            <tbody>
              {live.budgets.map((b) => (
                <tr key={b.id}>
                  <td>{b.budget}</td>
                  <td>{usd(b.usd_per_month)}</td>
                  <td>
                    <meter min={0} max={1} value={Math.min(b.used_ratio, 1)} high={0.8} optimum={0} aria-label={`${b.budget} used`} /> {usd(b.used_usd)} ({Math.round(b.used_ratio * 100)} %)
                  </td>
                  <td class={b.forecast_ratio > 1 ? "over" : ""}>{usd(b.forecast_usd)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        {who.role === "admin" && (
          <form class="inline-form" onSubmit={addBudget} aria-label="Set a budget">
            <label>Scope <select name="scope"><option>team</option><option>project</option><option>user</option></select></label>
            <label>Name <input name="name" required autocomplete="off" /></label>
            <label>USD per month <input name="usd" type="number" min={0} step="0.01" required /></label>
            <button type="submit">Set budget</button>
            {budgetError && <p role="alert" class="error">{budgetError}</p>}
          </form>
        )}
      </section>
    </>
  );
}
