// The lecture's transcript: paragraphs per speaker turn, rendered once (a 3-hour lecture is ~2,000 segments),
// then only touched where something changes — the server's search (`?q=`, debounced) marks its matches and
// hides the rest with one class; a citation (a summary item, `#t=<ms>`) highlights its segments and scrolls
// there.
import { el, errorText, markMatches, setState, t } from "./common.js";
import { lectureApi } from "./lecture-access.js";
import { clock } from "./lecture-time.js";

const SEARCH_DELAY_MS = 300;

/** @typedef {{id: string, startMs: number, endMs: number, text: string, node: HTMLElement, para: HTMLElement}} Segment */

export class Transcript {
  /** @param {{body: HTMLElement, state: HTMLElement, count: HTMLElement, input: HTMLInputElement, clear: HTMLElement}} nodes */
  constructor(nodes) {
    this.nodes = nodes;
    /** @type {Segment[]} in time order */
    this.segments = [];
    /** @type {Map<string, Segment>} */
    this.byId = new Map();
    /** Segments showing a search match, and those highlighted by a citation. */
    this.marked = [];
    this.cited = [];
    this.query = "";
    this.asked = 0;
    this.timer = null;
    /** A jump asked for before the transcript arrived. */
    this.pendingJump = null;
    this.loaded = false;
    nodes.input.addEventListener("input", () => {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.search(nodes.input.value), SEARCH_DELAY_MS);
    });
    nodes.input.form.addEventListener("submit", (event) => {
      event.preventDefault();
      clearTimeout(this.timer);
      this.search(nodes.input.value);
    });
    nodes.clear.addEventListener("click", () => {
      nodes.input.value = "";
      this.search("");
      nodes.input.focus();
    });
  }

  /** Loads the whole transcript. `emptyText` says why there is none (live, assistant off, no speech). */
  async load(emptyText) {
    setState(this.nodes.state, "loading");
    try {
      const body = await lectureApi("GET", "/transcript");
      this.render(body.paragraphs);
      this.nodes.count.textContent = body.segmentCount ? t("transcript.count", { count: body.segmentCount }) : "";
      this.nodes.input.form.hidden = !body.segmentCount;
      setState(this.nodes.state, "", body.segmentCount ? "" : emptyText || t("transcript.empty"));
      this.loaded = true;
      if (this.query) this.search(this.query, true);
      if (this.pendingJump) this.jumpTo(...this.pendingJump);
    } catch (err) {
      setState(this.nodes.state, "error", errorText(err), () => this.load(emptyText));
    }
  }

  render(paragraphs) {
    this.segments = [];
    this.byId.clear();
    this.marked = [];
    this.cited = [];
    const fragment = document.createDocumentFragment();
    for (const p of paragraphs) {
      const text = el("p", { class: "para-text" });
      const para = el(
        "div",
        { class: "para", tabindex: "-1" },
        el("p", { class: "para-head" }, el("span", { class: "speaker", text: p.speakerName }), " ", el("a", { class: "para-time", href: `#t=${p.startMs}`, text: clock(p.startMs) })),
        text,
      );
      p.segments.forEach((s, i) => {
        const node = el("span", { class: "seg", "data-id": s.id, text: s.text });
        if (i) text.append(" ");
        text.append(node);
        const segment = { id: s.id, startMs: s.startMs, endMs: s.endMs, text: s.text, node, para };
        this.segments.push(segment);
        this.byId.set(s.id, segment);
      });
      fragment.append(para);
    }
    this.nodes.body.replaceChildren(fragment);
  }

  /** The range a new summary item starts with: what was last cited, else the first segment. */
  currentRange() {
    const first = this.cited[0] || this.segments[0];
    const last = this.cited[this.cited.length - 1] || first;
    return first ? { startMs: first.startMs, endMs: last.endMs } : { startMs: 0, endMs: 0 };
  }

  /** Filters to the server's matches for `text` (2+ characters), or shows everything again. */
  async search(text, force = false) {
    const query = text.trim();
    if (query === this.query && !force) return;
    const ticket = ++this.asked;
    this.query = query;
    this.nodes.clear.hidden = !query;
    if (query.length < 2) {
      this.unfilter();
      setState(this.nodes.state, "", query ? t("transcript.too_short") : "");
      return;
    }
    if (!this.loaded) return;
    setState(this.nodes.state, "loading", t("transcript.searching"));
    try {
      const body = await lectureApi("GET", `/transcript?q=${encodeURIComponent(query)}`);
      if (ticket !== this.asked) return;
      const ids = body.paragraphs.flatMap((p) => p.segments.map((s) => s.id));
      this.filter(ids, query);
      setState(this.nodes.state, "", ids.length ? t("transcript.matches", { count: ids.length, query }) : t("transcript.no_matches", { query }));
    } catch (err) {
      if (ticket !== this.asked) return;
      setState(this.nodes.state, "error", errorText(err), () => this.search(query, true));
    }
  }

  /** Shows only the matching segments (and their paragraphs), each with its time and the query marked. */
  filter(ids, query) {
    this.clearMarks();
    for (const id of ids) {
      const segment = this.byId.get(id);
      if (!segment) continue;
      segment.node.classList.add("match");
      // Its own time, as a link to the passage in context (the filter lifts when it is followed).
      const time = el("a", { class: "seg-time", href: `#t=${segment.startMs}`, text: clock(segment.startMs) });
      segment.node.replaceChildren(time, " ", ...markMatches(segment.text, query));
      segment.para.classList.add("has-match");
      this.marked.push(segment);
    }
    this.nodes.body.classList.add("filtering");
    this.nodes.body.scrollTop = 0;
  }

  unfilter() {
    this.clearMarks();
    this.nodes.body.classList.remove("filtering");
  }

  clearMarks() {
    for (const segment of this.marked) {
      segment.node.classList.remove("match");
      segment.node.textContent = segment.text;
      segment.para.classList.remove("has-match");
    }
    this.marked = [];
  }

  /**
   * Highlights the segments a citation covers (those overlapping startMs..endMs; the nearest one when none
   * does) and scrolls the first into view. A search filter is lifted first, so the passage has its context.
   */
  jumpTo(startMs, endMs = startMs) {
    if (!this.loaded) {
      this.pendingJump = [startMs, endMs];
      return;
    }
    this.pendingJump = null;
    if (!this.segments.length) return;
    if (this.query) {
      this.nodes.input.value = "";
      this.search("");
    }
    let hits = this.segments.filter((s) => s.startMs <= endMs && startMs <= s.endMs);
    if (!hits.length) {
      const distance = (s) => Math.min(Math.abs(s.startMs - startMs), Math.abs(s.endMs - startMs));
      hits = [this.segments.reduce((best, s) => (distance(s) < distance(best) ? s : best))];
    }
    for (const segment of this.cited) {
      segment.node.classList.remove("cited");
      segment.para.classList.remove("cited");
    }
    for (const segment of hits) {
      segment.node.classList.add("cited");
      segment.para.classList.add("cited");
    }
    this.cited = hits;
    // The cited words themselves go to the middle (a speaker's turn can be longer than the screen).
    const smooth = !window.matchMedia("(prefers-reduced-motion: reduce)").matches;
    hits[0].node.scrollIntoView({ block: "center", behavior: smooth ? "smooth" : "auto" });
    hits[0].para.focus({ preventScroll: true });
  }
}
