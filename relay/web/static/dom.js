// Building the page from data: every piece of text goes in as text (textContent, text nodes),
// never as HTML, so a prompt like <img src=x onerror=...> shows as those characters.

export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

let ids = 0;

// A labelled control with a slot for the error the API names it in (`param`).
export function field(label, control, { hint, param } = {}) {
  if (!control.id) control.id = `f${++ids}`;
  const error = h("p", { class: "field-error", id: `${control.id}-error`, hidden: true });
  control.setAttribute("aria-describedby", error.id);
  const wrap = h(
    "div",
    { class: "field", dataset: { param: param ?? control.name ?? "" } },
    h("label", { for: control.id, text: label }),
    control,
    hint ? h("p", { class: "hint", text: hint }) : null,
    error,
  );
  return wrap;
}

// Show an API error next to the field it names, else in the form's own alert.
export function showError(form, alert, err) {
  clearErrors(form, alert);
  const param = err.param ? String(err.param).split(/[.[]/)[0] : "";
  const slot = param ? form.querySelector(`.field[data-param="${CSS.escape(param)}"]`) : null;
  const target = slot ? slot.querySelector(".field-error") : alert;
  target.textContent = err.message;
  target.hidden = false;
  if (slot) {
    slot.classList.add("invalid");
    slot.closest("details")?.setAttribute("open", "");
    slot.querySelector("input, select, textarea")?.focus();
  }
}

export function clearErrors(form, alert) {
  for (const el of form.querySelectorAll(".field-error")) {
    el.textContent = "";
    el.hidden = true;
  }
  for (const el of form.querySelectorAll(".field.invalid")) el.classList.remove("invalid");
  if (alert) {
    alert.textContent = "";
    alert.hidden = true;
  }
}

// A modal <dialog>; resolves with the button's value, or "" when dismissed.
export function modal(title, body, buttons) {
  const dialog = h("dialog", { class: "modal", "aria-label": title });
  const form = h("form", { method: "dialog" });
  const row = h("div", { class: "actions" });
  for (const { label, value, kind } of buttons) {
    row.append(h("button", { value, class: kind ?? "", type: "submit", text: label }));
  }
  form.append(h("h2", { text: title }), ...body, row);
  dialog.append(form);
  document.body.append(dialog);
  return { dialog, form };
}

export function ask(title, message, confirmLabel, cancelLabel) {
  const { dialog } = modal(title, [h("p", { text: message })], [
    { label: cancelLabel, value: "cancel", kind: "secondary" },
    { label: confirmLabel, value: "ok", kind: "danger" },
  ]);
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      resolve(dialog.returnValue === "ok");
      dialog.remove();
    });
    dialog.showModal();
  });
}

export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // not a secure context (http on a LAN address): the old way
    const area = h("textarea", { class: "offscreen", readonly: true });
    area.value = text;
    document.body.append(area);
    area.select();
    const ok = document.execCommand("copy");
    area.remove();
    return ok;
  }
}

// A table with a header row of `heads` (plain text) over `body`.
export function table(props, heads, body) {
  const row = h("tr", {}, heads.map((text) => h("th", { scope: "col", text })));
  return h("table", props, h("thead", {}, row), body);
}

export function shorten(text, max = 140) {
  const flat = String(text).replace(/\s+/g, " ").trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}
