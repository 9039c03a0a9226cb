// The host's share links: create one with an expiry (its address is shown once, to copy), see every link
// with its state and last use, revoke one.
import { $, busy, copyText, el, errorText, formatDateTime, setState, showError, t, toast } from "./common.js";
import { lectureApi } from "./lecture-access.js";
import { confirmDialog } from "./room-dialog.js";

export class SharePanel {
  constructor() {
    this.section = $("share-section");
    this.started = false;
  }

  /** Shown to hosts and admins only; everyone else never sees the section. */
  start(canShare) {
    this.section.hidden = !canShare;
    if (!canShare || this.started) return;
    this.started = true;
    $("share-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.create(event.submitter || $("share-form").querySelector("button"));
    });
    $("share-copy").addEventListener("click", () => copyText($("share-url").value, $("share-url")));
    this.load();
  }

  async create(button) {
    showError($("share-error"), "");
    try {
      const share = await busy(button, () => lectureApi("POST", "/shares", { expiresIn: $("share-expiry").value }));
      $("share-url").value = `${location.origin}${share.path}`;
      $("share-created").hidden = false;
      $("share-url").select();
      this.load();
    } catch (err) {
      showError($("share-error"), errorText(err));
    }
  }

  async load() {
    const state = $("share-state");
    setState(state, "loading");
    try {
      const body = await lectureApi("GET", "/shares");
      $("share-list").replaceChildren(...body.shares.map((share) => this.row(share)));
      setState(state, "", body.shares.length ? "" : t("share.none"));
    } catch (err) {
      setState(state, "error", errorText(err), () => this.load());
    }
  }

  row(share) {
    const pill = el("span", { class: `pill ${share.state === "active" ? "live" : "ended"}`, text: t(`share.state.${share.state}`) });
    const details = [
      t("share.created_at", { when: formatDateTime(share.createdAt) }),
      share.state === "revoked" ? t("share.revoked_at", { when: formatDateTime(share.revokedAt) }) : t("share.expires_at", { when: formatDateTime(share.expiresAt) }),
      share.lastUsedAt ? t("share.last_used", { when: formatDateTime(share.lastUsedAt) }) : t("share.never_used"),
    ];
    const revoke =
      share.state === "active"
        ? el("button", { type: "button", class: "button small danger-outline", text: t("share.revoke"), "aria-label": t("share.revoke_label", { when: formatDateTime(share.createdAt) }) })
        : null;
    revoke?.addEventListener("click", () => this.revoke(share, revoke));
    return el("li", { class: "share", "data-share-id": share.id }, el("div", {}, pill, " ", el("span", { class: "small muted", text: details.join(" · ") })), revoke);
  }

  async revoke(share, button) {
    const answer = await confirmDialog({ title: t("share.revoke_title"), text: t("share.revoke_text"), ok: t("share.revoke") });
    if (!answer.ok) return;
    try {
      await busy(button, () => lectureApi("DELETE", `/shares/${encodeURIComponent(share.id)}`));
      toast(t("share.revoked"));
    } catch (err) {
      toast(errorText(err), "error");
    }
    this.load();
  }
}
