// The agent console: renders the emulator's state from snapshots it reads again whenever the
// live feed says something changed (no polling), and acts through the control operations.

import { call, watch, hasSecret, setSecret, ApiError, LOGIN_REQUIRED } from "./api.js";
import {
  h, replace, $, badge, time, short, customerName, describeAction,
  STATUS_KIND, STREAM_LABEL, STREAM_KIND, ROUTE_LABEL,
} from "./view.js";

const ui = {
  snapshot: null,
  selected: null, // engagement id
  transcript: [],
  replyTo: null, // message
};

// ---------------------------------------------------------------- refresh, coalesced

let refreshing = false;
let again = false;

async function refresh() {
  if (refreshing) { again = true; return; }
  refreshing = true;
  try {
    do {
      again = false;
      const snapshot = await call("GET", "/state");
      let transcript = [];
      if (ui.selected) {
        try {
          transcript = (await call("GET", `/engagements/${encodeURIComponent(ui.selected)}/messages`)).messages;
        } catch (e) {
          if (!(e instanceof ApiError && e.status === 404)) throw e;
        }
      }
      ui.snapshot = snapshot;
      ui.transcript = transcript;
      render();
    } while (again);
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) showLogin("The secret was refused.");
    else setLive(false, "error");
  } finally {
    refreshing = false;
  }
}

function setLive(on, text) {
  const el = $("live");
  el.className = `live ${on ? "on" : "off"}`;
  el.textContent = text;
}

// ---------------------------------------------------------------- rendering

function render() {
  const s = ui.snapshot;
  if (!s) return;
  $("agent-mode").value = s.settings.agentMode;
  renderSessions(s);
  renderChats(s);
  renderChat(s);
  renderFaults(s);
  renderSetup(s);
}

function engagementsOf(s, sessionId) {
  return s.engagements.filter((e) => e.sessions.includes(sessionId));
}

function renderSessions(s) {
  $("session-count").textContent = `(${s.sessions.length})`;
  const now = Date.now();
  replace($("sessions"), s.sessions.length === 0
    ? h("li", { class: "muted" }, "No session yet: connect a client.")
    : s.sessions.map((session) => {
      const exp = session.tokenExpiresAt ? new Date(session.tokenExpiresAt).getTime() : null;
      const tokenText = exp === null ? "no token seen"
        : session.tokenRefused || exp <= now ? "token refused/expired"
          : `token until ${time(session.tokenExpiresAt)}`;
      return h("li", { class: "session", dataset: { session: session.sessionId } },
        h("div", {},
          h("strong", {}, customerName(session)),
          badge(session.verifiedCustomer ? "verified" : "guest", session.verifiedCustomer ? "info" : ""),
          badge(STREAM_LABEL[session.stream] || session.stream, STREAM_KIND[session.stream])),
        h("div", { class: "meta" },
          `${session.customerId} · ${short(session.sessionId)} · `,
          h("span", { class: session.tokenRefused ? "delivery wait" : "" }, tokenText),
          session.pendingEvents ? ` · ${session.pendingEvents} unacknowledged` : ""),
        h("div", { class: "row" },
          engagementsOf(s, session.sessionId).map((e) =>
            h("button", { class: "tiny", type: "button", onclick: () => select(e.engagementId) },
              `chat ${short(e.engagementId)}`)),
          h("button", {
            class: "tiny danger", type: "button", title: "Its polls then answer 404 Session not found",
            onclick: () => act($("faults-error"), "POST", `/sessions/${encodeURIComponent(session.sessionId)}:invalidate`),
          }, "Invalidate")));
    }));
}

function renderChats(s) {
  const chats = [...s.engagements].reverse();
  $("chat-count").textContent = `(${chats.length})`;
  replace($("chats"), chats.length === 0
    ? h("li", { class: "muted" }, "No chat yet.")
    : chats.map((e) => h("li", {
      class: `selectable chat-item${e.engagementId === ui.selected ? " selected" : ""}`,
      dataset: { engagement: e.engagementId },
      onclick: () => select(e.engagementId),
    },
    h("div", {}, h("strong", {}, e.participants.find((p) => p.participantType === "CUSTOMER")?.displayName || e.customerId),
      badge(e.status.toLowerCase(), STATUS_KIND[e.status])),
    h("div", { class: "meta" }, `${e.messageCount} messages · ${e.participants.length} participants · ${time(e.lastUpdatedAt)}`))));
}

function select(id) {
  if (ui.selected !== id) {
    ui.selected = id;
    ui.replyTo = null;
    ui.transcript = [];
  }
  render();
  refresh();
}

function currentChat(s) {
  return s.engagements.find((e) => e.engagementId === ui.selected) || null;
}

