/* Schedules: list, create, run now, enable/disable, delete, and each one's history. */
"use strict";

(() => {
  if (!SM.requireLogin()) return;
  const { el } = SM;
  const body = document.querySelector("#schedules tbody");

  function act(label, fn) {
    return el("button", { type: "button", onclick: async () => {
      try { await fn(); } catch (error) { SM.flash(SM.describe(error)); }
    } }, label);
  }

  async function history(schedule) {
    const page = await SM.api(`/schedules/history?schedule_id=${encodeURIComponent(schedule.id)}&limit=50`);
    document.getElementById("history-card").hidden = false;
    document.getElementById("history-of").textContent = schedule.name;
    document.querySelector("#history tbody").replaceChildren(...page.runs.map((run) => {
      const changes = run.changes
        ? `+${run.changes.added} −${run.changes.removed} ~${run.changes.changed}` : "—";
      return el("tr", { dataset: { status: run.status } },
        el("td", {}, SM.when(run.scheduled_for)),
        el("td", {}, run.trigger),
        el("td", {}, SM.badge(run.status)),
        el("td", { class: "num" }, run.items_scraped ?? ""),
        el("td", {}, changes),
        el("td", {}, run.job_id ? el("a", { href: "/jobs/" + encodeURIComponent(run.job_id) }, "job") : "—"));
    }));
    if (!page.runs.length) {
      document.querySelector("#history tbody").replaceChildren(el("tr", {}, el("td", { colspan: 6 }, "No runs yet.")));
    }
  }

  function row(schedule) {
    const sid = encodeURIComponent(schedule.id);
    return el("tr", { dataset: { scheduleId: schedule.id } },
      el("td", {}, schedule.name),
      el("td", {}, el("code", {}, schedule.cron)),
      el("td", {}, schedule.timezone),
      el("td", {}, schedule.enabled ? "yes" : "no"),
      el("td", {}, SM.when(schedule.next_run)),
      el("td", {}, SM.when(schedule.last_run)),
      el("td", { class: "actions" },
        act("Run now", async () => {
          const run = await SM.api(`/schedules/${sid}/run`, { method: "POST" });
          SM.flash("Started job " + run.job_id, "ok");
          await history(schedule);
        }),
        act("History", () => history(schedule)),
        act(schedule.enabled ? "Disable" : "Enable", async () => {
          await SM.api(`/schedules/${sid}`, { method: "PATCH", body: { enabled: !schedule.enabled } });
          await load();
        }),
        act("Delete", async () => {
          if (!confirm(`Delete schedule ${schedule.name}? Its history and jobs stay.`)) return;
          await SM.api(`/schedules/${sid}`, { method: "DELETE" });
          await load();
        })));
  }

  async function load() {
    try {
      const schedules = await SM.api("/schedules");
      body.replaceChildren(...schedules.map(row));
      document.getElementById("empty").hidden = schedules.length > 0;
    } catch (error) {
      SM.flash(SM.describe(error));
    }
  }

  document.getElementById("schedule-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    let job;
    try { job = JSON.parse(form.job.value); } catch (e) { SM.flash("Job: not JSON (" + e.message + ")"); return; }
    const schedule = {
      name: form.name.value, cron: form.cron.value, timezone: form.timezone.value || "UTC",
      overlap: form.overlap.value, job,
    };
    if (form.key.value.trim()) schedule.key = form.key.value.trim();
    try {
      await SM.api("/schedules", { method: "POST", body: schedule });
      SM.flash("Schedule created", "ok");
      form.name.value = "";
      await load();
    } catch (error) {
      SM.flash(SM.describe(error));
    }
  });

  load();
})();
