// The console's calls: the control API's operations under /console/api, with the CSRF token
// of this page and, when the console needs one, the secret entered once in this tab.

const CSRF = document.querySelector('meta[name="console-csrf"]').content;
export const LOGIN_REQUIRED =
  document.querySelector('meta[name="console-login"]').content === "required";
const SECRET_KEY = "axp-console-secret";

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail || `HTTP ${status}`);
    this.status = status;
  }
}

export function hasSecret() {
  return !LOGIN_REQUIRED || sessionStorage.getItem(SECRET_KEY) !== null;
}

export function setSecret(secret) {
  if (secret === null) sessionStorage.removeItem(SECRET_KEY);
  else sessionStorage.setItem(SECRET_KEY, secret);
}

function headers(extra = {}) {
  const h = { "x-console-csrf": CSRF, ...extra };
  const secret = sessionStorage.getItem(SECRET_KEY);
  if (secret !== null) h["x-console-secret"] = secret;
  return h;
}

/** One operation: `call("POST", "/engagements/ID/messages", {...})` → parsed JSON or null. */
export async function call(method, path, body) {
  const init = { method, headers: headers(), credentials: "omit", cache: "no-store" };
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(`/console/api${path}`, init);
  const text = await response.text();
  let json = null;
  if (text) {
    try { json = JSON.parse(text); } catch { json = null; }
  }
  if (!response.ok) throw new ApiError(response.status, json && json.detail);
  return json;
}

/**
 * Follows the live feed (server-sent events read with fetch, so that the secret travels in
 * a header): `onReady()` once subscribed, `onChange(change)` for each change, `onDown()` when
 * the connection is lost. Reconnects by itself after a pause that grows up to 5 s.
 */
export function watch({ onReady, onChange, onDown }) {
  let pause = 250;
  const connect = async () => {
    try {
      const response = await fetch("/console/api/changes", {
        headers: headers({ accept: "text/event-stream" }),
        credentials: "omit",
        cache: "no-store",
      });
      if (!response.ok) throw new ApiError(response.status);
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let event = "message";
          let data = "";
          for (const line of block.split("\n")) {
            if (line.startsWith("event:")) event = line.slice(6).trim();
            else if (line.startsWith("data:")) data += line.slice(5).trim();
          }
          if (event === "ready") {
            pause = 250;
            onReady();
          } else if (event === "change") {
            onChange(JSON.parse(data));
          }
        }
      }
      onDown(null);
    } catch (e) {
      onDown(e);
    }
    setTimeout(connect, pause);
    pause = Math.min(pause * 2, 5000);
  };
  connect();
}
