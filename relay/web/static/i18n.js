// The words of the pages: one catalogue per language (i18n/<lang>.json), chosen by the relay
// from the language switch's cookie or Accept-Language and named in <html lang>.

export const lang = document.documentElement.lang || "en";
export const LANGUAGES = ["en", "zh-CN"];
let messages = {};

export async function loadCatalogue() {
  const resp = await fetch(new URL(`./i18n/${lang}.json`, import.meta.url));
  messages = await resp.json();
}

export function t(key, vars = {}) {
  const text = messages[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in vars ? String(vars[name]) : whole));
}

const dateTime = new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeStyle: "short" });
const thisYear = new Intl.DateTimeFormat(lang, {
  month: "short",
  day: "numeric",
  hour: "numeric",
  minute: "2-digit",
});
const today = new Intl.DateTimeFormat(lang, { hour: "numeric", minute: "2-digit" });
const timeOnly = new Intl.DateTimeFormat(lang, { timeStyle: "medium" });

// a time as short as is clear: today's by the clock, this year's without the year
export function when(unix) {
  if (!unix) return "—";
  const date = new Date(unix * 1000);
  const now = new Date();
  if (date.toDateString() === now.toDateString()) return today.format(date);
  if (date.getFullYear() === now.getFullYear()) return thisYear.format(date);
  return dateTime.format(date);
}

export function exactly(unix) {
  return unix ? dateTime.format(new Date(unix * 1000)) : "—";
}

export function at(unix) {
  return unix ? timeOnly.format(new Date(unix * 1000)) : "—";
}
