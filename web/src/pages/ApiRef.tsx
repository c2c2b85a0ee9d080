// API reference: the daemon's own OpenAPI 3.1 description (GET /openapi.json)
// made readable: operations by tag, each with its role, parameters, request
// body and responses, `$ref`s resolved to the components they name.
import { useEffect, useMemo, useState } from "preact/hooks";
import type { ComponentChildren } from "preact";
import { api, ApiError, errorText } from "../api";
import type { Who } from "../main";

type Json = any;

interface Operation {
  method: string;
  path: string;
  op: Json;
  tag: string;
  key: string; // "GET /api/v1/sessions"
}

const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];
const TAG_ORDER = ["Sessions", "Users", "GPUs", "Telemetry", "Alerts", "Cost", "Advice", "Nodes", "Dashboard", "Events", "Auth", "Health"];
// Levels of nested schema shown open; deeper ones wait behind a disclosure.
const OPEN_DEPTH = 2;

function operations(doc: Json): Operation[] {
  const out: Operation[] = [];
  for (const [path, item] of Object.entries<Json>(doc?.paths ?? {})) {
    for (const m of METHODS) {
      const op = item?.[m];
      if (!op) continue;
      // Parameters declared on the path apply to each of its operations, unless the operation redeclares them.
      const own: Json[] = op.parameters ?? [];
      const inherited = (item.parameters ?? []).filter(
        (p: Json) => !own.some((o) => o.name === p.name && o.in === p.in),
      );
      out.push({
        method: m.toUpperCase(),
        path,
        op: { ...op, parameters: [...inherited, ...own] },
        tag: op.tags?.[0] ?? "Other",
        key: `${m.toUpperCase()} ${path}`,
      });
    }
  }
  return out;
}

// A local reference (#/components/...) to what it names; anything else is shown as it is.
function resolve(doc: Json, ref: string): Json | undefined {
  if (!ref.startsWith("#/")) return undefined;
  let v = doc;
  for (const part of ref.slice(2).split("/")) {
    v = v?.[part.replace(/~1/g, "/").replace(/~0/g, "~")];
  }
  return v;
}

function deref(doc: Json, x: Json, seen = 0): Json {
  while (x && typeof x === "object" && typeof x.$ref === "string" && seen++ < 16) {
    const r = resolve(doc, x.$ref);
    if (!r) break;
    x = r;
  }
  return x;
}

const refName = (ref: string) => ref.split("/").pop() ?? ref;

function typeText(s: Json): string {
  if (s === true) return "any";
  if (s === false) return "nothing";
  if (!s || typeof s !== "object") return "any";
  if (s.$ref) return refName(s.$ref);
  if (s.const !== undefined) return JSON.stringify(s.const);
  let t = Array.isArray(s.type) ? s.type.join(" | ") : s.type ?? "";
  if (t === "array" || (Array.isArray(s.type) && s.type.includes("array"))) {
    const items = s.items ? typeText(s.items) : "any";
    t = t.replace("array", `array of ${items}`);
  }
  if (!t && (s.oneOf || s.anyOf)) t = (s.oneOf ?? s.anyOf).map(typeText).join(" | ");
  if (!t && s.allOf) t = s.allOf.map(typeText).join(" & ");
  if (!t && s.properties) t = "object";
  return t || "any";
}

// The constraints JSON Schema adds to a type, as short words.
function constraints(s: Json): string[] {
  if (!s || typeof s !== "object") return [];
  const c: string[] = [];
  if (s.format) c.push(s.format);
  if (Array.isArray(s.enum)) c.push(`one of ${s.enum.map((v: unknown) => JSON.stringify(v)).join(", ")}`);
  if (s.minimum != null && s.maximum != null) c.push(`${s.minimum} to ${s.maximum}`);
  else if (s.minimum != null) c.push(`≥ ${s.minimum}`);
  else if (s.maximum != null) c.push(`≤ ${s.maximum}`);
  if (s.exclusiveMinimum != null) c.push(`> ${s.exclusiveMinimum}`);
  if (s.exclusiveMaximum != null) c.push(`< ${s.exclusiveMaximum}`);
  if (s.minLength != null || s.maxLength != null) c.push(`length ${s.minLength ?? 0} to ${s.maxLength ?? "any"}`);
  if (s.minItems != null || s.maxItems != null) c.push(`${s.minItems ?? 0} to ${s.maxItems ?? "any"} items`);
  if (s.pattern) c.push(`pattern ${s.pattern}`);
  if (s.default !== undefined) c.push(`default ${JSON.stringify(s.default)}`);
  return c;
}

