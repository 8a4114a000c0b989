// Live progress: each unfinished video is asked about again when the relay says
// (`openai-poll-after-ms`, the time until its next upstream check), and never after it ends.
// Finished videos cost nothing; a hidden tab asks nothing until it is shown again.

import { api } from "./api.js";

const FLOOR_MS = 500; // whatever a header says, at most two asks a second per video
const CEILING_MS = 120_000;
const FALLBACK_MS = 5_000; // no header (an error): try again later, backing off

export const active = (video) => video.status === "queued" || video.status === "in_progress";

export function pace(headers) {
  const ms = Number(headers.get("openai-poll-after-ms"));
  return Number.isFinite(ms) && ms > 0 ? Math.min(CEILING_MS, Math.max(FLOOR_MS, ms)) : FALLBACK_MS;
}

export class Live {
  constructor({ update, gone }) {
    this.update = update;
    this.gone = gone;
    this.timers = new Map(); // id -> timeout
    this.failures = new Map();
    this.waiting = new Set(); // due while the tab was hidden
    document.addEventListener("visibilitychange", () => {
      if (document.hidden) return;
      for (const id of this.waiting) this.ask(id);
      this.waiting.clear();
    });
  }

  watch(video, delay = FLOOR_MS) {
    if (!active(video)) return this.stop(video.id);
    if (!this.timers.has(video.id)) this.later(video.id, delay);
  }

  stop(id) {
    clearTimeout(this.timers.get(id));
    this.timers.delete(id);
    this.waiting.delete(id);
    this.failures.delete(id);
  }

  stopAll() {
    for (const id of [...this.timers.keys()]) this.stop(id);
  }

  later(id, delay) {
    clearTimeout(this.timers.get(id));
    this.timers.set(id, setTimeout(() => this.ask(id), delay));
  }

  async ask(id) {
    if (!this.timers.has(id)) return; // stopped meanwhile
    if (document.hidden) {
      this.waiting.add(id);
      return;
    }
    try {
      const { data, headers } = await api("GET", `/api/videos/${encodeURIComponent(id)}`);
      if (!this.timers.has(id)) return;
      this.failures.delete(id);
      this.update(data);
      if (active(data)) this.later(id, pace(headers));
      else this.stop(id);
    } catch (err) {
      if (!this.timers.has(id)) return;
      if (err.status === 404) {
        this.stop(id);
        this.gone(id);
        return;
      }
      const n = (this.failures.get(id) ?? 0) + 1;
      this.failures.set(id, n);
      this.later(id, Math.min(CEILING_MS, FALLBACK_MS * 2 ** (n - 1)));
    }
  }
}
