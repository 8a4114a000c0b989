// What every page shares: the top bar (links, language, theme, sign out) and the main area.

import { api } from "./api.js";
import { h } from "./dom.js";
import { LANGUAGES, lang, t } from "./i18n.js";

const YEAR = 365 * 24 * 3600;
const root = document.documentElement;

function remember(name, value) {
  const age = value ? YEAR : 0;
  document.cookie = `${name}=${value}; Path=/; Max-Age=${age}; SameSite=Lax`;
}

function languageSwitch() {
  const select = h("select", { id: "lang", "aria-label": t("switch.language") });
  for (const code of LANGUAGES) {
    select.append(h("option", { value: code, selected: code === lang, text: t(`lang.${code}`) }));
  }
  select.addEventListener("change", () => {
    remember("relay_lang", select.value);
    location.reload();
  });
  return select;
}

function themeSwitch() {
  const current = root.dataset.theme ?? "auto";
  const select = h("select", { id: "theme", "aria-label": t("switch.theme") });
  for (const mode of ["auto", "light", "dark"]) {
    const text = t(`theme.${mode}`);
    select.append(h("option", { value: mode, selected: mode === current, text }));
  }
  select.addEventListener("change", () => {
    if (select.value === "auto") {
      delete root.dataset.theme;
      remember("relay_theme", "");
    } else {
      root.dataset.theme = select.value;
      remember("relay_theme", select.value);
    }
  });
  return select;
}

function nav(me, page) {
  const links = [
    ["videos", "/dashboard"],
    ["keys", "/dashboard/keys"],
  ];
  if (me.role === "admin") {
    links.push(["channels", "/dashboard/channels"], ["users", "/dashboard/users"]);
  }
  const current = page === "video" ? "videos" : page;
  return h(
    "nav",
    { "aria-label": t("nav.label") },
    links.map(([name, href]) =>
      h("a", { href, "aria-current": name === current ? "page" : null, text: t(`nav.${name}`) }),
    ),
  );
}

async function signOut(button) {
  button.disabled = true;
  try {
    await api("POST", "/api/logout", undefined, { signIn: false });
  } finally {
    location.assign("/login");
  }
}

export function frame(me, page) {
  const tools = h("div", { class: "tools" }, languageSwitch(), themeSwitch());
  if (me) {
    const out = h("button", { type: "button", class: "secondary", text: t("nav.signout") });
    out.addEventListener("click", () => signOut(out));
    tools.append(h("span", { class: "who", title: t(`role.${me.role}`), text: me.name }), out);
  }
  const header = h(
    "header",
    { class: "top" },
    h("a", { class: "brand", href: me ? "/dashboard" : "/login", text: t("app.title") }),
    me ? nav(me, page) : null,
    tools,
  );
  const main = h("main", { id: "main" });
  document.getElementById("app").replaceChildren(header, main);
  document.title = `${t(`title.${page}`)} · ${t("app.title")}`;
  return main;
}
