// Number, time and colour formatting shared by the pages.

// Cents, but a few seconds of a slice (a fraction of a cent) still shows as spent.
export const usd = (v: number | null | undefined) =>
  v == null || Number.isNaN(v)
    ? "–"
    : v !== 0 && Math.abs(v) < 0.01
      ? v.toLocaleString("en-US", { style: "currency", currency: "USD", maximumSignificantDigits: 2 })
      : v.toLocaleString("en-US", { style: "currency", currency: "USD" });

export const pct = (v: number | null | undefined) => (v == null || Number.isNaN(v) ? "–" : `${Math.round(v)} %`);

export const celsius = (v: number | null | undefined) => (v == null || Number.isNaN(v) ? "–" : `${Math.round(v)} °C`);

export function when(iso: string | null | undefined): string {
  if (!iso) return "–";
  const d = new Date(iso);
  return d.toLocaleString(undefined, { dateStyle: "short", timeStyle: "medium" });
}

export function until(iso: string | null | undefined): string {
  if (!iso) return "never";
  const s = Math.round((new Date(iso).getTime() - Date.now()) / 1000);
  if (s <= 0) return "now";
  if (s < 3600) return `${Math.ceil(s / 60)} min`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}

// A stable colour per holder, so one user's slices look alike on every GPU.
export function holderColour(holder: string): string {
  let h = 2166136261;
  for (let i = 0; i < holder.length; i++) h = Math.imul(h ^ holder.charCodeAt(i), 16777619);
  return `hsl(${(h >>> 0) % 360} 65% 45%)`;
}
