/* The submit form, with a selector preview (POST /jobs/preview) before submitting. */
"use strict";

(() => {
  if (!SM.requireLogin()) return;
  const { el } = SM;
  const form = document.getElementById("job-form");

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
