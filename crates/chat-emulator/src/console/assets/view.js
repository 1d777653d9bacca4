// DOM helpers: elements are built with text nodes only (no HTML from data).

/** `h("li", {class: "x", onclick}, "text", child)` */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function replace(el, ...children) {
  el.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
}

export const $ = (id) => document.getElementById(id);

export function badge(text, kind = "") {
  return h("span", { class: `badge ${kind}` }, text);
}

export function time(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleTimeString();
}

export function short(id) {
  return id ? id.slice(0, 8) : "";
}

export const STATUS_KIND = { ACTIVE: "ok", PENDING: "warn", TERMINATED: "" };
export const STREAM_LABEL = { longPoll: "long poll held", webSocket: "WebSocket open", idle: "idle" };
export const STREAM_KIND = { longPoll: "ok", webSocket: "ok", idle: "" };

export function customerName(session) {
  return session.displayName || session.customerId;
}

export function describeAction(f) {
  switch (f.action) {
    case "status": return `status ${f.status}${f.retryAfter ? ` (Retry-After ${f.retryAfter})` : ""}`;
    case "hang": return `hang ${f.holdMs} ms`;
    case "drop": return "drop";
    case "lose-answer": return "lose answer";
    default: return f.action;
  }
}

export const ROUTE_LABEL = {
  EVENTS: "events", MESSAGES: "messages", ANY_CHAT: "any chat", TOKEN_API: "token API",
  OAUTH: "OAuth", O_AUTH: "OAuth", PROVISIONING: "provisioning",
};