function renderChat(s) {
  const chat = currentChat(s);
  $("no-chat").hidden = !!chat;
  $("chat").hidden = !chat;
  if (!chat) return;
  const ongoing = chat.status !== "TERMINATED";
  const customer = chat.participants.find((p) => p.participantType === "CUSTOMER");
  $("chat-title").textContent = `Chat with ${customer?.displayName || chat.customerId}`;
  replace($("chat-meta"),
    badge(chat.status.toLowerCase(), STATUS_KIND[chat.status]),
    badge(chat.verifiedCustomer ? "verified" : "guest", chat.verifiedCustomer ? "info" : ""),
    ` engagement ${short(chat.engagementId)} · dialog ${short(chat.dialogId)} · customer ${chat.customerId}`);
  $("chat-agent").checked = chat.simulatedAgentOn;
  $("chat-agent").disabled = !ongoing;
  $("chat-end").disabled = !ongoing;
  for (const el of $("join-form").elements) el.disabled = !ongoing;
  for (const el of $("composer").elements) el.disabled = !ongoing;

  replace($("participants"), chat.participants.length === 0
    ? h("span", { class: "muted" }, "Nobody is in this chat any more.")
    : chat.participants.map((p) => {
      const isCustomer = p.participantType === "CUSTOMER";
      const sim = chat.simulatedAgent && chat.simulatedAgent.participantId === p.participantId;
      return h("span", { class: `chip${isCustomer ? " customer" : ""}` },
        h("span", {}, p.displayName || p.participantType.toLowerCase()),
        badge(p.participantType.toLowerCase() + (sim ? " · simulated" : "")),
        !isCustomer && ongoing ? h("button", {
          class: "tiny", type: "button", title: "Hand over to another agent",
          onclick: () => handOver(chat, p),
        }, "Hand over") : null,
        !isCustomer && ongoing ? h("button", {
          class: "tiny", type: "button", title: "Leave the chat",
          onclick: () => act($("chat-error"), "DELETE",
            `/engagements/${encodeURIComponent(chat.engagementId)}/participants/${encodeURIComponent(p.participantId)}`),
        }, "Leave") : null);
    }));

  // Who the contact center speaks as: its participants, or a type (joins if absent).
  const sendAs = $("send-as");
  const previous = sendAs.value;
  const own = chat.participants.filter((p) => p.participantType !== "CUSTOMER");
  const options = own.map((p) => h("option", { value: `id:${p.participantId}` },
    `${p.displayName || p.participantType} · ${p.participantType.toLowerCase()}`));
  if (!own.some((p) => p.participantType === "AGENT")) options.push(h("option", { value: "type:AGENT" }, "Agent (joins)"));
  options.push(h("option", { value: "type:SYSTEM" }, "System"));
  replace(sendAs, options);
  const human = own.find((p) => !(chat.simulatedAgent && chat.simulatedAgent.participantId === p.participantId));
  if ([...sendAs.options].some((o) => o.value === previous)) sendAs.value = previous;
  else if (human) sendAs.value = `id:${human.participantId}`;

  renderTranscript(chat);
  $("reply-to").hidden = !ui.replyTo;
  if (ui.replyTo) $("reply-to-text").textContent = `Replying to: “${textOf(ui.replyTo).slice(0, 80)}”`;
}

function textOf(m) {
  return m.body?.elementText?.text ?? "";
}

function renderTranscript(chat) {
  const list = $("transcript");
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  const byId = new Map(ui.transcript.map((m) => [m.messageId, m]));
  replace(list, ui.transcript.length === 0
    ? h("li", { class: "muted" }, "No message yet.")
    : ui.transcript.map((m) => {
      const kind = m.participantType === "CUSTOMER" ? "customer" : m.participantType === "SYSTEM" ? "system" : "cc";
      const parent = m.parentMessageId ? byId.get(m.parentMessageId) : null;
      const acked = m.delivery.filter((d) => d.acknowledged).length;
      const total = m.delivery.length;
      const delivered = total > 0 && acked === total;
      const deliveryText = total === 0 ? "no session to deliver to"
        : kind === "customer"
          ? `received · ${delivered ? "echo acknowledged" : "echo pending"} (${acked}/${total} sessions)`
          : delivered ? `✓✓ acknowledged by the app (${acked}/${total})` : `✓ queued (${acked}/${total} acknowledged)`;
      return h("li", { class: `msg ${kind}`, dataset: { message: m.messageId, sender: m.participantType } },
        h("div", { class: "who" }, m.displayName || m.participantType.toLowerCase(), badge(m.participantType.toLowerCase())),
        parent ? h("div", { class: "quote" }, `↪ ${textOf(parent).slice(0, 80)}`) : null,
        h("div", { class: "text" }, textOf(m)),
        h("div", { class: "foot" },
          h("span", {}, `#${m.messageIndex} · ${time(m.receivedAt)}`),
          h("span", { class: `delivery ${delivered ? "ok" : "wait"}` }, deliveryText),
          chat.status !== "TERMINATED" ? h("button", {
            class: "link tiny", type: "button",
            onclick: () => { ui.replyTo = m; render(); $("message").focus(); },
          }, "Reply") : null));
    }));
  if (atBottom) list.scrollTop = list.scrollHeight;
}

