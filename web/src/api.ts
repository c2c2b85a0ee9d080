// The dashboard's one door to the daemon: same-origin fetches that carry the
// login cookie (never a token), the CSRF header on writes, and the project's
// error shape turned into an Error with the server's words.

export class ApiError extends Error {
  constructor(public status: number, message: string, public kind = "") {
    super(message);
  }
}

// Set by the app: called when a request answers 401, so the page asks to log in again.
let onUnauthorized: () => void = () => {};
export function setUnauthorizedHandler(f: () => void) {
  onUnauthorized = f;
}

async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json" };
  if (method !== "GET") headers["X-Sandman-CSRF"] = "1";
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status === 401 && path !== "/api/v1/login") onUnauthorized();
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  let json: any = undefined;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    /* a non-JSON body is reported below as it is */
  }
  if (!res.ok) {
    const e = json?.error;
    const message = typeof e === "string" ? e : e?.message ?? (text || res.statusText);
    throw new ApiError(res.status, message, e?.kind ?? json?.code ?? "");
  }
  return json as T;
}

export const api = {
  get: <T>(path: string) => request<T>("GET", path),
  post: <T>(path: string, body?: unknown) => request<T>("POST", path, body ?? {}),
  patch: <T>(path: string, body: unknown) => request<T>("PATCH", path, body),
  del: <T>(path: string) => request<T>("DELETE", path),
};

export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
