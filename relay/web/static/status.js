// A video's status as the pages show it: the word, and a progress bar while it runs.

import { h } from "./dom.js";
import { t } from "./i18n.js";
import { active } from "./live.js";

export function statusCell(video) {
  const cell = h(
    "span",
    { class: `status s-${video.status}` },
    h("span", { class: "badge", text: t(`status.${video.status}`) }),
  );
  if (active(video)) {
    cell.append(
      h("progress", {
        max: 100, value: video.progress, "aria-label": t("video.progress"),
      }),
      h("span", { class: "percent", text: `${video.progress}%` }),
    );
  }
  return cell;
}

export function failure(error) {
  return h("p", { class: "failure" }, h("code", { text: error.code }), " ", error.message);
}
