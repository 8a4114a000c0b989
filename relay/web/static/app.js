// The entry module of every page: the catalogue, the frame, then the page's own module.
// <html data-page> names the page; data-user and data-role the signed-in person.

import { h } from "./dom.js";
import { loadCatalogue, t } from "./i18n.js";
import { frame } from "./layout.js";

const PAGES = {
  login: () => import("./login.js"),
  videos: () => import("./videos.js"),
  video: () => import("./video.js"),
  keys: () => import("./keys.js"),
  channels: () => import("./channels.js"),
  users: () => import("./users.js"),
};

async function main() {
  await loadCatalogue();
  const root = document.documentElement;
  const page = root.dataset.page;
  const me = root.dataset.user ? { name: root.dataset.user, role: root.dataset.role } : null;
  const area = frame(me, page);
  const load = PAGES[page];
  if (!load) {
    area.append(h("h1", { text: t("forbidden.title") }), h("p", { text: t("forbidden.text") }));
    return;
  }
  const module = await load();
  await module.render(area, { me });
}

main().catch((err) => {
  const app = document.getElementById("app");
  app.append(h("p", { class: "alert", role: "alert", text: `${t("error.page")} ${err.message}` }));
});
