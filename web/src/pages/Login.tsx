// Login: the API token is exchanged for an HttpOnly cookie (POST /api/v1/login)
// and forgotten; it is never kept in storage or put in a URL.
import { useState } from "preact/hooks";
import { api, errorText } from "../api";

export function Login({ onLoggedIn }: { onLoggedIn: () => void }) {
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  async function submit(e: Event) {
    e.preventDefault();
    const form = e.currentTarget as HTMLFormElement;
    const input = form.elements.namedItem("token") as HTMLInputElement;
    setBusy(true);
    setError("");
    try {
      await api.post("/api/v1/login", { token: input.value.trim() });
      input.value = "";
      onLoggedIn();
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  }
  return (
    <main class="page narrow">
      <h1 tabIndex={-1}>Sandman</h1>
      <form class="login" onSubmit={submit}>
        <label for="token">API token</label>
        <input id="token" name="token" type="password" autocomplete="current-password" required autoFocus />
        <p class="hint">The admin or viewer token from the daemon's token files. It is exchanged for a session cookie and not stored by this page.</p>
        <button type="submit" disabled={busy}>Log in</button>
        {error && <p role="alert" class="error">{error}</p>}
      </form>
    </main>
  );
}
