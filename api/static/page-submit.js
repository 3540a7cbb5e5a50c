/* The submit form, with a selector preview (POST /jobs/preview) before submitting. */
"use strict";

(() => {
  if (!SM.requireLogin()) return;
  const { el } = SM;
  const form = document.getElementById("job-form");

  const spiderFields = document.getElementById("spider-fields");
  const crawlFields = document.getElementById("crawl-fields");

  /** `name=value` lines as an object; throws naming the line that has no `=`. */
  function pairs(text, what) {
    const found = {};
    text.split("\n").forEach((line, index) => {
      if (!line.trim()) return;
      const at = line.indexOf("=");
      if (at < 1) throw new Error(`${what} line ${index + 1}: write it as name=value`);
      found[line.slice(0, at).trim()] = line.slice(at + 1).trim();
    });
    return found;
  }

  function options(select, values, first) {
    select.replaceChildren(...(first ? [el("option", { value: "" }, first)] : []),
      ...values.map((v) => el("option", { value: v }, v)));
  }

  // the caller's projects, versions and spiders, from the Scrapyd-compatible API
  async function loadProjects() {
    const { projects } = await SM.api("/scrapyd/listprojects.json");
    options(form.project, projects);
    if (!projects.length) SM.flash("No projects yet: deploy one with scrapyd-deploy (see the guide)");
    await loadVersions();
  }

  async function loadVersions() {
    const project = form.project.value;
    const { versions } = project
      ? await SM.api("/scrapyd/listversions.json?" + new URLSearchParams({ project }))
      : { versions: [] };
    options(form.version, [...versions].reverse(), "latest");
    await loadSpiders();
  }

  async function loadSpiders() {
    const project = form.project.value;
    if (!project) { options(form.spider, []); return; }
    const params = new URLSearchParams({ project });
    if (form.version.value) params.set("_version", form.version.value);
    const { spiders } = await SM.api("/scrapyd/listspiders.json?" + params);
    options(form.spider, spiders);
  }

  function guarded(fn) {
    return () => fn().catch((error) => SM.flash(SM.describe(error)));
  }

  form.project.addEventListener("change", guarded(loadVersions));
  form.version.addEventListener("change", guarded(loadSpiders));

  function showEngine() {
    const spider = form.engine.value === "spider";
    spiderFields.hidden = !spider;
    crawlFields.hidden = spider;
    form.url.required = !spider;
    document.getElementById("preview-button").hidden = spider;
    form.querySelectorAll("[data-crawl]").forEach((node) => { node.hidden = spider; });
    if (spider && !form.project.options.length) guarded(loadProjects)();
  }
  form.engine.addEventListener("change", showEngine);
  showEngine();

  /** The form as a POST /jobs body; throws on an unreadable selector line or JSON. */
  function body() {
    if (form.engine.value === "spider") {
      if (!form.project.value || !form.spider.value) throw new Error("Pick a project and a spider");
      return {
        engine: "spider",
        priority: form.priority.value,
        spider: {
          project: form.project.value,
          version: form.version.value || null,
          name: form.spider.value,
          args: pairs(form.spider_args.value, "Arguments"),
          settings: pairs(form.spider_settings.value, "Settings"),
        },
      };
    }
    const selectors = {};
    form.selectors.value.split("\n").forEach((line, index) => {
      if (!line.trim()) return;
      const at = line.indexOf(":");
      if (at < 1) throw new Error(`Selector line ${index + 1}: write it as name: selector`);
      selectors[line.slice(0, at).trim()] = line.slice(at + 1).trim();
    });
    const config = { max_pages: Number(form.max_pages.value) || 100, follow_links: form.follow_links.checked };
    for (const name of ["item_selector", "link_selector", "wait_for"]) {
      if (form[name].value.trim()) config[name] = form[name].value.trim();
    }
    if (form.extra.value.trim()) {
      let extra;
      try { extra = JSON.parse(form.extra.value); } catch (e) { throw new Error("More config: not JSON (" + e.message + ")"); }
      Object.assign(config, extra);
    }
    return { url: form.url.value.trim(), engine: form.engine.value, priority: form.priority.value, selectors, config };
  }

  function showPreview(answer, asked) {
    const card = document.getElementById("preview");
    card.hidden = false;
    const summary = [
      answer.title ? `“${answer.title}”` : null,
      answer.status_code ? `HTTP ${answer.status_code}` : null,
      answer.engine,
      `${answer.count} item${answer.count === 1 ? "" : "s"}`,
      answer.truncated ? `(showing ${answer.items.length})` : null,
      `${answer.duration_ms} ms`,
    ].filter(Boolean).join(" · ");
    document.getElementById("preview-summary").textContent = summary;
    card.dataset.count = answer.count;
    const error = document.getElementById("preview-error");
    error.hidden = !answer.error;
    error.textContent = answer.error ? `${answer.error.type}: ${answer.error.message}` : "";
    const columns = Object.keys(asked.selectors).length ? Object.keys(asked.selectors) : [];
    SM.fillTable(document.getElementById("preview-items"), answer.items, columns);
    const notes = answer.auto_reason ? [{ level: "INFO", message: answer.auto_reason }, ...answer.logs] : answer.logs;
    document.getElementById("preview-logs").replaceChildren(
      ...notes.map((n) => el("li", { class: n.level.toLowerCase() }, el("b", {}, n.level), " ", n.message)),
    );
  }

  document.getElementById("preview-button").addEventListener("click", async (event) => {
    const button = event.target;
    if (!form.reportValidity()) return;
    button.disabled = true;
    button.textContent = "Previewing…";
    try {
      const asked = body();
      showPreview(await SM.api("/jobs/preview", { method: "POST", body: asked }), asked);
    } catch (error) {
      SM.flash(error instanceof SM.ApiError ? SM.describe(error) : error.message);
    } finally {
      button.disabled = false;
      button.textContent = "Preview selectors";
    }
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const job = await SM.api("/jobs", { method: "POST", body: body() });
      location.assign("/jobs/" + encodeURIComponent(job.id));
    } catch (error) {
      SM.flash(error instanceof SM.ApiError ? SM.describe(error) : error.message);
    }
  });
})();
