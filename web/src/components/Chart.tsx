// A uPlot time-series chart that follows its container's width; `onSelect`
// gets the time range the user drags across (range selection).
import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";

interface Series {
  label: string;
  values: (number | null)[];
  colour: string;
}

interface Props {
  title: string;
  times: number[]; // unix seconds
  series: Series[];
  unit: string;
  onSelect?: (from: number, to: number) => void;
}

export function Chart({ title, times, series, unit, onSelect }: Props) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  useEffect(() => {
    if (!box.current) return;
    const opts: uPlot.Options = {
      title,
      width: Math.max(200, (box.current.clientWidth || 600) - 12),
      height: 220,
      series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.colour, width: 1.5, value: (_u: uPlot, v: number | null) => (v == null ? "–" : `${v.toFixed(1)} ${unit}`) }))],
      axes: [{ stroke: "currentColor" }, { stroke: "currentColor", values: (_u, vals) => vals.map((v) => `${v}${unit === "%" ? "%" : ""}`) }],
      cursor: { drag: { x: true, y: false } },
      // One point alone would stretch the axis over years: give it a day either side.
      scales: { x: { time: true, range: (_u, min, max) => (min === max ? [min - 86400, max + 86400] : [min, max]) } },
      hooks: {
        setSelect: [
          (u) => {
            if (!onSelect || u.select.width < 2) return;
            const from = u.posToVal(u.select.left, "x");
            const to = u.posToVal(u.select.left + u.select.width, "x");
            onSelect(from, to);
          },
        ],
      },
    };
    plot.current = new uPlot(opts, [times, ...series.map((s) => s.values)] as uPlot.AlignedData, box.current);
    const ro = new ResizeObserver(() => plot.current?.setSize({ width: Math.max(200, box.current!.clientWidth - 12), height: 220 }));
    ro.observe(box.current);
    return () => {
      ro.disconnect();
      plot.current?.destroy();
      plot.current = null;
    };
  }, [times, series, title, unit]);
  return <figure class="chart" ref={box} aria-label={title} />;
}
