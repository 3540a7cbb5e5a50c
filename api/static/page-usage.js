/* Usage: the caller's usage this month against its quotas; an admin's table of everyone. */
"use strict";

(() => {
  if (!SM.requireLogin()) return;
  const { el } = SM;
  const limit = (value) => (value == null ? "unlimited" : String(value));
  const minutes = (seconds) => Math.round((seconds || 0) / 6) / 10;

  function line(label, used, quota) {
    const share = quota ? Math.min(100, Math.round((used * 100) / quota)) + "%" : "";
    return el("tr", { dataset: { quota: label } },
      el("td", {}, label),
      el("td", { class: "num" }, String(used)),
      el("td", { class: "num" }, limit(quota)),
      el("td", { class: "num" }, share));
  }

  async function mine() {
    const u = await SM.api("/usage");
    document.getElementById("period").textContent =
      `${u.period.start.slice(0, 10)} – ${u.period.end.slice(0, 10)} (UTC)`;
    const q = u.quotas;
    document.querySelector("#usage tbody").replaceChildren(
      line("jobs running", u.running_jobs, q.concurrent_jobs),
      line("jobs created", u.jobs, null),
      line("pages", u.pages, q.pages_per_month),
      line("items", u.items, null),
      line("browser minutes", minutes(u.browser_seconds), q.browser_minutes_per_month),
      line("bytes stored", u.bytes_stored, q.storage_bytes),
      line("files", u.files, null));
  }

  async function everyone() {
    let page;
    try {
      page = await SM.api("/admin/users?limit=1000");
    } catch (error) {
      if (error.status === 403) return; // not an admin: their own usage only
      throw error;
    }
    document.getElementById("everyone-card").hidden = false;
    const rows = page.users.map((user) => {
      const u = user.usage || {};
      const q = user.quotas || {};
      return el("tr", { dataset: { userId: user.id } },
        el("td", {}, user.username),
        el("td", {}, user.role),
        el("td", { class: "num" }, String(u.jobs || 0)),
        el("td", { class: "num" }, String(u.pages || 0)),
        el("td", { class: "num" }, String(u.items || 0)),
        el("td", { class: "num" }, String(minutes(u.browser_seconds))),
        el("td", {}, [q.concurrent_jobs, q.pages_per_month, q.browser_minutes_per_month,
          q.storage_bytes].map(limit).join(" · ")));
    });
    document.querySelector("#everyone tbody").replaceChildren(...rows);
  }

  (async () => {
    try {
      await mine();
      await everyone();
    } catch (error) {
      SM.flash(SM.describe(error));
    }
  })();
})();
