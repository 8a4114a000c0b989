// /dashboard/users (admins): create users, reset a password, make or revoke admin, disable.

import { ApiError, api } from "./api.js";
import { clearErrors, field, h, modal, showError, table } from "./dom.js";
import { t, when } from "./i18n.js";

export async function render(main, { me }) {
  const name = h("input", { name: "name", required: true, maxlength: 64, autocomplete: "off" });
  const password = h("input", { name: "password", type: "password", autocomplete: "new-password" });
  const admin = h("input", { name: "role", type: "checkbox" });
  const alert = h("p", { class: "alert", role: "alert", hidden: true });
  const form = h(
    "form",
    { class: "card", "aria-label": t("users.create") },
    h("h1", { text: t("title.users") }),
    h(
      "div",
      { class: "grid" },
      field(t("users.name"), name),
      field(t("users.password"), password, { hint: t("users.password_hint") }),
    ),
    h("label", { class: "check" }, admin, t("users.make_admin_new")),
    alert,
    h("div", { class: "actions" }, h("button", { type: "submit", text: t("users.create") })),
  );
  const body = h("tbody");
  const head = [t("users.name"), t("users.role"), t("users.status"), t("users.created"), ""];
  main.append(
    form,
    h(
      "section",
      { class: "card" },
      h("h2", { text: t("users.list") }),
      table({ class: "plain" }, head, body),
    ),
  );

  async function refresh() {
    const { data } = await api("GET", "/api/users");
    body.replaceChildren(...data.data.map(row));
  }

  async function change(user, fields, button) {
    button.disabled = true;
    try {
      await api("POST", `/api/users/${encodeURIComponent(user.name)}`, fields);
      await refresh();
    } catch (err) {
      button.disabled = false;
      button.after(h("p", { class: "alert", role: "alert", text: err.message }));
    }
  }

  function resetPassword(user) {
    const input = h("input", { name: "password", type: "password", autocomplete: "new-password" });
    const problem = h("p", { class: "alert", role: "alert", hidden: true });
    const { dialog, form: box } = modal(
      t("users.reset_title", { name: user.name }),
      [field(t("users.new_password"), input, { hint: t("users.password_hint") }), problem],
      [
        { label: t("common.cancel"), value: "cancel", kind: "secondary" },
        { label: t("users.reset"), value: "save" },
      ],
    );
    box.addEventListener("submit", async (event) => {
      if (event.submitter?.value !== "save") return;
      event.preventDefault();
      clearErrors(box, problem);
      try {
        const path = `/api/users/${encodeURIComponent(user.name)}`;
        await api("POST", path, { password: input.value || null });
        dialog.close();
        await refresh();
      } catch (err) {
        showError(box, problem, err instanceof ApiError ? err : { message: t("error.network") });
      }
    });
    dialog.addEventListener("close", () => dialog.remove());
    dialog.showModal();
  }

  function row(user) {
    const self = user.name === me.name;
    const buttons = h("td", { class: "row-actions" });
    const button = (label, kind, action) => {
      const b = h("button", { type: "button", class: `${kind} small`, text: label });
      b.addEventListener("click", () => action(b));
      if (self && kind === "danger") b.disabled = true; // never lock yourself out
      buttons.append(b);
    };
    button(t("users.reset"), "secondary", () => resetPassword(user));
    if (user.role === "admin") {
      button(t("users.revoke_admin"), "danger", (b) => change(user, { role: "user" }, b));
    } else {
      button(t("users.make_admin"), "secondary", (b) => change(user, { role: "admin" }, b));
    }
    if (user.disabled) {
      button(t("users.enable"), "secondary", (b) => change(user, { disabled: false }, b));
    } else {
      button(t("users.disable"), "danger", (b) => change(user, { disabled: true }, b));
    }
    const status = [user.disabled ? t("users.disabled") : t("users.active")];
    if (!user.has_password) status.push(t("users.no_password"));
    return h(
      "tr",
      { dataset: { user: user.name, role: user.role, disabled: String(user.disabled) } },
      h("td", { "data-label": t("users.name") }, h("strong", { text: user.name })),
      h("td", { "data-label": t("users.role"), text: t(`role.${user.role}`) }),
      h("td", { "data-label": t("users.status"), text: status.join(" · ") }),
      h("td", { "data-label": t("users.created"), text: when(user.created_at) }),
      buttons,
    );
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form, alert);
    const fields = { name: name.value, role: admin.checked ? "admin" : "user" };
    if (password.value) fields.password = password.value;
    try {
      await api("POST", "/api/users", fields);
      form.reset();
      await refresh();
    } catch (err) {
      showError(form, alert, err instanceof ApiError ? err : { message: t("error.network") });
    }
  });
  await refresh();
}
