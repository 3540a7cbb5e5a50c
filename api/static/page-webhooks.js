/* Webhooks: list, create (the secret is shown once), ping, deliveries and redelivery. */
"use strict";

(() => {
  if (!SM.requireLogin()) return;
  const { el } = SM;
  const body = document.querySelector("#webhooks tbody");

  function act(label, fn) {
    return el("button", { type: "button", onclick: async () => {
      try { await fn(); } catch (error) { SM.flash(SM.describe(error)); }
    } }, label);
  }

  async function deliveries(hook) {
    const hid = encodeURIComponent(hook.id);
    const list = await SM.api(`/webhooks/${hid}/deliveries`);
    document.getElementById("deliveries-card").hidden = false;
    document.getElementById("deliveries-of").textContent = hook.webhook_url;
    const rows = list.map((d) => el("tr", { dataset: { state: d.state } },
      el("td", {}, SM.when(d.timestamp)),
      el("td", {}, d.event),
      el("td", { class: "num" }, d.attempt),
      el("td", {}, SM.badge(d.state)),
      el("td", { class: "num" }, d.status_code ?? "—"),
      el("td", {}, d.error || ""),
      el("td", { class: "num" }, d.duration_ms == null ? "" : Math.round(d.duration_ms)),
      el("td", {}, act("Redeliver", async () => {
        await SM.api(`/webhooks/${hid}/deliveries/${encodeURIComponent(d.id)}/redeliver`, { method: "POST" });
        SM.flash("Redelivery queued", "ok");
        setTimeout(() => deliveries(hook), 1000);
      }))));
    document.querySelector("#deliveries tbody").replaceChildren(
      ...(rows.length ? rows : [el("tr", {}, el("td", { colspan: 8 }, "No deliveries yet."))]));
  }

  function row(hook) {
    const hid = encodeURIComponent(hook.id);
    return el("tr", { dataset: { webhookId: hook.id } },
      el("td", {}, hook.webhook_url),
      el("td", {}, hook.events.join(", ")),
      el("td", {}, hook.enabled ? "yes" : "no"),
      el("td", {}, SM.when(hook.created_at)),
      el("td", { class: "actions" },
        act("Ping", async () => {
          await SM.api(`/webhooks/${hid}/ping`, { method: "POST" });
          SM.flash("Ping queued", "ok");
          setTimeout(() => deliveries(hook), 1000);
        }),
        act("Deliveries", () => deliveries(hook)),
        act(hook.enabled ? "Disable" : "Enable", async () => {
          await SM.api(`/webhooks/${hid}`, { method: "PATCH", body: { enabled: !hook.enabled } });
          await load();
        }),
        act("Delete", async () => {
          if (!confirm(`Delete the webhook to ${hook.webhook_url}?`)) return;
          await SM.api(`/webhooks/${hid}`, { method: "DELETE" });
          await load();
        })));
  }

  async function load() {
    try {
      const hooks = await SM.api("/webhooks");
      body.replaceChildren(...hooks.map(row));
      document.getElementById("empty").hidden = hooks.length > 0;
    } catch (error) {
      SM.flash(SM.describe(error));
    }
  }

  document.getElementById("webhook-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    const events = [...form.querySelectorAll("input[name=events]:checked")].map((i) => i.value);
    try {
      const hook = await SM.api("/webhooks", { method: "POST", body: { webhook_url: form.webhook_url.value, events } });
      const secret = document.getElementById("secret");
      secret.hidden = false;
      secret.replaceChildren("Signing secret (shown this once): ", el("code", {}, hook.secret));
      form.webhook_url.value = "";
      await load();
    } catch (error) {
      SM.flash(SM.describe(error));
    }
  });

  load();
})();
