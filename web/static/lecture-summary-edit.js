// The host's summary editor: the abstract, and key topics, action items and Q&A to add, change or remove,
// each with its cited time typed as m:ss or h:mm:ss. Saved with the version it was opened on; the server
// checks the text and the citations, and its answer is shown at the field it names.
import { $, ApiError, busy, el, errorText, t } from "./common.js";
import { lectureApi } from "./lecture-access.js";
import { clock, parseClock } from "./lecture-time.js";

/** The three lists: their item fields (the first is the one the server requires). */
const LISTS = {
  keyTopics: { fields: ["topic"], add: "summary.edit.add_topic" },
  actionItems: { fields: ["text"], add: "summary.edit.add_action" },
  qa: { fields: ["question", "answer"], add: "summary.edit.add_qa" },
};
const FIELD_LABELS = { topic: "summary.edit.topic", text: "summary.edit.action", question: "summary.edit.question", answer: "summary.edit.answer" };
const LEGENDS = { keyTopics: "summary.key_topics", actionItems: "summary.action_items", qa: "summary.qa" };

/** The one hint that explains how times are written, for every time field. */
const TIME_HINT = "edit-time-hint";

let serial = 0;

/**
 * One item being edited. Times the host did not touch keep their exact milliseconds (the inputs show whole
 * seconds); a typed end covers its whole second.
 */
class Row {
  constructor(list, item, onRemove) {
    this.list = list;
    this.original = { startMs: item.startMs, endMs: item.endMs, start: clock(item.startMs), end: clock(item.endMs) };
    this.inputs = {};
    const n = ++serial;
    const texts = LISTS[list].fields.map((field) => {
      const id = `edit-${n}-${field}`;
      const input = el(field === "topic" ? "input" : "textarea", { id, class: `edit-${field}`, maxlength: "2000", rows: field === "topic" ? null : "2" });
      input.value = item[field] || "";
      this.inputs[field] = input;
      return el("div", { class: "edit-field" }, el("label", { for: id, text: t(FIELD_LABELS[field]) }), input);
    });
    const times = [["start", this.original.start], ["end", this.original.end]].map(([key, value]) => {
      const id = `edit-${n}-${key}`;
      const input = el("input", { id, class: `edit-time edit-${key}`, value, autocomplete: "off", placeholder: "m:ss", "aria-describedby": TIME_HINT });
      this.inputs[key] = input;
      return el("div", { class: "edit-field time" }, el("label", { for: id, text: t(`summary.edit.${key}`) }), input);
    });
    const remove = el("button", { type: "button", class: "button small danger-outline remove", text: t("summary.edit.remove") });
    remove.addEventListener("click", () => onRemove(this));
    this.error = el("p", { class: "field-error", id: `edit-${n}-error`, role: "alert", hidden: true });
    this.node = el("li", { class: "edit-item" }, ...texts, el("div", { class: "edit-row" }, ...times, remove), this.error);
  }

  /** The item to send, or throws {input, text} for a time that is not one. */
  read() {
    const item = {};
    for (const field of LISTS[this.list].fields) item[field] = this.inputs[field].value;
    const time = (key, inclusive) => {
      const input = this.inputs[key];
      if (input.value.trim() === this.original[key]) return this.original[`${key}Ms`];
      const seconds = parseClock(input.value);
      if (seconds === null) throw { input, text: t("summary.edit.bad_time") };
      return seconds * 1000 + (inclusive ? 999 : 0);
    };
    item.startMs = time("start", false);
    item.endMs = time("end", true);
    if (item.endMs < item.startMs) throw { input: this.inputs.end, text: t("summary.edit.end_before_start") };
    return item;
  }

  showError(input, text) {
    this.error.textContent = text;
    this.error.hidden = false;
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-errormessage", this.error.id);
    input.focus();
  }

  clearError() {
    this.error.hidden = true;
    for (const input of Object.values(this.inputs)) input.removeAttribute("aria-invalid");
  }
}

