// The room's chat: history from the API, live messages from data topic `chat`, a send box. While the media
// connection is down the panel polls the history instead, so chat keeps working without the media server.
import { $, ApiError, api, el, errorText, formatTime, setState, t } from "./common.js";
import { onData } from "./room-data.js";

const POLL_MS = 4000;

/** One chat message as a list item; `onRemove` adds the host's "remove" button. */
export function messageNode(message, { mine = false, onRemove = null } = {}) {
  const role = message.senderRole && message.senderRole !== "guest" ? el("span", { class: "role", text: t(`chat.role.${message.senderRole}`) }) : null;
  const remove = onRemove
    ? el("button", { type: "button", class: "link-button small", "aria-label": t("chat.remove_label", { name: message.senderName }), text: t("chat.remove"), onclick: onRemove })
    : null;
  return el(
    "li",
    { class: `msg${mine ? " mine" : ""}${message.deleted ? " deleted" : ""}`, "data-id": message.id },
    el("div", {}, role, el("span", { class: "who", text: message.senderName }), el("time", { class: "when", datetime: message.createdAt, text: formatTime(message.createdAt) }), remove ? " " : null, remove),
    el("p", { class: "text", text: message.deleted ? t("chat.deleted") : message.text }),
  );
}

export class Chat {
  /**
   * @param {object} options roomId; headers() for guest routes; isHost; myName; onProblem(err) for errors
   *   that end the visit (removed, banned, ended); onUnread() when a message arrives while hidden.
   */
  constructor(options) {
    this.options = options;
    this.messages = new Map();
    this.lastSeq = 0;
    this.live = false;
    this.pollTimer = null;
    this.loaded = false;
    this.log = $("chat-log");
    this.state = $("chat-state");
    this.form = $("chat-form");
    this.input = $("chat-input");
    this.error = $("chat-error");
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.send();
    });
    this.input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.send();
      }
    });
    this.input.addEventListener("input", () => this.autosize());
    onData("chat", (message) => this.add(message, true));
  }

  autosize() {
    this.input.style.height = "auto";
    this.input.style.height = `${Math.min(this.input.scrollHeight, 128)}px`;
  }

  /** Live delivery works (media connected): stop polling; otherwise poll. */
  setLive(live) {
    this.live = live;
    clearTimeout(this.pollTimer);
    if (!live) this.pollTimer = setTimeout(() => this.poll(), POLL_MS);
  }

  async start() {
    setState(this.state, "loading", t("chat.loading"));
    try {
      const body = await api("GET", `/api/rooms/${this.options.roomId}/chat?limit=200`, undefined, { headers: this.options.headers() });
      for (const message of body.messages) this.add(message, false);
      this.loaded = true;
      setState(this.state, "", this.messages.size ? "" : t("chat.empty"));
    } catch (err) {
      if (this.options.onProblem(err)) return;
      setState(this.state, "error", errorText(err), () => this.start());
    }
    this.setLive(this.live);
  }

  async poll() {
    clearTimeout(this.pollTimer);
    if (this.live) return;
    try {
      const after = this.lastSeq ? `&after=${this.lastSeq}` : "";
      const body = await api("GET", `/api/rooms/${this.options.roomId}/chat?limit=200${after}`, undefined, { headers: this.options.headers() });
      for (const message of body.messages) this.add(message, true);
      if (this.loaded) setState(this.state, "", this.messages.size ? "" : t("chat.empty"));
    } catch (err) {
      if (this.options.onProblem(err)) return;
    }
    if (!this.live) this.pollTimer = setTimeout(() => this.poll(), POLL_MS);
  }

  add(message, fresh) {
    if (!message || !message.id) return;
    if (typeof message.seq === "number") this.lastSeq = Math.max(this.lastSeq, message.seq);
    const existing = this.messages.get(message.id);
    const node = this.render(message);
    if (existing) {
      existing.replaceWith(node);
    } else {
      const nearBottom = this.log.scrollHeight - this.log.scrollTop - this.log.clientHeight < 60;
      this.log.append(node);
      if (nearBottom || !fresh) this.log.scrollTop = this.log.scrollHeight;
      if (fresh) this.options.onUnread?.();
    }
    this.messages.set(message.id, node);
    if (this.messages.size) setState(this.state);
  }

  render(message) {
    const mine = message.senderName === this.options.myName && message.senderRole === this.options.myRole;
    const onRemove = this.options.isHost && !message.deleted ? () => this.remove(message) : null;
    return messageNode(message, { mine, onRemove });
  }

  async remove(message) {
    try {
      const body = await api("DELETE", `/api/rooms/${this.options.roomId}/chat/${message.id}`);
      this.add(body.message, false);
    } catch (err) {
      this.showError(errorText(err));
    }
  }

  showError(text) {
    this.error.textContent = text;
    this.error.hidden = !text;
  }

  async send() {
    const text = this.input.value.trim();
    if (!text) return;
    this.showError("");
    const button = this.form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const body = await api("POST", `/api/rooms/${this.options.roomId}/chat`, { text }, { headers: this.options.headers() });
      this.input.value = "";
      this.autosize();
      this.add(body.message, false);
      this.log.scrollTop = this.log.scrollHeight;
    } catch (err) {
      if (this.options.onProblem(err)) return;
      if (err instanceof ApiError && err.code === "rate_limited") this.showError(t("chat.too_fast"));
      else this.showError(errorText(err));
    } finally {
      button.disabled = false;
      this.input.focus();
    }
  }
}
