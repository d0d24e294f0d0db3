// The one place that talks HTTP to vigild: adds the bearer token, sends and parses JSON,
// and turns every failure into an ApiError. The data modules (data_*.js) build on it.

const TOKEN_KEY = 'vigil.console.token';

// The token lives in sessionStorage: it survives a reload but not closing the tab, and
// no other origin can read it.
export function storedToken() {
  return sessionStorage.getItem(TOKEN_KEY) || '';
}

export function storeToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

// A failed call. `status` is the HTTP status (0 when vigild did not answer), `code` and
// `message` come from vigild's {"error": {"code", "message"}} body when there is one.
export class ApiError extends Error {
  constructor(method, path, status, code, message) {
    super(message);
    this.method = method;
    this.path = path;
    this.status = status;
    this.code = code;
  }

  // True when this vigild has no such endpoint: 404 for an unknown path, 405 when the path
  // exists only for other methods, 501 when it is not implemented. Call it only for paths
  // whose parent resource is known to exist, where 404 cannot mean "no such record".
  get unavailable() {
    return this.status === 404 || this.status === 405 || this.status === 501;
  }
}

// Handlers for 401 (token rejected), set by the app so any view can send the analyst back
// to the sign-in page.
let onUnauthorized = () => {};
export function setUnauthorizedHandler(handler) {
  onUnauthorized = handler;
}

// Sends `method` `path` with `query` (an object; empty and undefined values are left out)
// and `body` (sent as JSON when given). Resolves to the parsed JSON body, or null for an
// empty one. Rejects with ApiError.
export async function request(method, path, { query, body, token } = {}) {
  const url = new URL(path, window.location.origin);
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== '') url.searchParams.set(name, value);
  }
  const headers = { Accept: 'application/json' };
  const bearer = token ?? storedToken();
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  const init = { method, headers, cache: 'no-store', credentials: 'omit', redirect: 'error' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }

  let response;
  try {
    response = await fetch(url, init);
  } catch (error) {
    throw new ApiError(method, path, 0, 'network',
      `vigild did not answer ${method} ${path}: ${error.message}`);
  }
  const text = await response.text();
  let parsed = null;
  if (text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = null;
    }
  }
  if (response.ok) return parsed;

  const detail = parsed && parsed.error ? parsed.error : {};
  const error = new ApiError(method, path, response.status, detail.code || `http_${response.status}`,
    `${method} ${path} failed with ${response.status}: ${detail.message || response.statusText}`);
  if (response.status === 401 && token === undefined) onUnauthorized(error);
  throw error;
}