function Disclosure({ label, open, children }: { label: ComponentChildren; open: boolean; children: () => ComponentChildren }) {
  // Its content is built only once opened: a document of a few hundred operations stays cheap.
  const [shown, setShown] = useState(open);
  return (
    <details open={open} onToggle={(e) => setShown((e.currentTarget as HTMLDetailsElement).open)}>
      <summary>{label}</summary>
      {shown && children()}
    </details>
  );
}

// A schema as a tree of its fields; `$ref`s are followed (once per branch, so a
// recursive schema ends), and below OPEN_DEPTH they start closed.
function Schema({ doc, schema, depth = 0, refs = [] }: { doc: Json; schema: Json; depth?: number; refs?: string[] }) {
  if (schema?.$ref && refs.includes(schema.$ref)) return <span class="hint">{refName(schema.$ref)} (recursive)</span>;
  const nextRefs = schema?.$ref ? [...refs, schema.$ref] : refs;
  const s = deref(doc, schema);
  if (!s || typeof s !== "object") return <span class="type">{typeText(s)}</span>;
  const props = Object.entries<Json>(s.properties ?? {});
  const required = new Set<string>(s.required ?? []);
  const variants: Json[] | undefined = s.oneOf ?? s.anyOf;
  const itemSchema = s.items && typeof s.items === "object" ? deref(doc, s.items) : undefined;
  const nested = (x: Json) => {
    const d = deref(doc, x);
    return !!d && typeof d === "object" && (!!d.properties || !!d.oneOf || !!d.anyOf || !!d.allOf || (d.items && typeof d.items === "object" && !!deref(doc, d.items)?.properties));
  };
  return (
    <div class="schema">
      <span class="type">{schema?.$ref ? <>{refName(schema.$ref)}: {typeText(s)}</> : typeText(s)}</span>
      {constraints(s).length > 0 && <span class="hint"> ({constraints(s).join("; ")})</span>}
      {s.description && <span class="desc"> {s.description}</span>}
      {props.length > 0 && (
        <ul class="fields-list">
          {props.map(([name, p]) => {
            const d = deref(doc, p);
            return (
              <li key={name}>
                <code class="field">{name}</code>
                {required.has(name) ? <span class="req"> required</span> : null}{" "}
                {nested(p) ? (
                  depth + 1 < OPEN_DEPTH ? (
                    <Schema doc={doc} schema={p} depth={depth + 1} refs={nextRefs} />
                  ) : (
                    <Disclosure label={<span class="type">{typeText(p?.$ref ? p : d)}</span>} open={false}>
                      {() => <Schema doc={doc} schema={p} depth={depth + 1} refs={nextRefs} />}
                    </Disclosure>
                  )
                ) : (
                  <>
                    <span class="type">{typeText(p?.$ref ? p : d)}</span>
                    {constraints(d).length > 0 && <span class="hint"> ({constraints(d).join("; ")})</span>}
                    {d?.description && <span class="desc"> {d.description}</span>}
                  </>
                )}
              </li>
            );
          })}
        </ul>
      )}
      {s.additionalProperties === false && props.length > 0 && <p class="hint">No other fields (an unknown one is refused).</p>}
      {s.additionalProperties && typeof s.additionalProperties === "object" && (
        <p class="hint">Any key, each value: <Schema doc={doc} schema={s.additionalProperties} depth={depth + 1} refs={nextRefs} /></p>
      )}
      {itemSchema && (itemSchema.properties || itemSchema.oneOf || itemSchema.anyOf) && (
        depth + 1 < OPEN_DEPTH ? (
          <div class="items">Each item: <Schema doc={doc} schema={s.items} depth={depth + 1} refs={nextRefs} /></div>
        ) : (
          <Disclosure label={`Each item: ${typeText(s.items)}`} open={false}>
            {() => <Schema doc={doc} schema={s.items} depth={depth + 1} refs={nextRefs} />}
          </Disclosure>
        )
      )}
      {variants && (
        <ul class="fields-list">
          {variants.map((v, i) => (
            <li key={i}>{s.oneOf ? "one of" : "any of"}: <Schema doc={doc} schema={v} depth={depth + 1} refs={nextRefs} /></li>
          ))}
        </ul>
      )}
      {s.allOf && (
        <ul class="fields-list">
          {s.allOf.map((v: Json, i: number) => (
            <li key={i}>all of: <Schema doc={doc} schema={v} depth={depth + 1} refs={nextRefs} /></li>
          ))}
        </ul>
      )}
    </div>
  );
}