function renderFaults(s) {
  const f = s.faults;
  const sessionSelect = $("f-session");
  const keep = sessionSelect.value;
  replace(sessionSelect, h("option", { value: "" }, "any"),
    s.sessions.map((x) => h("option", { value: x.sessionId }, `${customerName(x)} · ${short(x.sessionId)}`)));
  if ([...sessionSelect.options].some((o) => o.value === keep)) sessionSelect.value = keep;

  $("outage").hidden = !f.outage;
  if (f.outage) $("outage").textContent = `Outage: every API answers ${f.outage.status} until ${time(f.outage.endsAt)}`;
  const route = (r) => ROUTE_LABEL[r] || r.toLowerCase();
  replace($("armed"), f.armed.length === 0 && f.delays.length === 0
    ? h("li", { class: "muted" }, "Nothing armed.")
    : [
      ...f.armed.map((a) => h("li", { class: "armed" },
        h("span", {}, `${route(a.route)}: ${describeAction(a)} × ${a.remaining}`,
          a.sessionId ? ` (session ${short(a.sessionId)})` : ""),
        h("button", {
          class: "tiny", type: "button", title: "Disarm",
          onclick: () => act($("faults-error"), "DELETE", `/faults/${a.id}`),
        }, "×"))),
      ...f.delays.map((d) => h("li", {}, `${route(d.route)}: every request delayed ${d.delayMs} ms`)),
    ]);
  replace($("fired"), f.fired.length === 0
    ? h("li", { class: "muted" }, "Nothing fired yet.")
    : f.fired.slice(0, 15).map((x) => h("li", { class: "fired" },
      h("span", {}, `${route(x.route)}: ${describeAction(x)}${x.times > 1 ? ` × ${x.times}` : ""}`,
        x.sessionId ? ` (session ${short(x.sessionId)})` : ""),
      h("span", { class: "muted" }, time(x.lastAt)))));
}

function renderSetup(s) {
  const c = s.settings;
  const copyable = (text) => h("span", {}, text, " ",
    h("button", { class: "tiny", type: "button", onclick: () => copy(text) }, "copy"));
  replace($("credentials"),
    h("dt", {}, "hostURL"), h("dd", {}, copyable(c.hostURL)),
    h("dt", {}, "accountId"), h("dd", {}, c.accountId),
    h("dt", {}, "clientId"), h("dd", {}, c.clientId),
    h("dt", {}, "clientSecret"), h("dd", { title: "Never shown whole: it is in the emulator's JSON line" }, c.clientSecretMasked),
    h("dt", {}, "appkey"), h("dd", {}, copyable(c.appkey)),
    h("dt", {}, "integrationId"), h("dd", {}, copyable(c.defaultIntegrationId)));
  replace($("integrations"), s.integrations.map((i) => h("li", { class: "integration", dataset: { integration: i.integrationId } },
    h("span", {}, h("strong", {}, i.name), i.default ? badge("default") : null, h("br"),
      h("span", { class: "mono" }, i.integrationId)),
    h("span", {},
      h("button", { class: "tiny", type: "button", onclick: () => copy(i.integrationId) }, "copy id"),
      i.default ? null : h("button", {
        class: "tiny danger", type: "button",
        onclick: () => {
          if (confirm(`Delete ${i.name}? Its sessions end and its chats terminate.`)) {
            act($("setup-error"), "DELETE", `/integrations/${encodeURIComponent(i.integrationId)}`);
          }
        },
      }, "delete")))));
  const select = $("t-integration");
  const keep = select.value;
  replace(select, s.integrations.map((i) => h("option", { value: i.integrationId }, i.name)));
  if ([...select.options].some((o) => o.value === keep)) select.value = keep;
}

// ---------------------------------------------------------------- actions

async function act(errorEl, method, path, body) {
  errorEl.textContent = "";
  try {
    const result = await call(method, path, body);
    refresh();
    return result;
  } catch (e) {
    errorEl.textContent = e.message;
    if (e instanceof ApiError && e.status === 401) showLogin("The secret was refused.");
    return undefined;
  }
}

function copy(text) {
  if (navigator.clipboard) navigator.clipboard.writeText(text).catch(() => {});
}

