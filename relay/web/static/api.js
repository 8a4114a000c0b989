// The relay's JSON routes, with the session cookie; errors are the API's envelope.

export class ApiError extends Error {
  constructor(status, body, headers) {
    const error = body?.error ?? {};
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code ?? null;
    this.param = error.param ?? null;
    this.retryAfter = Number(headers?.get("Retry-After")) || null;
  }
}

export function toLogin() {
  const here = location.pathname + location.search;
  location.assign(`/login?next=${encodeURIComponent(here)}`);
}

// api("GET", "/api/videos") -> {data, headers}; a FormData body goes as multipart, anything
// else as JSON. A 401 (the session ended) goes to the sign-in page unless `signIn` is false.
export async function api(method, path, body, { headers = {}, signIn = true } = {}) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  Object.assign(init.headers, headers);
  if (body instanceof FormData) init.body = body;
  else if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  const resp = await fetch(path, init);
  let data = null;
  if ((resp.headers.get("Content-Type") ?? "").includes("json")) {
    data = await resp.json().catch(() => null);
  }
  if (resp.status === 401 && signIn) {
    toLogin();
    return new Promise(() => {}); // the page is going away
  }
  if (!resp.ok) throw new ApiError(resp.status, data, resp.headers);
  return { data, headers: resp.headers };
}
