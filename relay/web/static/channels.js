// /dashboard/channels (admins): the channel table as the relay sees it, refreshed while shown.

import { api } from "./api.js";
import { h, table } from "./dom.js";
import { at, t, when } from "./i18n.js";

const EVERY_MS = 5000;

function state(ch) {
  const word = t(`state.${ch.state}`);
  if (!ch.until) return word;
  // a pause that has ended: the next request to it is the probe
  if (ch.until * 1000 <= Date.now()) return `${word}, ${t("channel.probing")}`;
  return `${word} ${t("channel.until", { time: at(ch.until) })}`;
}

function row(ch) {
  const last = ch.last_error
    ? [
        h("code", { text: ch.last_error.class }),
        " ",
        h("span", { class: "muted", text: when(ch.last_error.at) }),
      ]
    : "—";
  return h(
    "tr",
    { dataset: { channel: ch.name, state: ch.state } },
    h("td", { "data-label": t("channel.name") }, h("strong", { text: ch.name })),
    h("td", { "data-label": t("channel.provider"), text: ch.provider }),
    h("td", { "data-label": t("channel.models"), text: ch.models.join(", ") }),
    h(
      "td",
      { "data-label": t("channel.state") },
      h("span", { class: `badge state-${ch.state}`, text: state(ch) }),
    ),
    h("td", {
      "data-label": t("channel.in_flight"),
      text: `${ch.in_flight} / ${ch.limit ?? "∞"}`,
    }),
    h("td", { "data-label": t("channel.last_error") }, last),
  );
}

export async function render(main) {
  const body = h("tbody");
  const head = ["name", "provider", "models", "state", "in_flight", "last_error"];
  main.append(
    h(
      "section",
      { class: "card" },
      h("h1", { text: t("title.channels") }),
      h("p", { class: "hint", text: t("channel.intro") }),
      table({ class: "plain channels" }, head.map((k) => t(`channel.${k}`)), body),
    ),
  );
  const problem = h("p", { class: "alert", role: "alert", hidden: true });
  main.querySelector(".card").append(problem);
  const refresh = async () => {
    try {
      if (!document.hidden) {
        const { data } = await api("GET", "/api/channels");
        body.replaceChildren(...data.data.map(row));
        problem.hidden = true;
      }
    } catch (err) {
      problem.textContent = err.status ? err.message : t("error.network");
      problem.hidden = false;
    }
    setTimeout(refresh, EVERY_MS);
  };
  await refresh();
}