export class SummaryEditor {
  /**
   * @param {{defaultRange: () => {startMs: number, endMs: number}, onSaved: (block: object) => void,
   *   onClosed: () => void}} options
   */
  constructor(options) {
    this.options = options;
    this.form = $("summary-editor");
    this.rows = { keyTopics: [], actionItems: [], qa: [] };
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.save();
    });
  }

  get isOpen() {
    return !this.form.hidden;
  }

  /** Opens the editor on a ready summary block. */
  open(block) {
    this.block = block;
    this.lists = {};
    this.rows = { keyTopics: [], actionItems: [], qa: [] };
    const summary = block.summary;
    this.abstract = el("textarea", { id: "edit-abstract", rows: "4", maxlength: "2000" });
    this.abstract.value = summary.abstract || "";
    this.abstractError = el("p", { class: "field-error", id: "edit-abstract-error", role: "alert", hidden: true });
    this.error = el("div", { class: "alert error", role: "alert", hidden: true });
    const sections = Object.keys(LISTS).map((list) => {
      this.lists[list] = el("ol", { class: "plain-list edit-items" });
      for (const item of summary[list]) this.addRow(list, item);
      const add = el("button", { type: "button", class: "button small", id: `add-${list}`, text: t(LISTS[list].add) });
      add.addEventListener("click", () => {
        const row = this.addRow(list, { ...this.options.defaultRange() });
        row.inputs[LISTS[list].fields[0]].focus();
      });
      const error = el("p", { class: "field-error", role: "alert", hidden: true });
      this.lists[list].error = error;
      return el("fieldset", { class: "edit-list", "data-list": list }, el("legend", { text: t(LEGENDS[list]) }), error, this.lists[list], add);
    });
    const save = el("button", { type: "submit", class: "button primary", id: "summary-save", text: t("summary.edit.save") });
    const cancel = el("button", { type: "button", class: "button", text: t("common.cancel") });
    cancel.addEventListener("click", () => this.close());
    this.form.replaceChildren(
      el("h3", { text: t("summary.edit.heading") }),
      el("p", { class: "hint", id: TIME_HINT, text: t("summary.edit.time_hint") }),
      el("div", { class: "edit-field" }, el("label", { for: "edit-abstract", text: t("summary.edit.abstract") }), this.abstract),
      this.abstractError,
      ...sections,
      this.error,
      el("p", { class: "actions" }, save, cancel),
    );
    this.form.hidden = false;
    this.abstract.focus();
  }

  close() {
    this.form.hidden = true;
    this.form.replaceChildren();
    this.options.onClosed();
  }

  addRow(list, item) {
    const row = new Row(list, item, (gone) => {
      this.rows[list] = this.rows[list].filter((r) => r !== gone);
      gone.node.remove();
    });
    this.rows[list].push(row);
    this.lists[list].append(row.node);
    return row;
  }

  clearErrors() {
    this.error.hidden = true;
    this.abstractError.hidden = true;
    this.abstract.removeAttribute("aria-invalid");
    for (const list of Object.keys(LISTS)) {
      this.lists[list].error.hidden = true;
      for (const row of this.rows[list]) row.clearError();
    }
  }

  /** The summary as the API wants it, or null after showing a time that is not one at its field. */
  read() {
    const summary = { abstract: this.abstract.value, kind: this.block.summary.kind, language: this.block.summary.language };
    for (const list of Object.keys(LISTS)) {
      summary[list] = [];
      for (const row of this.rows[list]) {
        try {
          summary[list].push(row.read());
        } catch (problem) {
          row.showError(problem.input, problem.text);
          return null;
        }
      }
    }
    return summary;
  }

  async save() {
    this.clearErrors();
    const summary = this.read();
    if (!summary) return;
    try {
      const block = await busy($("summary-save"), () => lectureApi("PUT", "/summary", { summary, version: this.block.version }));
      this.form.hidden = true;
      this.form.replaceChildren();
      this.options.onSaved(block);
    } catch (err) {
      this.showServerError(err);
    }
  }

  /** A 400 names the field (`keyTopics[2].topic`, `qa[0]`, `abstract`): the message goes there. */
  showServerError(err) {
    if (!(err instanceof ApiError) || !["invalid_summary", "invalid_citation"].includes(err.code)) {
      this.error.textContent = err instanceof ApiError && err.code === "summary_changed" ? t("summary.edit.changed") : errorText(err);
      this.error.hidden = false;
      return;
    }
    const text = err.code === "invalid_citation" ? t("summary.edit.bad_citation") : /must not be empty/.test(err.message) ? t("summary.edit.required") : /items/.test(err.message) ? t("summary.edit.too_many") : t("summary.edit.too_long");
    const match = /^(abstract|keyTopics|actionItems|qa)(?:\[(\d+)\])?(?:\.(\w+))?/.exec(err.message);
    if (match && match[1] === "abstract") {
      this.abstractError.textContent = text;
      this.abstractError.hidden = false;
      this.abstract.setAttribute("aria-invalid", "true");
      this.abstract.setAttribute("aria-errormessage", "edit-abstract-error");
      this.abstract.focus();
      return;
    }
    const row = match && match[2] !== undefined ? this.rows[match[1]][Number(match[2])] : null;
    if (row) {
      const input = row.inputs[match[3]] || row.inputs.start;
      row.showError(input, text);
      return;
    }
    const list = match && this.lists[match[1]];
    const box = list ? list.error : this.error;
    box.textContent = text;
    box.hidden = false;
  }
}
