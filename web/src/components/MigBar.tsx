// A GPU's MIG slots drawn to scale: each instance spans its memory slices
// (placement start and size), coloured by who holds it; free space is hatched.
import type { Gpu, Session } from "../types";
import { holderColour } from "../format";

// Memory slices of a MIG-capable GPU: 8 on A100/H100/H200, 4 on A30.
function sliceCount(g: Gpu): number {
  const end = Math.max(0, ...g.mig_instances.map((i) => (i.placement ? i.placement.start + i.placement.size : 0)));
  const fromName = /A30/.test(g.name) ? 4 : 8;
  return Math.max(end, fromName);
}

export function MigBar({ gpu, sessions }: { gpu: Gpu; sessions: Map<string, Session> }) {
  if (!gpu.mig_enabled) {
    const holder = gpu.session_id ? sessions.get(gpu.session_id)?.user_id ?? gpu.session_id : null;
    return (
      <div class="migbar" role="list" aria-label={`GPU ${gpu.index}: whole GPU`}>
        <div
          role="listitem"
          class={holder ? "slot held" : "slot free"}
          style={{ left: "0%", width: "100%", background: holder ? holderColour(holder) : undefined }}
          title={holder ? `whole GPU, held by ${holder}` : "whole GPU, free"}
        >
          {holder ?? "free"}
        </div>
      </div>
    );
  }
  const n = sliceCount(gpu);
  return (
    <div class="migbar" role="list" aria-label={`GPU ${gpu.index}: ${gpu.mig_instances.length} MIG instances`}>
      {gpu.mig_instances.length === 0 && <div class="slot empty" role="listitem" style={{ left: "0%", width: "100%" }}>no instances</div>}
      {gpu.mig_instances.map((i) => {
        const p = i.placement ?? { start: 0, size: 1 };
        const holder = i.session_id ? sessions.get(i.session_id)?.user_id ?? i.session_id : null;
        const label = `${i.profile}${holder ? `, held by ${holder}` : ", free"}`;
        return (
          <div
            key={i.uuid}
            role="listitem"
            class={holder ? "slot held" : "slot free"}
            style={{ left: `${(p.start / n) * 100}%`, width: `${(p.size / n) * 100}%`, background: holder ? holderColour(holder) : undefined }}
            title={label}
          >
            {/* A one-slice slot has room for "1g" only; the title names it in full. */}
            <span class="slot-text">{p.size >= 3 ? i.profile : i.profile.split(".")[0]}</span>
          </div>
        );
      })}
    </div>
  );
}
