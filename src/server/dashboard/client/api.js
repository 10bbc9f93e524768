// The dashboard's calls to the HTTP API. The token the user gives is kept in sessionStorage (gone when the
// tab closes, never a cookie) and sent as `Authorization: Bearer`; a 401 asks for one and tries again.

const TOKEN_KEY = "prismq.token";

/** An error the API answered with: its HTTP status, stable code and message. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
  }
}

let pendingToken = null;

/** Shows the token form and resolves with what the user submits; concurrent 401s share one form. */
function askToken(reason) {
  if (pendingToken) return pendingToken;
  const form = document.getElementById("token-form");
  const input = document.getElementById("token-input");
  document.getElementById("token-reason").textContent = reason;
  form.hidden = false;
  input.value = "";
  input.focus();
  pendingToken = new Promise((resolve) => {
    form.addEventListener("submit", function submitted(event) {
      event.preventDefault();
      form.removeEventListener("submit", submitted);
      form.hidden = true;
      sessionStorage.setItem(TOKEN_KEY, input.value.trim());
      pendingToken = null;
      resolve();
    });
  });
  return pendingToken;
}

/** Forgets the token, so that the next call asks again. */
export function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

/** Whether a token is kept for this tab. */
export function hasToken() {
  return Boolean(sessionStorage.getItem(TOKEN_KEY));
}

/**
 * Calls the API and returns its parsed JSON (undefined for 204). Rejects with an ApiError for any other
 * answer than 2xx, except 401, which asks for a token and tries again.
 */
export async function call(method, path, body) {
  for (;;) {
    const headers = { Accept: "application/json" };
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) headers.Authorization = `Bearer ${token}`;
    const init = { method, headers, credentials: "omit" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    if (response.status === 401) {
      await askToken(
        token ? "The server refused this token: enter another." : "This server needs a token to be read.",
      );
      continue;
    }
    if (response.status === 204) return undefined;
    const text = await response.text();
    let data;
    try {
      data = text ? JSON.parse(text) : undefined;
    } catch {
      throw new ApiError(
        response.status,
        "NOT_JSON",
        `${method} ${path} answered ${response.status}, not JSON.`,
      );
    }
    if (!response.ok) {
      const error = data && data.error ? data.error : {};
      throw new ApiError(
        response.status,
        error.code || "HTTP_" + response.status,
        error.message || `${method} ${path} answered ${response.status}.`,
      );
    }
    return data;
  }
}

/** GET a path of the API. */
export function get(path) {
  return call("GET", path);
}

/** POST to a path of the API, with a JSON body when one is given. */
export function post(path, body) {
  return call("POST", path, body);
}

/** DELETE a path of the API. */
export function remove(path) {
  return call("DELETE", path);
}
