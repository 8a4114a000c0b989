// /dashboard/keys: the caller's API keys. A new key is shown once, here, and kept nowhere.

import { ApiError, api } from "./api.js";
import { ask, clearErrors, copyText, field, h, showError, table } from "./dom.js";
import { t, when } from "./i18n.js";

export async function render(main) {
  const label = h("input", { name: "name", maxlength: 64, autocomplete: "off" });
  const alert = h("p", { class: "alert", role: "alert", hidden: true });
  const fresh = h("div", { class: "fresh-key", hidden: true });
  const form = h(
    "form",
    { class: "card", "aria-label": t("keys.create") },
    h("h1", { text: t("title.keys") }),
    h("p", { class: "hint", text: t("keys.intro") }),
    field(t("keys.label"), label, { hint: t("keys.label_hint") }),
    alert,
    h("div", { class: "actions" }, h("button", { type: "submit", text: t("keys.create") })),
    fresh,
  );
  const body = h("tbody");
  const heads = [t("keys.label"), t("keys.prefix"), t("keys.created"), t("keys.status"), ""];
  const list = table({ class: "plain" }, heads, body);
  const empty = h("p", { class: "empty", text: t("keys.none"), hidden: true });
  main.append(
    form,
    h(
      "section",
      { class: "card", "aria-label": t("keys.list") },
      h("h2", { text: t("keys.list") }),
      list,
      empty,
    ),
  );

  async function refresh() {
    const { data } = await api("GET", "/api/keys");
    body.replaceChildren(...data.data.map(row));
    empty.hidden = data.data.length > 0;
    list.hidden = data.data.length === 0;
  }

  function row(key) {
    const status = key.active
      ? t("keys.active")
      : t("keys.revoked_at", { when: when(key.revoked_at) });
    const cell = h("td");
    if (key.active) {
      const revoke = h("button", { type: "button", class: "danger small", text: t("keys.revoke") });
      revoke.addEventListener("click", async () => {
        const sure = await ask(
          t("keys.revoke_title"),
          t("keys.revoke_text", { name: key.name || key.prefix }),
          t("keys.revoke"),
          t("common.cancel"),
        );
        if (!sure) return;
        await api("DELETE", `/api/keys/${key.id}`);
        await refresh();
      });
      cell.append(revoke);
    }
    return h(
      "tr",
      { dataset: { keyId: String(key.id), active: String(key.active) } },
      h("td", { "data-label": t("keys.label"), text: key.name || "—" }),
      h("td", { "data-label": t("keys.prefix") }, h("code", { text: `${key.prefix}…` })),
      h("td", { "data-label": t("keys.created"), text: when(key.created_at) }),
      h("td", { "data-label": t("keys.status"), text: status }),
      cell,
    );
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form, alert);
    try {
      const { data } = await api("POST", "/api/keys", label.value ? { name: label.value } : {});
      const code = h("code", { class: "secret", text: data.key });
      const copy = h("button", { type: "button", class: "secondary", text: t("keys.copy") });
      copy.addEventListener("click", async () => {
        copy.textContent = (await copyText(data.key)) ? t("copy.done") : t("copy.failed");
      });
      fresh.replaceChildren(
        h("p", { text: t("keys.shown_once") }),
        h("div", { class: "key-line" }, code, copy),
      );
      fresh.hidden = false;
      label.value = "";
      await refresh();
    } catch (err) {
      showError(form, alert, err instanceof ApiError ? err : { message: t("error.network") });
    }
  });
  await refresh();
}
