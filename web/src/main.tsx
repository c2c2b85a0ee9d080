// Sandman's web dashboard: a hash-routed single page (hash routing, because
// the daemon's bare API paths such as /sessions share the origin's path space).
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { api, ApiError, errorText, setUnauthorizedHandler } from "./api";
import { loadAll, startStream, stopStream, useLive } from "./live";
import { Login } from "./pages/Login";
import { Overview } from "./pages/Overview";
import { Sessions } from "./pages/Sessions";
import { GpuDetail } from "./pages/GpuDetail";
import { Alerts } from "./pages/Alerts";
import { Cost } from "./pages/Cost";
import { lazyPage } from "./components/LazyPage";
import "uplot/dist/uPlot.min.css";
import "./style.css";

// Pages most visits never open: their own chunks, fetched on first visit.
const Nodes = lazyPage(() => import("./pages/Nodes").then((m) => m.Nodes));
const ApiRef = lazyPage(() => import("./pages/ApiRef").then((m) => m.ApiRef));

export interface Who {
  role: "admin" | "viewer";
  via: string;
}

function useHash(): string {
  const [hash, setHash] = useState(location.hash || "#/");
  useEffect(() => {
    const f = () => setHash(location.hash || "#/");
    addEventListener("hashchange", f);
    return () => removeEventListener("hashchange", f);
  }, []);
  return hash;
}

const NAV = [
  ["#/", "Overview"],
  ["#/sessions", "Sessions"],
  ["#/alerts", "Alerts"],
  ["#/cost", "Cost"],
  ["#/nodes", "Nodes"],
  ["#/api", "API"],
] as const;

function App() {
  const hash = useHash();
  // undefined: asking; null: must log in.
  const [who, setWho] = useState<Who | null | undefined>(undefined);
  const [probeError, setProbeError] = useState("");
  const live = useLive();

  async function probe() {
    try {
      setWho(await api.get<Who>("/api/v1/whoami"));
      // The load first: it holds the events the stream brings while it reads.
      void loadAll();
      startStream(true);
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) {
        setWho(null);
      } else if (e instanceof ApiError && e.status === 404) {
        // A daemon without browser login (and so without the event stream):
        // it answered, so it runs without auth; the page works, not live.
        setWho({ role: "admin", via: "none" });
        void loadAll();
        startStream(false);
      } else {
        setProbeError(errorText(e));
        return;
      }
    }
  }

  useEffect(() => {
    setUnauthorizedHandler(() => {
      stopStream();
      setWho(null);
    });
    void probe();
  }, []);

  useEffect(() => {
    const h = document.querySelector<HTMLElement>("main h1");
    h?.focus({ preventScroll: true });
  }, [hash, who]);

  if (probeError) {
    return (
      <main class="page narrow">
        <h1>Sandman</h1>
        <p role="alert" class="error">The daemon did not answer: {probeError}</p>
      </main>
    );
  }
  if (who === undefined) return <main class="page"><p aria-busy="true">Loading…</p></main>;
  if (who === null) return <Login onLoggedIn={() => void probe()} />;

  async function logout() {
    try {
      await api.post("/api/v1/logout");
    } catch {
      /* logged out either way on this side */
    }
    stopStream();
    setWho(null);
  }

  const route = hash.slice(1);
  let page;
  if (route.startsWith("/gpus/")) page = <GpuDetail uuid={decodeURIComponent(route.slice(6))} who={who} />;
  else if (route.startsWith("/sessions")) page = <Sessions who={who} />;
  else if (route.startsWith("/alerts")) page = <Alerts who={who} />;
  else if (route.startsWith("/cost")) page = <Cost who={who} />;
  else if (route.startsWith("/nodes/")) page = <Nodes who={who} name={decodeURIComponent(route.slice(7))} />;
  else if (route.startsWith("/nodes")) page = <Nodes who={who} />;
  else if (route === "/api" || route.startsWith("/api/")) page = <ApiRef who={who} />;
  else page = <Overview />;

  const firing = [...live.alerts.values()].filter((a) => a.state === "firing" && !a.acked_at).length;
  return (
    <>
      <a class="skip" href="#main" onClick={(e) => { e.preventDefault(); document.querySelector<HTMLElement>("main h1")?.focus(); }}>
        Skip to content
      </a>
      <header class="top">
        <span class="brand">Sandman</span>
        <nav aria-label="Pages">
          {NAV.map(([href, label]) => {
            const current = href === "#/" ? route === "/" || route === "" : route.startsWith(href.slice(1));
            return (
              <a href={href} aria-current={current ? "page" : undefined}>
                {label}
                {label === "Alerts" && firing > 0 && <span class="badge" aria-label={`${firing} firing`}>{firing}</span>}
              </a>
            );
          })}
        </nav>
        <span class={`stream stream-${live.stream}`} role="status">
          {live.stream === "live" ? "live" : live.stream === "unavailable" ? "not live" : live.stream}
        </span>
        <span class="who">{who.role}</span>
        {who.via === "cookie" && <button type="button" onClick={logout}>Log out</button>}
      </header>
      {live.error && <p role="alert" class="error banner">{live.error}</p>}
      <main id="main" class="page">{page}</main>
    </>
  );
}

render(<App />, document.getElementById("app")!);
