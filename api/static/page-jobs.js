/* The jobs table, kept current by the caller's event stream (GET /events). */
"use strict";

(() => {
  if (!SM.requireLogin()) return;
  const { el } = SM;
  const body = document.querySelector("#jobs tbody");
  const live = document.getElementById("live");
  const rows = new Map(); // job id -> <tr>
  const TYPES = ["job.started", "job.progress", "job.completed", "job.failed", "job.cancelled"];

  function progressCell(value) {
    const pct = Math.max(0, Math.min(100, value || 0));
    return el("td", { class: "num" },
      el("div", { class: "progress small" }, el("div", { style: null, dataset: { pct } })),
      el("span", { class: "pct" }, pct + "%"));
  }

  function render(job) {
    const row = el("tr", { dataset: { jobId: job.id, status: job.status } },
      el("td", {}, el("a", { href: "/jobs/" + encodeURIComponent(job.id) }, job.url)),
      el("td", { class: "status" }, SM.badge(job.status)),
      progressCell(job.progress),
      el("td", { class: "num items" }, job.items_scraped ?? 0),
      el("td", { class: "num pages" }, job.pages_crawled ?? 0),
      el("td", { class: "engine" }, job.engine_used || job.engine),
      el("td", {}, SM.when(job.created_at)),
    );
    paint(row, job.progress);
    return row;
  }

  function paint(row, progress) {
    const bar = row.querySelector(".progress div");
    bar.style.width = Math.max(0, Math.min(100, progress || 0)) + "%";
  }

  function upsert(job, atTop) {
    const old = rows.get(job.id);
    const row = render(job);
    rows.set(job.id, row);
    if (old) old.replaceWith(row);
    else if (atTop) body.prepend(row);
    else body.append(row);
    document.getElementById("empty").hidden = rows.size > 0;
  }

  function update(event) {
    const row = rows.get(event.job_id);
    if (!row) {
      // a job this page has not seen (submitted elsewhere): fetch it once, put it on top
      rows.set(event.job_id, null);
      SM.api("/jobs/" + encodeURIComponent(event.job_id))
        .then((job) => upsert(job, true))
        .catch(() => rows.delete(event.job_id));
      return;
    }
    const data = event.data || {};
    if (data.status) {
      row.dataset.status = data.status;
      row.querySelector(".status").replaceChildren(SM.badge(data.status));
    }
    if (data.progress !== undefined) {
      row.querySelector(".pct").textContent = data.progress + "%";
      paint(row, data.progress);
    }
    if (data.items_scraped !== undefined) row.querySelector(".items").textContent = data.items_scraped;
    if (data.pages_crawled !== undefined) row.querySelector(".pages").textContent = data.pages_crawled;
    if (data.engine) row.querySelector(".engine").textContent = data.engine;
  }

  async function load() {
    try {
      const jobs = await SM.api("/jobs?limit=100");
      jobs.forEach((job) => upsert(job, false));
      document.getElementById("empty").hidden = rows.size > 0;
    } catch (error) {
      SM.flash(SM.describe(error));
    }
  }

  const handlers = {
    // listen first, then list: a job created in between shows up in one or the other
    open() {
      live.textContent = "live";
      live.classList.add("on");
      document.body.dataset.live = "1";
      if (!load.done) { load.done = true; load(); }
    },
    closed() {
      live.textContent = "reconnecting…";
      live.classList.remove("on");
      document.body.dataset.live = "0";
    },
  };
  TYPES.forEach((type) => { handlers[type] = update; });
  SM.stream("/events", TYPES, handlers);
  // no stream (a proxy that buffers it, say): the list all the same
  setTimeout(() => { if (!load.done) { load.done = true; load(); } }, 3000);
})();
