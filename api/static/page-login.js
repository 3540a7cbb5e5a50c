/* Log in (POST /auth/login), or create an account first (POST /auth/register). */
"use strict";

(() => {
  const next = new URLSearchParams(location.search).get("next");
  const target = next && next.startsWith("/") && !next.startsWith("//") ? next : "/";

  async function logIn(username, password) {
    const answer = await fetch("/api/v1/auth/login", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ username, password }),
    });
    const body = await answer.json();
    if (!answer.ok) throw new SM.ApiError(answer.status, body);
    SM.keep(body);
    location.assign(target);
  }

  document.getElementById("login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    try {
      await logIn(form.username.value, form.password.value);
    } catch (error) {
      SM.flash(SM.describe(error));
    }
  });

  document.getElementById("register-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    const body = { username: form.username.value, email: form.email.value, password: form.password.value };
    const answer = await fetch("/api/v1/auth/register", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    if (!answer.ok) {
      SM.flash(SM.describe(new SM.ApiError(answer.status, await answer.json())));
      return;
    }
    try {
      await logIn(body.username, body.password);
    } catch (error) {
      SM.flash(SM.describe(error));
    }
  });
})();
