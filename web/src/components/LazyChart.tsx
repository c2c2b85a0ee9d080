// The chart library (uPlot, the largest part of the bundle) is fetched when a
// page first draws a chart, so the overview's first load does not carry it.
import { useEffect, useState } from "preact/hooks";
import type { ComponentProps, FunctionComponent } from "preact";
import type { Chart as ChartType } from "./Chart";

type Props = ComponentProps<typeof ChartType>;
let loaded: FunctionComponent<Props> | null = null;

export function Chart(props: Props) {
  // A lazy initialiser: useState(fn) would call the component itself.
  const [C, setC] = useState<FunctionComponent<Props> | null>(() => loaded);
  useEffect(() => {
    if (C) return;
    import("./Chart").then((m) => {
      loaded = m.Chart;
      setC(() => m.Chart);
    });
  }, []);
  return C ? <C {...props} /> : <figure class="chart chart-loading" aria-label={props.title} aria-busy="true" />;
}
