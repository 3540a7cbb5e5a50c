/* ScrapeMaster dashboard: what every page shares. Plain JavaScript, no build step.
 * The tokens live in sessionStorage (this tab only); every call goes to the JSON API. */
"use strict";

const SM = (() => {
  const API = "/api/v1";
  const store = window.sessionStorage;

  function tokens() {
    return { access: store.getItem("sm.access"), refresh: store.getItem("sm.refresh") };
  }

  function keep(answer) {
    store.setItem("sm.access", answer.access_token);
    if (answer.refresh_token) store.setItem("sm.refresh", answer.refresh_token);
    if (answer.user) store.setItem("sm.user", answer.user.username);
  }

  function forget() {
    ["sm.access", "sm.refresh", "sm.user"].forEach((k) => store.removeItem(k));
  }

  function toLogin() {
    const next = location.pathname + location.search;
    location.assign("/login?next=" + encodeURIComponent(next));
  }

  class ApiError extends Error {
    constructor(status, body) {
      // `detail` from the API, `message` from its Scrapyd-compatible paths (/scrapyd/…)
      super((body && (body.detail || body.message)) || "HTTP " + status);
      this.status = status;
      this.body = body || {};
    }
  }

  let refreshing = null;
  async function refresh() {
    // one refresh at a time, however many calls found the token expired
    if (!refreshing) {
      refreshing = (async () => {
        const { refresh: token } = tokens();
        if (!token) return false;
        const answer = await fetch(API + "/auth/refresh", {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ refresh_token: token }),
        });
        if (!answer.ok) return false;
        keep(await answer.json());
        return true;
      })().finally(() => { setTimeout(() => { refreshing = null; }, 0); });
    }
    return refreshing;
  }

  /** fetch() on the API (or on /scrapyd/…, which takes the same token) with the token;
   * JSON in and out; refreshes once on a 401. */
  async function api(path, { method = "GET", body, raw = false } = {}) {
    for (let attempt = 0; attempt < 2; attempt++) {
      const headers = { Accept: "application/json" };
      const { access } = tokens();
      if (access) headers.Authorization = "Bearer " + access;
      if (body !== undefined) headers["Content-Type"] = "application/json";
      const answer = await fetch((path.startsWith("/scrapyd/") ? "" : API) + path, {
        method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      });
      if (answer.status === 401 && attempt === 0 && (await refresh())) continue;
      if (answer.status === 401) {
        forget();
        toLogin();
        throw new ApiError(401, { detail: "Not logged in" });
      }
      if (raw && answer.ok) return answer;
      const text = await answer.text();
      const data = text ? JSON.parse(text) : null;
      if (!answer.ok) throw new ApiError(answer.status, data);
      return data;
    }
    throw new ApiError(401, { detail: "Not logged in" });
  }

  /** An EventSource on `path` with ?token=; reopened with a fresh token when it is refused,
   * resuming after the last event seen. `handlers`: {type: fn(event)}, plus open/closed. */
  function stream(path, types, handlers) {
    let source = null;
    let last = null;
    let stopped = false;
    function open() {
      const params = new URLSearchParams({ token: tokens().access || "" });
      if (last) params.set("last_event_id", last);
      source = new EventSource(API + path + (path.includes("?") ? "&" : "?") + params);
      source.onopen = () => handlers.open && handlers.open();
      types.forEach((type) =>
        source.addEventListener(type, (message) => {
          last = message.lastEventId || last;
          const event = JSON.parse(message.data);
          if (handlers[type]) handlers[type](event);
          if (handlers.any) handlers.any(event);
        }),
      );
      source.onerror = async () => {
        if (handlers.closed) handlers.closed();
        if (source.readyState !== EventSource.CLOSED || stopped) return; // it reconnects itself
        // refused (a 401 once the token expired) or ended: a fresh token, then again
        if (handlers.ended && handlers.ended()) return;
        await refresh();
        setTimeout(() => { if (!stopped) open(); }, 1000);
      };
    }
    open();
    return {
      close() { stopped = true; if (source) source.close(); },
      reopen() { if (source) source.close(); stopped = false; open(); },
    };
  }

  /** document.createElement with attributes and children (strings become text: no HTML). */
  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function when(value) {
    if (!value) return "—";
    const date = new Date(value);
    return isNaN(date) ? String(value) : date.toLocaleString();
  }

  function text(value) {
    if (value === null || value === undefined) return "";
    if (Array.isArray(value)) return value.map(text).join(" | ");
    if (typeof value === "object") return JSON.stringify(value);
    return String(value);
  }

  function badge(status) {
    return el("span", { class: "badge " + status, dataset: { status } }, status);
  }

  function flash(message, kind = "error") {
    const box = document.getElementById("flash");
    box.textContent = message;
    box.className = "flash " + kind;
    box.hidden = false;
    clearTimeout(flash.timer);
    flash.timer = setTimeout(() => { box.hidden = true; }, kind === "error" ? 10000 : 4000);
  }

  /** An ApiError as one line: the detail and, for validation errors, the fields. */
  function describe(error) {
    const fields = error.body && error.body.errors;
    if (!fields) return error.message;
    const parts = Object.entries(fields).map(([name, messages]) => name + ": " + messages.join(" "));
    return error.message + " — " + parts.join("; ");
  }

  /** A table body from rows of objects: `first` columns, then the others in first-seen order. */
  function fillTable(table, rows, first = []) {
    const columns = [...first];
    rows.forEach((row) => Object.keys(row).forEach((k) => columns.includes(k) || columns.push(k)));
    table.tHead.replaceChildren(el("tr", {}, columns.map((c) => el("th", {}, c))));
    table.tBodies[0].replaceChildren(
      ...rows.map((row) => el("tr", {}, columns.map((c) => el("td", {}, text(row[c]))))),
    );
  }

  function requireLogin() {
    if (!tokens().access) {
      toLogin();
      return false;
    }
    const who = document.getElementById("who");
    if (who) who.textContent = store.getItem("sm.user") || "";
    const out = document.getElementById("logout");
    if (out) out.addEventListener("click", () => { forget(); location.assign("/login"); });
    return true;
  }

  /** The current access token (for a URL the browser opens itself: a download). */
  function accessToken() {
    return tokens().access || "";
  }

  return {
    api, stream, el, when, text, badge, flash, describe, fillTable, keep, requireLogin, ApiError,
    accessToken,
  };
})();
