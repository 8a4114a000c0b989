// /dashboard/videos/{id}: the player, the actions (download, copy curl, remix, cancel, delete)
// and the details; live while the video runs.

import { ApiError, api } from "./api.js";
import { cancelButton } from "./cancel.js";
import { ask, clearErrors, copyText, field, h, modal, showError } from "./dom.js";
import { exactly, t } from "./i18n.js";
import { Live, active } from "./live.js";
import { failure, statusCell } from "./status.js";

export async function render(main, { me }) {
  const id = decodeURIComponent(location.pathname.split("/").pop());
  const path = `/api/videos/${encodeURIComponent(id)}`;
  let video;
  try {
    ({ data: video } = await api("GET", path));
  } catch (err) {
    if (err.status !== 404) throw err;
    main.append(
      h("h1", { text: t("video.missing") }),
      h("p", {}, h("a", { href: "/dashboard", text: t("video.back") })),
    );
    return;
  }
  const admin = me.role === "admin";
  const [{ data: catalog }, where] = await Promise.all([
    api("GET", "/api/models"),
    admin ? api("GET", `/api/owners?ids=${encodeURIComponent(id)}`) : null,
  ]);
  const model = catalog.data.find((m) => m.id === video.model);
  const extra = where?.data.data[0] ?? null;
  const view = h("div", { class: "video-page" });
  const back = h("a", { href: "/dashboard", text: `← ${t("video.back")}` });
  main.append(h("p", { class: "crumbs" }, back), view);

  let shown = null;
  const draw = (v) => {
    // the player is made once, when the video is done: a redraw would restart it
    if (shown && shown.status === v.status && !active(v)) return;
    shown = v;
    view.replaceChildren(...page(v, { model, extra, admin, draw }));
  };
  draw(video);
  const live = new Live({ update: draw, gone: () => location.assign("/dashboard") });
  live.watch(video);
}

function content(v, variant = "") {
  return `/v1/videos/${encodeURIComponent(v.id)}/content${variant ? `?variant=${variant}` : ""}`;
}

function page(v, { model, extra, admin, draw }) {
  const player =
    v.status === "completed"
      ? h("video", { controls: true, preload: "metadata", playsinline: true, src: content(v) })
      : h(
          "div",
          { class: `placeholder s-${v.status}` },
          statusCell(v),
          v.error ? failure(v.error) : null,
        );
  return [
    h("h1", { class: "prompt-title", text: v.prompt }),
    h("div", { class: "stage", dataset: { videoId: v.id, status: v.status } }, player),
    actions(v, model, draw),
    details(v, extra, admin),
  ];
}

function curl(v) {
  if (v.status === "completed") {
    const url = v.video_url ?? `${location.origin}${content(v)}`;
    return `curl -fL -o ${v.id}.mp4 "${url}" \\\n  -H "Authorization: Bearer $RELAY_KEY"`;
  }
  return `curl "${location.origin}/v1/videos/${v.id}" \\\n  -H "Authorization: Bearer $RELAY_KEY"`;
}

function actions(v, model, draw) {
  const bar = h("div", { class: "actions video-actions" });
  if (v.status === "completed") {
    const file = `${v.id}.mp4`;
    const text = t("video.download");
    bar.append(h("a", { class: "button", href: content(v), download: file, text }));
  }
  const command = curl(v);
  const copy = h("button", { type: "button", class: "secondary", text: t("video.copy_curl") });
  copy.addEventListener("click", async () => {
    const ok = await copyText(command);
    copy.textContent = ok ? t("copy.done") : t("copy.failed");
    setTimeout(() => { copy.textContent = t("video.copy_curl"); }, 2000);
  });
  bar.append(copy);
  if (v.status === "completed" && model?.remix) {
    const remix = h("button", { type: "button", class: "secondary", text: t("video.remix") });
    remix.addEventListener("click", () => remixDialog(v));
    bar.append(remix);
  }
  const stop = cancelButton(v, model, draw);
  if (stop) bar.append(stop);
  if (!active(v)) {
    const del = h("button", { type: "button", class: "danger", text: t("video.delete") });
    del.addEventListener("click", () => remove(v, del));
    bar.append(del);
  }
  return h(
    "section",
    { class: "card", "aria-label": t("video.actions") },
    bar,
    h("p", { class: "hint", text: t("video.curl_hint") }),
    h("pre", { class: "curl" }, h("code", { text: command })),
  );
}

function remixDialog(v) {
  const prompt = h("textarea", { name: "prompt", rows: 3, required: true, maxlength: 32000 });
  const alert = h("p", { class: "alert", role: "alert", hidden: true });
  const { dialog, form } = modal(t("remix.title"), [field(t("create.prompt"), prompt), alert], [
    { label: t("common.cancel"), value: "cancel", kind: "secondary" },
    { label: t("video.remix"), value: "remix" },
  ]);
  form.addEventListener("submit", async (event) => {
    if (event.submitter?.value !== "remix") return; // cancel closes the dialog
    event.preventDefault();
    clearErrors(form, alert);
    try {
      const path = `/api/videos/${encodeURIComponent(v.id)}/remix`;
      const { data } = await api("POST", path, { prompt: prompt.value });
      location.assign(`/dashboard/videos/${encodeURIComponent(data.id)}`);
    } catch (err) {
      showError(form, alert, err instanceof ApiError ? err : { message: t("error.network") });
    }
  });
  dialog.addEventListener("close", () => dialog.remove());
  dialog.showModal();
}

async function remove(v, button) {
  const labels = [t("delete.title"), t("delete.text"), t("video.delete"), t("common.cancel")];
  const sure = await ask(...labels);
  if (!sure) return;
  button.disabled = true;
  try {
    await api("DELETE", `/api/videos/${encodeURIComponent(v.id)}`);
    location.assign("/dashboard");
  } catch (err) {
    button.disabled = false;
    button.after(h("p", { class: "alert", role: "alert", text: err.message }));
  }
}

function details(v, extra, admin) {
  const rows = [
    ["id", h("code", { text: v.id })],
    ["model", v.model],
    ["seconds", v.seconds],
    ["size", v.size],
    ["status", t(`status.${v.status}`)],
    ["created", exactly(v.created_at)],
    ["completed", exactly(v.completed_at)],
  ];
  if (v.expires_at) rows.push(["expires", exactly(v.expires_at)]);
  if (v.remixed_from_video_id) {
    const source = v.remixed_from_video_id;
    const href = `/dashboard/videos/${encodeURIComponent(source)}`;
    rows.push(["remixed_from", h("a", { href, text: source })]);
  }
  if (v.error) rows.push(["error", `${v.error.code}: ${v.error.message}`]);
  if (admin && extra) rows.push(["owner", extra.owner], ["channel", extra.channel]);
  return h(
    "section",
    { class: "card" },
    h("h2", { text: t("video.details") }),
    h(
      "dl",
      { class: "details" },
      rows.map(([key, value]) => [h("dt", { text: t(`detail.${key}`) }), h("dd", {}, value)]),
    ),
  );
}
