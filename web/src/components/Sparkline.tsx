// A tiny SVG line of the last samples: cheap enough to draw 128 of them per
// sample on the overview (uPlot is kept for the real charts).
interface Props {
  values: number[];
  max: number;
  label: string;
  unit: string;
}

export function Sparkline({ values, max, label, unit }: Props) {
  const w = 120;
  const h = 28;
  const pts: string[] = [];
  const n = values.length;
  values.forEach((v, i) => {
    if (Number.isNaN(v)) return;
    const x = n <= 1 ? w : (i / (n - 1)) * w;
    const y = h - (Math.min(Math.max(v, 0), max) / max) * (h - 2) - 1;
    pts.push(`${x.toFixed(1)},${y.toFixed(1)}`);
  });
  const last = [...values].reverse().find((v) => !Number.isNaN(v));
  const text = last == null ? `${label}: no data` : `${label}: ${Math.round(last)}${unit}`;
  return (
    <span class="spark" title={text}>
      <svg viewBox={`0 0 ${w} ${h}`} preserveAspectRatio="none" role="img" aria-label={text}>
        <polyline points={pts.join(" ")} fill="none" stroke="currentColor" stroke-width="1.5" vector-effect="non-scaling-stroke" />
      </svg>
      <span class="spark-value">{last == null ? "–" : `${Math.round(last)}${unit}`}</span>
    </span>
  );
}
