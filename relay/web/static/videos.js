// /dashboard: the create form above the list of videos (an admin's: everyone's, with owners),
// searched by prompt, paged with "Load more", unfinished rows kept live.

import { ApiError, api } from "./api.js";
import { cancelButton } from "./cancel.js";
import { clearErrors, field, h, shorten, showError, table } from "./dom.js";
import { t, when } from "./i18n.js";
import { Live, active } from "./live.js";
import { failure, statusCell } from "./status.js";

const PAGE = 20;

export async function render(main, { me }) {
  const admin = me.role === "admin";
  const { data: catalog } = await api("GET", "/api/models");
  const models = new Map(catalog.data.map((m) => [m.id, m]));
  const list = new VideoList(models, admin);
  main.append(
    h("h1", { class: "visually-hidden", text: t("title.videos") }),
    createForm(catalog, (video) => list.add(video, me.name)),
    list.section,
  );
  if (admin) list.fillOwners().catch(() => {}); // the filter keeps "Everyone"
  await list.load(true);
}

// --- the create form --------------------------------------------------------------------------

function options(select, values, preferred) {
  const keep = select.value;
  select.replaceChildren(...values.map((v) => h("option", { value: v, text: v })));
  const pick = [keep, preferred].find((v) => values.includes(v));
  if (pick) select.value = pick;
}

