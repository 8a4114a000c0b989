// The Cancel button of a running video, on the list and on the video's page. Offered only where
// the provider really stops the job (the model's `cancel` in /api/models): a local mark would
// leave it running, and billed.

import { api } from "./api.js";
import { ask, h } from "./dom.js";
import { t } from "./i18n.js";
import { active } from "./live.js";

export function cancelButton(video, model, done) {
  if (!active(video) || !model?.cancel) return null;
  const button = h("button", { type: "button", class: "danger", text: t("video.cancel") });
  button.addEventListener("click", () => cancel(video, button, done));
  return button;
}

async function cancel(video, button, done) {
  const labels = [t("cancel.title"), t("cancel.text"), t("video.cancel"), t("cancel.keep")];
  if (!(await ask(...labels))) return;
  button.disabled = true;
  try {
    // the answer is the video as it ended: cancelled, or what the provider had just finished
    const { data } = await api("POST", `/api/videos/${encodeURIComponent(video.id)}/cancel`);
    done(data);
  } catch (err) {
    button.disabled = false;
    button.after(h("p", { class: "alert", role: "alert", text: err.message }));
  }
}