function Content({ doc, content }: { doc: Json; content: Json }) {
  const types = Object.entries<Json>(content ?? {});
  if (!types.length) return null;
  return (
    <>
      {types.map(([type, media]) => (
        <div key={type} class="media">
          <span class="hint">{type}</span>{" "}
          {media?.schema ? <Schema doc={doc} schema={media.schema} /> : null}
        </div>
      ))}
    </>
  );
}

function OperationBody({ doc, o }: { doc: Json; o: Operation }) {
  const params: Json[] = o.op.parameters.map((p: Json) => deref(doc, p));
  const body = deref(doc, o.op.requestBody);
  const responses = Object.entries<Json>(o.op.responses ?? {});
  return (
    <div class="op-body">
      {o.op.description && <p>{o.op.description}</p>}
      <p class="hint">
        {o.op.operationId && <>Operation <code>{o.op.operationId}</code>. </>}
        {o.op.deprecated && <strong>Deprecated. </strong>}
        {Array.isArray(o.op.security) && o.op.security.length === 0 && "No token needed."}
      </p>
      {params.length > 0 && (
        <table class="sub params">
          <caption>Parameters</caption>
          <thead><tr><th scope="col">Name</th><th scope="col">In</th><th scope="col">Type</th><th scope="col">Description</th></tr></thead>
          <tbody>
            {params.map((p) => {
              const sch = deref(doc, p.schema);
              const c = constraints(sch);
              return (
                <tr key={`${p.in}:${p.name}`}>
                  <td><code>{p.name}</code>{p.required && <span class="req"> required</span>}</td>
                  <td>{p.in}</td>
                  <td>{typeText(p.schema?.$ref ? p.schema : sch)}{c.length > 0 && <span class="hint"> ({c.join("; ")})</span>}</td>
                  <td>{p.description ?? ""}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      {body && (
        <section class="op-part">
          <h3>Request body{body.required ? " (required)" : ""}</h3>
          {body.description && <p>{body.description}</p>}
          <Content doc={doc} content={body.content} />
        </section>
      )}
      {responses.length > 0 && (
        <section class="op-part">
          <h3>Responses</h3>
          <ul class="responses">
            {responses.map(([code, r0]) => {
              const r = deref(doc, r0);
              return (
                <li key={code}>
                  <span class={`code code-${code[0]}`}>{code}</span> {r?.description ?? ""}
                  <Content doc={doc} content={r?.content} />
                </li>
              );
            })}
          </ul>
        </section>
      )}
    </div>
  );
}

function matches(o: Operation, words: string[]): boolean {
  const hay = `${o.method} ${o.path} ${o.op.summary ?? ""} ${o.op.operationId ?? ""} ${o.tag} ${o.op["x-sandman-role"] ?? ""}`.toLowerCase();
  return words.every((w) => hay.includes(w));
}

export function ApiRef(_: { who: Who }) {
  const [doc, setDoc] = useState<Json | null>(null);
  const [absent, setAbsent] = useState(false);
  const [error, setError] = useState("");
  const [filter, setFilter] = useState("");
  useEffect(() => {
    api.get<Json>("/openapi.json").then(
      (d) => setDoc(d),
      (e) => {
        if (e instanceof ApiError && e.status === 404) setAbsent(true);
        else setError(errorText(e));
      },
    );
  }, []);
  const ops = useMemo(() => (doc ? operations(doc) : []), [doc]);
  const shown = useMemo(() => {
    const words = filter.toLowerCase().split(/\s+/).filter(Boolean);
    return words.length ? ops.filter((o) => matches(o, words)) : ops;
  }, [ops, filter]);
  const tags = useMemo(() => {
    // The document's own tag order, else the API's usual one (sessions first), then any other as it appears.
    const order: string[] = doc?.tags?.length ? doc.tags.map((t: Json) => t.name) : TAG_ORDER;
    const by = new Map<string, Operation[]>();
    for (const t of order) by.set(t, []);
    for (const o of shown) {
      if (!by.has(o.tag)) by.set(o.tag, []);
      by.get(o.tag)!.push(o);
    }
    return [...by.entries()].filter(([, l]) => l.length > 0);
  }, [doc, shown]);

  if (absent) {
    return (
      <>
        <h1 tabIndex={-1}>API reference</h1>
        <p role="status" data-testid="no-openapi">
          This daemon serves no API description (<code>GET /openapi.json</code> answered 404): it is older than the
          OpenAPI document. The README's API section lists the routes.
        </p>
      </>
    );
  }
  if (!doc) {
    return (
      <>
        <h1 tabIndex={-1}>API reference</h1>
        {error ? <p role="alert" class="error">The API description could not be read: {error}</p> : <p aria-busy="true">Loading…</p>}
      </>
    );
  }
  const tagInfo = new Map<string, Json>((doc.tags ?? []).map((t: Json) => [t.name, t]));
  return (
    <>
      <h1 tabIndex={-1}>API reference</h1>
      <p class="hint">
        {doc.info?.title ?? "API"} {doc.info?.version}, OpenAPI {doc.openapi}: {ops.length} operations. Requests carry
        a bearer token (<code>Authorization: Bearer …</code>) or this page's login cookie; writes from a browser also
        need <code>X-Sandman-CSRF: 1</code>. <a href="/openapi.json" target="_blank" rel="noopener">The document itself</a>.
      </p>
      <div class="filters" role="search" aria-label="Filter operations">
        <label>
          Filter
          <input type="search" value={filter} onInput={(e) => setFilter((e.target as HTMLInputElement).value)} placeholder="e.g. sessions post, gpu-nodes, admin" autocomplete="off" />
        </label>
        <span class="hint" role="status">{shown.length === ops.length ? `${ops.length} operations` : `${shown.length} of ${ops.length} operations`}</span>
      </div>
      {tags.length === 0 && <p>No operation matches.</p>}
      <nav class="tag-index" aria-label="Tags">
        {tags.map(([t, l]) => <a href={`#/api`} onClick={(e) => { e.preventDefault(); document.getElementById(`tag-${t}`)?.scrollIntoView(); document.getElementById(`tag-${t}`)?.focus(); }}>{t} ({l.length})</a>)}
      </nav>
      {tags.map(([t, list]) => (
        <section key={t} aria-labelledby={`tag-${t}`} class="api-tag">
          <h2 id={`tag-${t}`} tabIndex={-1}>{t}</h2>
          {tagInfo.get(t)?.description && <p class="hint">{tagInfo.get(t).description}</p>}
          <ul class="ops">
            {list.map((o) => (
              <li key={o.key} class="op" data-op={o.key}>
                <Disclosure
                  open={false}
                  label={
                    <>
                      <span class={`method m-${o.method.toLowerCase()}`}>{o.method}</span>{" "}
                      <code class="path">{o.path}</code>{" "}
                      <span class="op-summary">{o.op.summary ?? ""}</span>
                      {o.op["x-sandman-role"] && <span class={`pill role-${o.op["x-sandman-role"]}`}>{o.op["x-sandman-role"]}</span>}
                    </>
                  }
                >
                  {() => <OperationBody doc={doc} o={o} />}
                </Disclosure>
              </li>
            ))}
          </ul>
        </section>
      ))}
    </>
  );
}
