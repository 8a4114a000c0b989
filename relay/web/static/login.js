// The sign-in form: one generic message for a wrong pair, the wait when throttled.

import { ApiError, api } from "./api.js";
import { field, h } from "./dom.js";
import { t } from "./i18n.js";

// where to go afterwards: a path on this site only, never another origin
function next() {
  const wanted = new URLSearchParams(location.search).get("next") ?? "";
  const local = wanted.startsWith("/") && !wanted.startsWith("//") && !wanted.includes("\\");
  return local ? wanted : "/dashboard";
}

export function render(main) {
  const username = h("input", {
    id: "username", name: "username", autocomplete: "username", required: true, autofocus: true,
  });
  const password = h("input", {
    id: "password", name: "password", type: "password", autocomplete: "current-password",
    required: true,
  });
  const alert = h("p", { class: "alert", role: "alert", hidden: true });
  const button = h("button", { type: "submit", text: t("login.submit") });
  const form = h(
    "form",
    { class: "card login" },
    h("h1", { text: t("login.title") }),
    field(t("login.username"), username),
    field(t("login.password"), password),
    alert,
    button,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    button.disabled = true;
    alert.hidden = true;
    try {
      await api(
        "POST", "/api/login",
        { username: username.value, password: password.value },
        { signIn: false },
      );
      location.assign(next());
    } catch (err) {
      alert.textContent = !(err instanceof ApiError)
        ? t("error.network")
        : err.status === 401
          ? t("login.failed")
          : err.status === 429
            ? t("login.throttled", { seconds: err.retryAfter ?? 60 })
            : err.message;
      alert.hidden = false;
      password.select();
      button.disabled = false;
    }
  });
  main.append(form);
}
