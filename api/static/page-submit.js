/* The submit form, with a selector preview (POST /jobs/preview) before submitting, and an
   editor of the job's browser actions (config.actions): a list of steps, each with the fields
   of its type, added, removed and reordered in place. */
"use strict";

(() => {
  if (!SM.requireLogin()) return;
  const { el } = SM;
  const form = document.getElementById("job-form");

  // type → its fields: [name, label, kind (text | number | check | script), placeholder]
  const STEP_FIELDS = {
    click: [["selector", "selector", "text", "button.accept"]],
    fill: [["selector", "selector", "text", "input[name=q]"], ["value", "value", "text", "shoes"]],
    press: [["key", "key", "text", "Enter"], ["selector", "in (optional)", "text", "input[name=q]"]],
    select: [["selector", "selector", "text", "select#sort"], ["value", "option", "text", "price"]],
    wait: [["selector", "selector", "text", "div.result"], ["milliseconds", "or ms (≤ 30000)", "number", "500"]],
    scroll: [["times", "times", "number", "3"]],
    screenshot: [["full_page", "full page", "check"]],
    evaluate: [["script", "script", "script", "document.querySelector('#more').click()"]],
  };
  const MAX_STEPS = 50;
  const steps = document.getElementById("actions");

  function stepRow(type = "click", values = {}) {
    const kind = el("select", { "aria-label": "step type", onchange: () => row.replaceWith(stepRow(kind.value)) },
      Object.keys(STEP_FIELDS).map((t) => el("option", { value: t, selected: t === type }, t)));
    const inputs = STEP_FIELDS[type].map(([name, label, how, hint]) => {
      const input = how === "script"
        ? el("textarea", { rows: 2, placeholder: hint })
        : el("input", { type: how === "check" ? "checkbox" : how, placeholder: hint, min: how === "number" ? 0 : null });
      input.dataset.field = name;
      input.dataset.kind = how;
      if (how === "check") input.checked = Boolean(values[name]);
      else if (values[name] !== undefined) input.value = values[name];
      return el("label", { class: how === "check" ? "check" : null }, label, " ", input);
    });
    const move = (delta) => () => {
      const sibling = delta < 0 ? row.previousElementSibling : row.nextElementSibling;
      if (sibling) (delta < 0 ? sibling.before(row) : sibling.after(row));
    };
    const row = el("li", { class: "row step", dataset: { type } }, kind, inputs,
      el("button", { type: "button", title: "move up", onclick: move(-1) }, "↑"),
      el("button", { type: "button", title: "move down", onclick: move(1) }, "↓"),
      el("button", { type: "button", title: "remove", onclick: () => row.remove() }, "✕"));
    return row;
  }

  document.getElementById("add-step").addEventListener("click", () => {
    if (steps.children.length >= MAX_STEPS) return SM.flash(`At most ${MAX_STEPS} steps`);
    steps.append(stepRow());
  });

  /** The editor's steps as config.actions (empty fields left out: the API says what is missing). */
  function actions() {
    return [...steps.children].map((row) => {
      const step = { type: row.dataset.type };
      row.querySelectorAll("[data-field]").forEach((input) => {
        const { field, kind } = input.dataset;
        if (kind === "check") { if (input.checked) step[field] = true; }
        else if (input.value.trim() !== "") step[field] = kind === "number" ? Number(input.value) : input.value;
      });
      return step;
    });
  }

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

  /** config.login from the "Log in first" fields, or null when no login page is given. */
  function login() {
    const url = form.login_url.value.trim();
    if (!url) return null;
    const fields = {};
    if (form.login_user_selector.value.trim()) fields[form.login_user_selector.value.trim()] = form.login_user.value;
    if (form.login_password_selector.value.trim()) fields[form.login_password_selector.value.trim()] = form.login_password.value;
    if (!Object.keys(fields).length) throw new Error("Log in first: name at least one field's selector");
    const found = { url, fields };
    if (form.login_submit.value.trim()) found.submit = form.login_submit.value.trim();
    if (form.login_success.value.trim()) found.success_selector = form.login_success.value.trim();
    return found;
  }

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
    for (const name of ["item_selector", "link_selector", "wait_for", "next_click"]) {
      if (form[name].value.trim()) config[name] = form[name].value.trim();
    }
    if (steps.children.length) config.actions = actions();
    const asLogin = login();
    if (asLogin) config.login = asLogin;
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
