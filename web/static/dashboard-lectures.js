// The dashboard's lectures: each room's past lectures (loaded when its list is opened) and the search across
// every lecture the host gave, with links to the moment in the lecture's page.
import { $, api, el, errorText, formatDateTime, markMatches, setState, statusPill, t } from "./common.js";
import { clock, duration } from "./lecture-time.js";

const SEARCH_DELAY_MS = 300;

/** One lecture as a link line: "Lecture 3 · 2 Dec 2026, 09:00 · 1 h 20 min". */
function lectureLink(lecture) {
  const when = lecture.startedAt ? formatDateTime(lecture.startedAt) : "";
  const length = lecture.status === "ENDED" && lecture.durationMs !== null ? duration(lecture.durationMs) : "";
  return el(
    "li",
    { "data-lecture-id": lecture.id },
    el("a", { href: `/lectures/${lecture.id}`, text: t("lecture.number", { number: lecture.number }) }),
    " ",
    lecture.status === "LIVE" ? statusPill("LIVE") : null,
    el("span", { class: "muted small", text: [when, length].filter(Boolean).join(" · ") }),
  );
}

/**
 * A room's past lectures, as a disclosure: nothing is loaded until it is opened, and it loads again when
 * opened after the room's lecture count changed.
 */
export class PastLectures {
  constructor(roomId) {
    this.roomId = roomId;
    this.loadedFor = null;
    this.number = null;
    this.list = el("ol", { class: "plain-list lecture-links", reversed: true });
    this.state = el("div", { class: "state small", role: "status" });
    this.node = el("details", { class: "past-lectures" }, el("summary", { text: t("dashboard.past_lectures") }), this.state, this.list);
    this.node.addEventListener("toggle", () => {
      if (this.node.open && this.loadedFor !== this.number) this.load();
    });
  }

  /** The room's current lecture number: a new one means another lecture ended or went live. */
  setNumber(number, status) {
    this.number = `${number}:${status}`;
    if (this.node.open && this.loadedFor !== this.number) this.load();
  }

  async load() {
    const wanted = this.number;
    setState(this.state, "loading");
    try {
      const body = await api("GET", `/api/rooms/${this.roomId}/lectures`);
      this.list.replaceChildren(...body.lectures.map(lectureLink));
      setState(this.state, "", body.lectures.length ? "" : t("dashboard.no_lectures"));
      this.loadedFor = wanted;
    } catch (err) {
      setState(this.state, "error", errorText(err), () => this.load());
    }
  }
}

function hitNode(hit, query) {
  const lecture = hit.lecture;
  const where = [lecture.roomName, t("lecture.number", { number: lecture.number }), lecture.startedAt ? formatDateTime(lecture.startedAt) : ""].filter(Boolean).join(" · ");
  return el(
    "li",
    { class: "search-hit" },
    el(
      "a",
      { href: `/lectures/${lecture.id}#t=${hit.startMs}` },
      el("span", { class: "hit-where", text: where }),
      el("span", { class: "hit-line" }, el("span", { class: "hit-time", text: clock(hit.startMs) }), " ", el("strong", { text: hit.speakerName }), ": ", ...markMatches(hit.text, query)),
    ),
  );
}

/** The search box: the server searches (debounced while typing); the newest answer wins. */
export function setupSearch() {
  const input = $("search-input");
  const results = $("search-results");
  const state = $("search-state");
  let timer = null;
  let asked = 0;
  let shown = "";

  async function search() {
    clearTimeout(timer);
    const query = input.value.trim();
    if (query === shown) return;
    const ticket = ++asked;
    if (query.length < 2) {
      shown = query;
      results.replaceChildren();
      setState(state, "", query ? t("dashboard.search.too_short") : "");
      return;
    }
    setState(state, "loading", t("dashboard.search.searching"));
    try {
      const body = await api("GET", `/api/lectures?q=${encodeURIComponent(query)}`);
      if (ticket !== asked) return;
      shown = query;
      results.replaceChildren(...body.hits.map((hit) => hitNode(hit, query)));
      const count = body.truncated ? t("dashboard.search.truncated", { count: body.hits.length }) : t("dashboard.search.count", { count: body.hits.length });
      setState(state, "", body.hits.length ? count : t("dashboard.search.none", { query }));
    } catch (err) {
      if (ticket !== asked) return;
      setState(state, "error", errorText(err), search);
    }
  }

  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(search, SEARCH_DELAY_MS);
  });
  $("search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    shown = null;
    search();
  });
}
