/* One job: live progress from its event stream, its log, its first results, its screenshots
 * and PDFs, exports and the cancel / retry / reset actions. */
"use strict";

(() => {
  if (!SM.requireLogin()) return;
  const { el } = SM;
  const id = document.body.dataset.jobId;
  const path = "/jobs/" + encodeURIComponent(id);
  const FIRST_RESULTS = 20;
  const TYPES = ["job.started", "job.progress", "job.log", "job.completed", "job.failed", "job.cancelled"];
  const TERMINAL = ["completed", "failed", "cancelled"];
  const ACTIONS = {
    cancel: ["pending", "running"],
    retry: ["failed", "cancelled"],
    reset: ["completed", "failed", "cancelled"],
  };
  let job = null;
  let stream = null;

  function later(fn, ms) {
    // at most one call per `ms`, the last one always made
    let timer = null;
    return () => { if (!timer) timer = setTimeout(() => { timer = null; fn(); }, ms); };
  }

  /** A spider job's project, version, spider, arguments and settings (engine "spider"). */
  function spiderFacts(spider) {
    if (!spider) return [];
    const pairs = (map) => Object.entries(map || {}).map(([k, v]) => k + "=" + v).join(", ") || "—";
    return [
      ["Project", spider.project],
      ["Version", spider.version || "latest"],
      ["Spider", spider.name],
      ["Arguments", pairs(spider.args)],
      ["Settings", pairs(spider.settings)],
    ];
  }

  function show(current) {
    job = current;
    document.body.dataset.status = job.status;
    document.getElementById("status").replaceWith(
      Object.assign(SM.badge(job.status), { id: "status" }));
    const link = document.getElementById("job-url");
    link.textContent = job.url || "";
    link.href = job.url || "#";
    link.hidden = !job.url;
    document.getElementById("progress-bar").style.width = (job.progress || 0) + "%";
    const facts = [
      ["Progress", (job.progress || 0) + "%"],
      ["Pages", job.pages_crawled ?? 0],
      ["Items", job.items_scraped ?? 0],
      ["Failed items", job.items_failed ?? 0],
      ["Engine", job.engine_used && job.engine_used !== job.engine ? job.engine + " → " + job.engine_used : job.engine],
      ...spiderFacts(job.spider),
      ["Attempts", job.attempts ?? 1],
      ["Created", SM.when(job.created_at)],
      ["Started", SM.when(job.started_at)],
      ["Finished", SM.when(job.completed_at)],
      ["Duration", job.duration_seconds == null ? "—" : job.duration_seconds.toFixed(1) + " s"],
      ["Files", job.files && job.files.count ? `${job.files.count} (${size(job.files.bytes)})` : "—"],
    ];
    document.getElementById("facts").replaceChildren(
      ...facts.flatMap(([name, value]) => [el("dt", {}, name), el("dd", { dataset: { fact: name } }, value)]),
    );
    const error = document.getElementById("job-error");
    error.hidden = !job.error;
    error.textContent = job.error ? job.error.type + ": " + job.error.message : "";
    for (const [action, from] of Object.entries(ACTIONS)) {
      document.querySelector(`[data-action="${action}"]`).disabled = !from.includes(job.status);
    }
  }

  async function reload() {
    try {
      show(await SM.api(path));
    } catch (error) {
      SM.flash(SM.describe(error));
    }
  }

  const loadResults = later(async () => {
    try {
      const page = await SM.api(`/results/${encodeURIComponent(id)}?limit=${FIRST_RESULTS}`);
      const rows = page.results.map((r) => ({ ...r.data, url: r.url }));
      SM.fillTable(document.getElementById("results"), rows);
      document.getElementById("results-note").textContent =
        page.total > rows.length ? `first ${rows.length} of ${page.total}` : `${page.total} items`;
    } catch (error) {
      if (error.status !== 404) SM.flash(SM.describe(error));
    }
  }, 1000);

  function size(bytes) {
    if (bytes < 1024) return bytes + " B";
    if (bytes < 1048576) return (bytes / 1024).toFixed(0) + " kB";
    return (bytes / 1048576).toFixed(1) + " MB";
  }

  const FILES_SHOWN = 100;
  const loadFiles = later(async () => {
    try {
      const page = await SM.api(`${path}/files?limit=${FILES_SHOWN}`);
      const card = document.getElementById("files-card");
      card.hidden = page.total === 0;
      // a link or an <img> cannot send a header: the token goes in the query, as for exports
      const token = new URLSearchParams({ token: SM.accessToken() });
      document.getElementById("files").replaceChildren(...page.files.map((file) => {
        const href = `/api/v1${path}/files/${encodeURIComponent(file.id)}?${token}`;
        const preview = file.kind === "screenshot"
          ? el("img", { src: href, alt: "screenshot of " + file.url, loading: "lazy" })
          : el("span", { class: "pdf" }, "PDF");
        return el("li", { dataset: { kind: file.kind } },
          el("a", { href, target: "_blank", rel: "noopener", title: file.url }, preview),
          el("span", {}, file.url), el("span", {}, size(file.size)));
      }));
      document.getElementById("files-note").textContent =
        page.total > page.files.length ? `first ${page.files.length} of ${page.total}` : `${page.total} files`;
    } catch (error) {
      // 404: the job is gone, or it is another user's (an admin's view): its files are its owner's
      if (error.status !== 404) SM.flash(SM.describe(error));
    }
  }, 1000);

  const loadLogs = later(async () => {
    try {
      const { logs } = await SM.api(path + "/logs?limit=500");
      document.getElementById("logs").replaceChildren(
        ...logs.map((line) => el("li", { class: line.level.toLowerCase() },
          el("time", {}, SM.when(line.timestamp)), " ", el("b", {}, line.level), " ", line.message)),
      );
    } catch (error) {
      if (error.status !== 404) SM.flash(SM.describe(error));
    }
  }, 500);

  function onEvent(event) {
    const data = event.data || {};
    if (event.type === "job.log") { loadLogs(); return; }
    if (job) show({ ...job, ...data, engine_used: data.engine || job.engine_used });
    loadResults();
    if (event.type !== "job.progress") { reload(); loadLogs(); loadFiles(); }
    // the job's last event: the server ends the stream; do not let EventSource reconnect
    if (TERMINAL.includes(data.status) && event.type !== "job.progress" && stream) stream.close();
  }

  function follow() {
    const handlers = {
      any: onEvent,
      // the stream ends after the job's last event; a retry or reset opens it again
      ended: () => job && TERMINAL.includes(job.status),
      open: () => { document.body.dataset.live = "1"; },
    };
    stream = SM.stream(path + "/events", TYPES, handlers);
  }

  document.querySelectorAll("[data-action]").forEach((button) =>
    button.addEventListener("click", async () => {
      const action = button.dataset.action;
      try {
        show(await SM.api(`${path}/${action}`, { method: "POST" }));
        SM.flash(`Job ${action === "cancel" ? "cancelled" : action === "retry" ? "retried" : "reset"}`, "ok");
        loadLogs();
        loadResults();
        loadFiles();
        if (action !== "cancel" && stream) stream.reopen();
      } catch (error) {
        SM.flash(SM.describe(error));
      }
    }),
  );

  document.querySelectorAll("[data-export]").forEach((button) =>
    button.addEventListener("click", async () => {
      const format = button.dataset.export;
      button.disabled = true;
      try {
        // the browser downloads the stream itself (to disk, with its own progress): a fresh
        // token first, since a link cannot refresh one
        await SM.api("/auth/me");
        const params = new URLSearchParams({ format, token: SM.accessToken() });
        const link = el("a", {
          href: `/api/v1/results/${encodeURIComponent(id)}/export?${params}`,
          download: `${id}.${format}`,
        });
        document.body.append(link);
        link.click();
        link.remove();
      } catch (error) {
        SM.flash(SM.describe(error));
      } finally {
        button.disabled = false;
      }
    }),
  );

  reload().then(() => { if (job) { loadResults(); loadLogs(); loadFiles(); follow(); } });
})();
