// One confirmation dialog for the room's risky actions (mute all, kick, ban, reject, end): a real <dialog>,
// so focus is trapped and Escape cancels. Resolves with {ok, reason}.
import { $ } from "./common.js";

export function confirmDialog({ title, text, ok, reason = false, reasonLabel }) {
  const dialog = $("confirm-dialog");
  $("confirm-title").textContent = title;
  $("confirm-text").textContent = text || "";
  $("confirm-ok").textContent = ok;
  $("confirm-reason-row").hidden = !reason;
  const input = $("confirm-reason");
  input.value = "";
  if (reasonLabel) input.labels[0].textContent = reasonLabel;
  // Enter in the reason field means "confirm", not the form's first button ("cancel").
  input.onkeydown = (event) => {
    if (event.key === "Enter") {
      event.preventDefault();
      dialog.close("ok");
    }
  };
  return new Promise((resolve) => {
    dialog.addEventListener(
      "close",
      () => resolve({ ok: dialog.returnValue === "ok", reason: input.value.trim() }),
      { once: true },
    );
    dialog.returnValue = "";
    dialog.showModal();
    (reason ? input : $("confirm-ok")).focus();
  });
}
