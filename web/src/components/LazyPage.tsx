// Pages few visits need (Nodes, API reference) are their own chunks, fetched
// on first visit, so the overview's first load carries none of their code.
import { useEffect, useState } from "preact/hooks";
import type { FunctionComponent } from "preact";

type Loader<P> = () => Promise<FunctionComponent<P>>;

export function lazyPage<P extends object>(load: Loader<P>): FunctionComponent<P> {
  let loaded: FunctionComponent<P> | null = null;
  return function Lazy(props: P) {
    // A lazy initialiser: useState(fn) would call the component itself.
    const [C, setC] = useState<FunctionComponent<P> | null>(() => loaded);
    const [error, setError] = useState("");
    useEffect(() => {
      if (C) return;
      load().then(
        (c) => {
          loaded = c;
          setC(() => c);
          // The app focused the heading on navigation, before this page had one.
          requestAnimationFrame(() => document.querySelector<HTMLElement>("main h1")?.focus({ preventScroll: true }));
        },
        // A deploy that replaced the hashed chunks under an open page: a reload fetches the new ones.
        (e) => setError(e instanceof Error ? e.message : String(e)),
      );
    }, []);
    if (error) {
      return (
        <p role="alert" class="error">
          This page could not be loaded ({error}). <a href={location.hash} onClick={() => location.reload()}>Reload</a>
        </p>
      );
    }
    return C ? <C {...props} /> : <p aria-busy="true">Loading…</p>;
  };
}
