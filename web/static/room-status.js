// The room's page states: the connection pill in the header, and the overlay that ends (or pauses) the visit
// over the whole room, with its link buttons. Stateless: whoever ends the visit decides what it says.
import { $, el, t } from "./common.js";

/** The header's pill: `kind` "live" (green), "bad" (red) or "" (neutral). */
export function setConnState(kind, text) {
  const pill = $("conn-state");
  pill.textContent = text;
  pill.classList.toggle("live", kind === "live");
  pill.classList.toggle("bad", kind === "bad");
}

/** A state that ends (or pauses) the visit, over the whole room. */
export function overlay(titleKey, text, actions = []) {
  $("room-problem-title").textContent = t(titleKey);
  $("room-problem-text").textContent = text;
  $("room-problem-actions").replaceChildren(...actions);
  $("room-problem").hidden = false;
  $("media-banner").hidden = true;
  document.title = `${t(titleKey)} · confctl`;
  $("room-problem-title").setAttribute("tabindex", "-1");
  $("room-problem-title").focus();
}

export function linkButton(href, key, primary = false) {
  return el("a", { class: `button${primary ? " primary" : ""}`, href, text: t(key) });
}