function handOver(chat, from) {
  const name = prompt("Hand over to (display name of the new agent):", "Robin (agent)");
  if (!name) return;
  act($("chat-error"), "POST", `/engagements/${encodeURIComponent(chat.engagementId)}:transfer`,
    { fromParticipantId: from.participantId, displayName: name });
}

function wire() {
  $("agent-mode").addEventListener("change", (e) =>
    act($("chat-error"), "PUT", "/agent", { mode: e.target.value }));

  $("chat-end").addEventListener("click", () => {
    if (ui.selected) act($("chat-error"), "POST", `/engagements/${encodeURIComponent(ui.selected)}:end`);
  });
  $("chat-agent").addEventListener("change", (e) => {
    if (ui.selected) act($("chat-error"), "PUT", `/engagements/${encodeURIComponent(ui.selected)}/agent`, { on: e.target.checked });
  });
  $("join-form").addEventListener("submit", (e) => {
    e.preventDefault();
    if (!ui.selected) return;
    act($("chat-error"), "POST", `/engagements/${encodeURIComponent(ui.selected)}/participants`, {
      participantType: $("join-type").value,
      displayName: $("join-name").value || undefined,
    });
  });
  $("join-type").addEventListener("change", (e) => {
    $("join-name").value = { AGENT: "Jordan (agent)", BOT: "Helper bot", SUPERVISOR: "Sam (supervisor)" }[e.target.value];
  });

  const send = async () => {
    const text = $("message").value;
    if (!ui.selected || !text.trim()) return;
    const [how, value] = $("send-as").value.split(/:(.*)/s);
    const body = { text, parentMessageId: ui.replyTo ? ui.replyTo.messageId : undefined };
    if (how === "id") body.participantId = value;
    else body.participantType = value;
    const sent = await act($("chat-error"), "POST", `/engagements/${encodeURIComponent(ui.selected)}/messages`, body);
    if (sent !== undefined) {
      $("message").value = "";
      ui.replyTo = null;
    }
  };
  $("composer").addEventListener("submit", (e) => { e.preventDefault(); send(); });
  $("message").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); send(); }
  });
  $("reply-cancel").addEventListener("click", () => { ui.replyTo = null; render(); });

  const fe = $("faults-error");
  $("f-expire").addEventListener("click", () => act(fe, "POST", "/chat-tokens:expire"));
  $("f-revoke").addEventListener("click", () => act(fe, "POST", "/chat-tokens:revoke"));
  $("f-revoke-access").addEventListener("click", () => act(fe, "POST", "/access-tokens:revoke"));
  $("f-clear").addEventListener("click", () => act(fe, "DELETE", "/faults"));
  $("outage-end").addEventListener("click", () => act(fe, "DELETE", "/outage"));
  $("outage-form").addEventListener("submit", (e) => {
    e.preventDefault();
    act(fe, "POST", "/outage", { seconds: Number($("outage-secs").value) });
  });
  $("fault-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const action = $("f-action").value;
    act(fe, "POST", "/faults", {
      route: $("f-route").value,
      action,
      status: action === "status" ? Number($("f-status").value) : undefined,
      holdMs: action === "hang" ? Number($("f-hold").value) : undefined,
      count: Number($("f-count").value),
      sessionId: $("f-session").value || undefined,
    });
  });

  const se = $("setup-error");
  $("integration-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const created = await act(se, "POST", "/integrations", { name: $("integration-name").value });
    if (created) {
      $("integration-name").value = "";
      $("t-integration").value = created.integrationId;
    }
  });
  $("token-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const minted = await act(se, "POST", "/chat-tokens", {
      integrationId: $("t-integration").value || undefined,
      customerId: $("t-customer").value,
      verifiedCustomer: $("t-verified").checked,
      ttlSeconds: Number($("t-ttl").value),
    });
    if (minted) {
      $("token").value = minted.jwtToken;
      $("token-out").hidden = false;
    }
  });
  $("token-copy").addEventListener("click", () => copy($("token").value));

  $("login-form").addEventListener("submit", (e) => {
    e.preventDefault();
    setSecret($("login-secret").value);
    $("login-secret").value = "";
    $("login").hidden = true;
    start();
  });
}

function showLogin(message) {
  if (!LOGIN_REQUIRED) return;
  setSecret(null);
  $("login-error").textContent = message || "";
  $("login").hidden = false;
  $("login-secret").focus();
}

let started = false;

function start() {
  if (started) { refresh(); return; }
  started = true;
  watch({
    onReady: () => { setLive(true, "live"); refresh(); },
    onChange: (change) => {
      if (change.kind === "resync" || !ui.snapshot) refresh();
      else refresh();
    },
    onDown: (e) => {
      setLive(false, "reconnecting…");
      if (e instanceof ApiError && e.status === 401) showLogin("The secret was refused.");
    },
  });
}

wire();
if (hasSecret()) start();
else showLogin("");
