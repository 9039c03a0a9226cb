// The side panel: its tabs (click, or arrow keys, Home and End between them), whether it is open (open by
// default on wide screens, closed on narrow ones, reset when the width crosses the breakpoint), and the
// unread marks on the chat tab and on the panel's button. Owns which tab is shown.
import { $ } from "./common.js";

export class SidePanel {
  constructor() {
    this.tabs = [...document.querySelectorAll('[role="tab"]')];
    this.currentTab = "tab-chat";
    for (const tab of this.tabs) {
      tab.addEventListener("click", () => this.selectTab(tab.id));
      tab.addEventListener("keydown", (event) => {
        const tabs = this.tabs;
        const i = tabs.indexOf(tab);
        const next = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: tabs.length - 1 }[event.key];
        if (next === undefined) return;
        event.preventDefault();
        this.selectTab(tabs[(next + tabs.length) % tabs.length].id, true);
      });
    }
    const narrow = window.matchMedia("(max-width: 900px)");
    this.setOpen(!narrow.matches);
    // Crossing the breakpoint (rotating a tablet, resizing a window) resets the panel to that width's default.
    narrow.addEventListener("change", (event) => this.setOpen(!event.matches));
    $("btn-side").addEventListener("click", () => this.setOpen($("side").classList.contains("closed")));
    $("close-side").addEventListener("click", () => {
      this.setOpen(false);
      $("btn-side").focus();
    });
  }

  selectTab(id, focus = false) {
    this.currentTab = id;
    for (const tab of this.tabs) {
      const selected = tab.id === id;
      tab.setAttribute("aria-selected", String(selected));
      tab.tabIndex = selected ? 0 : -1;
      $(tab.getAttribute("aria-controls")).hidden = !selected;
      if (selected && focus) tab.focus();
    }
    if (id === "tab-chat") {
      $("chat-unread").hidden = true;
      $("side-badge").hidden = true;
    }
  }

  setOpen(open) {
    $("side").classList.toggle("closed", !open);
    $("btn-side").setAttribute("aria-expanded", String(open));
    if (open) $("side-badge").hidden = true;
  }

  visible() {
    return !$("side").classList.contains("closed");
  }

  /** A chat message arrived: mark the chat tab and the panel's button unless the chat is in view. */
  markUnread() {
    if (this.currentTab !== "tab-chat" || !this.visible()) {
      $("chat-unread").hidden = this.currentTab === "tab-chat";
      $("chat-unread").textContent = "•";
      $("side-badge").hidden = this.visible();
    }
  }
}