function createForm(catalog, created) {
  const { defaults } = catalog;
  const model = h("select", { name: "model" });
  for (const m of catalog.data) model.append(h("option", { value: m.id, text: m.id }));
  if (catalog.data.some((m) => m.id === defaults.model)) model.value = defaults.model;
  const prompt = h("textarea", { name: "prompt", rows: 3, required: true, maxlength: 32000 });
  const seconds = h("select", { name: "seconds" });
  const size = h("select", { name: "size" });
  const image = h("input", {
    name: "input_reference", type: "file", accept: "image/jpeg,image/png,image/webp",
  });
  const preview = h("img", { class: "preview", alt: t("create.preview"), hidden: true });
  const negative = h("input", { name: "negative_prompt", type: "text", maxlength: 2000 });
  const seed = h("input", { name: "seed", type: "number", min: -1, step: 1, inputmode: "numeric" });
  const alert = h("p", { class: "alert", role: "alert", hidden: true });
  const button = h("button", { type: "submit", text: t("create.submit") });
  const imageField = field(t("create.image"), image, { hint: t("create.image_hint") });
  imageField.append(preview);

  const chosen = () => catalog.data.find((m) => m.id === model.value);
  const fit = () => {
    const m = chosen();
    options(seconds, m?.seconds ?? [defaults.seconds], defaults.seconds);
    options(size, m?.sizes ?? [defaults.size], defaults.size);
    imageField.hidden = m ? !m.image_input : false;
  };
  model.addEventListener("change", fit);
  fit();

  let previewUrl = null;
  image.addEventListener("change", () => {
    if (previewUrl) URL.revokeObjectURL(previewUrl);
    const file = image.files[0];
    previewUrl = file ? URL.createObjectURL(file) : null;
    preview.hidden = !file;
    if (file) preview.src = previewUrl;
    else preview.removeAttribute("src");
  });

  const form = h(
    "form",
    { class: "card create", "aria-label": t("create.title") },
    h("h2", { text: t("create.title") }),
    field(t("create.prompt"), prompt, { hint: t("create.prompt_hint") }),
    h(
      "div",
      { class: "grid" },
      field(t("create.model"), model),
      field(t("create.seconds"), seconds),
      field(t("create.size"), size),
      imageField,
    ),
    h(
      "details",
      { class: "more" },
      h("summary", { text: t("create.more") }),
      h(
        "div",
        { class: "grid" },
        field(t("create.negative"), negative),
        field(t("create.seed"), seed),
      ),
    ),
    alert,
    h("div", { class: "actions" }, button),
  );

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form, alert);
    const body = new FormData();
    body.set("prompt", prompt.value);
    body.set("model", model.value);
    body.set("seconds", seconds.value);
    body.set("size", size.value);
    if (negative.value.trim()) body.set("negative_prompt", negative.value);
    if (seed.value !== "") body.set("seed", seed.value);
    if (image.files[0] && !imageField.hidden) body.set("input_reference", image.files[0]);
    button.disabled = true;
    try {
      const { data } = await api("POST", "/api/videos", body);
      prompt.value = "";
      image.value = "";
      image.dispatchEvent(new Event("change"));
      created(data);
    } catch (err) {
      showError(form, alert, err instanceof ApiError ? err : { message: t("error.network") });
      if (err.status === 429 && err.retryAfter) {
        alert.textContent = `${err.message} ${t("error.retry", { seconds: err.retryAfter })}`;
        alert.hidden = false;
      }
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

// --- the list ---------------------------------------------------------------------------------

function thumbnail(video, models) {
  const made = models.get(video.model)?.variants ?? [];
  const shows = video.status === "completed" && made.includes("thumbnail");
  if (!shows) return h("div", { class: "thumb empty", "aria-hidden": "true" });
  const img = h("img", {
    class: "thumb", alt: "", loading: "lazy", decoding: "async",
    src: `/v1/videos/${encodeURIComponent(video.id)}/content?variant=thumbnail`,
  });
  img.addEventListener("error", () => img.replaceWith(h("div", { class: "thumb empty" })));
  return img;
}

class VideoList {
  constructor(models, admin) {
    this.models = models;
    this.admin = admin;
    this.owners = new Map();
    this.owner = admin ? "all" : "";
    this.query = "";
    this.last = null;
    this.seq = 0;
    this.live = new Live({
      update: (video) => this.replace(video),
      gone: (id) => this.row(id)?.remove(),
    });
    const head = [t("list.video"), t("list.prompt"), t("list.model")];
    head.push(t("list.status"), t("list.created"));
    if (admin) head.push(t("list.owner"));
    this.body = h("tbody");
    this.table = table({ class: "videos" }, head, this.body);
    this.empty = h("p", { class: "empty", hidden: true });
    const more = t("list.more");
    this.more = h("button", { type: "button", class: "secondary", hidden: true, text: more });
    this.more.addEventListener("click", () => this.load(false));
    this.search = h("input", {
      type: "search", name: "q", maxlength: 1000, placeholder: t("list.search_hint"),
    });
    let timer = null;
    this.search.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        this.query = this.search.value;
        this.load(true);
      }, 250);
    });
    const tools = h("div", { class: "toolbar" }, field(t("list.search"), this.search));
    if (admin) {
      const everyone = h("option", { value: "all", text: t("list.everyone") });
      this.filter = h("select", { name: "owner" }, everyone);
      this.filter.addEventListener("change", () => {
        this.owner = this.filter.value;
        this.load(true);
      });
      tools.append(field(t("list.owner"), this.filter));
    }
    this.section = h(
      "section",
      { class: "card list", "aria-label": t("list.title") },
      h("h2", { text: admin ? t("list.title_all") : t("list.title") }),
      tools,
      this.table,
      this.empty,
      h("div", { class: "actions" }, this.more),
    );
  }

  async fillOwners() {
    const { data } = await api("GET", "/api/users");
    for (const user of data.data) {
      this.filter.append(h("option", { value: user.name, text: user.name }));
    }
  }

  async load(reset) {
    try {
      await this.fetch(reset);
    } catch (err) {
      this.more.disabled = false;
      this.empty.textContent = err.status ? err.message : t("error.network");
      this.empty.hidden = false;
    }
  }

  async fetch(reset) {
    const seq = ++this.seq;
    const params = new URLSearchParams({ limit: String(PAGE) });
    if (this.query) params.set("q", this.query);
    if (this.owner) params.set("owner", this.owner);
    if (!reset && this.last) params.set("after", this.last);
    this.more.disabled = true;
    const { data } = await api("GET", `/api/videos?${params}`);
    if (seq !== this.seq) return; // a newer search answered first
    if (this.admin && data.data.length) await this.learnOwners(data.data.map((v) => v.id));
    if (seq !== this.seq) return;
    if (reset) {
      this.live.stopAll();
      this.body.replaceChildren();
    }
    for (const video of data.data) {
      this.body.append(this.draw(video));
      this.live.watch(video);
    }
    this.last = data.last_id ?? this.last;
    this.more.hidden = !data.has_more;
    this.more.disabled = false;
    const none = this.body.children.length === 0;
    this.empty.hidden = !none;
    this.table.hidden = none;
    this.empty.textContent = this.query ? t("list.no_match", { q: this.query }) : t("list.none");
  }

  async learnOwners(ids) {
    const { data } = await api("GET", `/api/owners?ids=${ids.map(encodeURIComponent).join(",")}`);
    for (const item of data.data) this.owners.set(item.id, item.owner);
  }

  add(video, owner) {
    this.owners.set(video.id, owner);
    this.body.prepend(this.draw(video));
    this.table.hidden = false;
    this.empty.hidden = true;
    this.live.watch(video);
  }

  row(id) {
    return this.body.querySelector(`tr[data-video-id="${CSS.escape(id)}"]`);
  }

  replace(video) {
    this.row(video.id)?.replaceWith(this.draw(video));
  }

  draw(video) {
    const href = `/dashboard/videos/${encodeURIComponent(video.id)}`;
    const promptCell = h(
      "td",
      { class: "prompt", "data-label": t("list.prompt") },
      h("a", { href, title: video.prompt, text: shorten(video.prompt) }),
    );
    if (video.error) promptCell.append(failure(video.error));
    const cells = [
      h(
        "td",
        { class: "thumb-cell" },
        h("a", { href, tabindex: -1, "aria-hidden": "true" }, thumbnail(video, this.models)),
      ),
      promptCell,
      h("td", { "data-label": t("list.model"), text: video.model }),
      h(
        "td",
        { "data-label": t("list.status") },
        statusCell(video),
        cancelButton(video, this.models.get(video.model), (ended) => this.replace(ended)),
      ),
      h("td", { "data-label": t("list.created"), text: when(video.created_at) }),
    ];
    if (this.admin) {
      const owner = this.owners.get(video.id) ?? "—";
      cells.push(h("td", { "data-label": t("list.owner"), text: owner }));
    }
    return h("tr", { dataset: { videoId: video.id, status: video.status } }, cells);
  }
}
