// The lecture's summary: a clear message for every state (live, assistant off, being written, failed, no
// speech, missing, ready), the summary itself with each item's cited time (a click shows that passage in the
// transcript), and the host's tools: edit, regenerate (asking before replacing edits), retry.
import { $, ApiError, el, errorText, formatDateTime, t, toast } from "./common.js";
import { lectureApi } from "./lecture-access.js";
import { clockRange } from "./lecture-time.js";
import { confirmDialog } from "./room-dialog.js";

/**
 * @typedef {{startMs: number, endMs: number, edited?: boolean}} Cited
 * @typedef {{abstract: string, keyTopics: (Cited & {topic: string})[], actionItems: (Cited & {text: string})[],
 *   qa: (Cited & {question: string, answer: string})[], kind: string, language: string}} Summary
 * @typedef {{state: string, summary?: Summary, error?: string, kind?: string, model?: string, edited: boolean,
 *   editedAt?: string, editedBy?: string, version?: number}} SummaryBlock
 */

/** What each state says, and which host action it offers. */
const STATES = {
  notStarted: { text: "summary.state.not_started" },
  live: { text: "summary.state.live" },
  assistantOff: { text: "summary.state.assistant_off" },
  pending: { text: "summary.state.pending", busy: true },
  failed: { text: "summary.state.failed", kind: "error", action: "summary.retry" },
  noSpeech: { text: "summary.state.no_speech" },
  missing: { text: "summary.state.missing", action: "summary.write_now", guest: "summary.state.missing_guest" },
};

export class SummaryPanel {
  /**
   * @param {{onCite: (startMs: number, endMs: number) => void, onChanged: (block: SummaryBlock) => void,
   *   onEdit: (block: SummaryBlock) => void}} options
   */
  constructor(options) {
    this.options = options;
    this.state = $("summary-state");
    this.body = $("summary-body");
    this.tools = $("summary-tools");
    /** @type {SummaryBlock | null} */
    this.block = null;
    this.canEdit = false;
    this.ended = false;
  }

  /** Shows the lecture's summary block; `lecture` gives who reads it and whether it has ended. */
  render(lecture) {
    this.block = lecture.summary;
    this.canEdit = !!lecture.viewer?.canEdit;
    this.ended = lecture.status === "ENDED";
    const block = this.block;
    this.tools.replaceChildren();
    if (block.state !== "ready" || !block.summary) {
      this.body.replaceChildren();
      this.showState(block);
      return;
    }
    this.state.replaceChildren();
    if (block.error) this.state.append(el("p", { class: "alert warn", text: t("summary.regenerate_failed", { error: block.error }) }));
    this.body.replaceChildren(...this.summaryNodes(block));
    if (this.canEdit && this.ended) {
      const edit = el("button", { type: "button", class: "button small", id: "summary-edit", text: t("summary.edit") });
      edit.addEventListener("click", () => this.options.onEdit(block));
      const again = el("button", { type: "button", class: "button small", id: "summary-regenerate", text: t("summary.regenerate") });
      again.addEventListener("click", () => this.regenerate(again));
      this.tools.append(edit, again);
    }
  }

  /** A state without a summary: always a sentence, and the host's way out where there is one. */
  showState(block) {
    const known = STATES[block.state] || STATES.missing;
    const text = !this.canEdit && known.guest ? known.guest : known.text;
    const box = el("div", { class: `summary-message ${known.kind === "error" ? "alert error" : "alert info"}` });
    const line = el("p", { class: known.busy ? "busy" : null }, known.busy ? el("span", { class: "spinner", "aria-hidden": "true" }) : null, el("span", { text: t(text) }));
    box.append(line);
    if (block.state === "failed" && block.error) box.append(el("p", { class: "small", text: t("summary.reason", { error: block.error }) }));
    if (known.action && this.canEdit && this.ended) {
      const button = el("button", { type: "button", class: "button primary", id: "summary-regenerate", text: t(known.action) });
      button.addEventListener("click", () => this.regenerate(button));
      box.append(el("p", { class: "actions" }, button));
    }
    this.state.replaceChildren(box);
  }

  /** @param {SummaryBlock} block */
  summaryNodes(block) {
    const s = block.summary;
    const nodes = [];
    if (s.abstract) nodes.push(el("p", { class: "abstract", text: s.abstract }));
    const section = (key, items, render) => {
      if (!items.length) return;
      nodes.push(el("h3", { text: t(key) }), el("ul", { class: "plain-list cited-items" }, ...items.map(render)));
    };
    section("summary.key_topics", s.keyTopics, (item) => this.itemNode(item, el("span", { class: "item-text", text: item.topic })));
    section("summary.action_items", s.actionItems, (item) => this.itemNode(item, el("span", { class: "item-text", text: item.text })));
    section("summary.qa", s.qa, (item) =>
      this.itemNode(
        item,
        el("span", { class: "item-text" }, el("strong", { class: "question", text: item.question }), item.answer ? el("span", { class: "answer", text: item.answer }) : el("span", { class: "answer muted", text: t("summary.no_answer") })),
      ),
    );
    if (!nodes.length) nodes.push(el("p", { class: "muted", text: t("summary.empty") }));
    nodes.push(el("p", { class: "summary-source muted small", text: this.sourceText(block) }));
    return nodes;
  }

  /** One cited item: a button that shows its passage in the transcript. */
  itemNode(item, content) {
    const time = clockRange(item.startMs, item.endMs);
    const button = el(
      "button",
      { type: "button", class: "cite-item", "data-start-ms": item.startMs, "data-end-ms": item.endMs, title: t("summary.show_in_transcript", { time }) },
      content,
      el("span", { class: "item-meta" }, el("span", { class: "cite-time", text: time }), item.edited ? el("span", { class: "pill edited", text: t("summary.edited") }) : null),
    );
    button.addEventListener("click", () => this.options.onCite(item.startMs, item.endMs));
    return el("li", {}, button);
  }

  sourceText(block) {
    const made = block.kind === "llm" ? t("summary.by_llm", { model: block.model || "AI" }) : t("summary.by_extract");
    if (!block.edited) return made;
    return `${made} ${t("summary.edited_by", { name: block.editedBy || "—", when: formatDateTime(block.editedAt) })}`;
  }

  /** Regenerates (or retries); edits are replaced only after the host says so. */
  async regenerate(button, replaceEdits = false) {
    button.disabled = true;
    try {
      const block = await lectureApi("POST", "/summary/regenerate", replaceEdits ? { replaceEdits: true } : undefined);
      this.options.onChanged(block);
    } catch (err) {
      button.disabled = false;
      if (err instanceof ApiError && err.code === "summary_edited") {
        const answer = await confirmDialog({ title: t("summary.replace.title"), text: t("summary.replace.text"), ok: t("summary.replace.ok") });
        if (answer.ok) await this.regenerate(button, true);
        return;
      }
      toast(errorText(err), "error");
    }
  }
}
