// "Export to Drive" on the lecture page (`POST /api/lectures/{id}/drive-export`): offered to the lecture's
// host once it has ended, where the server has Google Drive set up. A host whose Drive is not connected — or
// whose consent Google no longer honours — is sent to the account page to connect it.
import { $, ApiError, api, busy, data, el, errorText, t } from "./common.js";
import { lectureApi } from "./lecture-access.js";

/** Set up once: the page re-renders its records when a live lecture ends. */
let wired = false;

/** Shows the button (connected) or the way to the account page (not connected, or to reconnect). */
function showConnected(connected, reconnect = false) {
  $("drive-export-button").hidden = !connected;
  const link = $("drive-connect-link");
  link.hidden = connected;
  link.textContent = t(reconnect ? "lecture.drive.reconnect" : "lecture.drive.connect");
  $("drive-export-status").textContent = connected || reconnect ? "" : t("lecture.drive.not_connected");
}

async function exportNow(button) {
  const status = $("drive-export-status");
  const result = $("drive-export-result");
  const error = $("drive-export-error");
  result.hidden = true;
  error.hidden = true;
  status.textContent = t("lecture.drive.exporting");
  try {
    const done = await busy(button, () => lectureApi("POST", "/drive-export"));
    status.textContent = "";
    const updated = done.files.filter((f) => f.updated).length;
    const said = t("lecture.drive.done", { count: done.files.length, path: done.folderPath });
    result.replaceChildren(
      el("p", { text: updated ? `${said} ${t("lecture.drive.updated", { count: updated })}` : said }),
      el("a", { id: "drive-export-open", href: done.folderUrl, target: "_blank", rel: "noopener", text: t("lecture.drive.open") }),
    );
    result.hidden = false;
  } catch (err) {
    status.textContent = "";
    error.textContent = errorText(err);
    error.hidden = false;
    const code = err instanceof ApiError ? err.code : "";
    if (code === "drive_reconnect" || code === "drive_not_connected") showConnected(false, code === "drive_reconnect");
    if (code === "drive_not_configured") $("drive-export").hidden = true;
  }
}

/** Offers the export to the host of an ended lecture, where Drive is set up. */
export async function renderDriveExport(lecture) {
  const offered = Boolean(data.driveConfigured) && lecture.viewer.role === "host" && lecture.status === "ENDED";
  $("drive-export").hidden = !offered;
  if (!offered || wired) return;
  wired = true;
  const button = $("drive-export-button");
  button.addEventListener("click", () => exportNow(button));
  try {
    showConnected((await api("GET", "/api/drive")).connected);
  } catch {
    // Not knowing is no reason to hide the button: the export itself says what is wrong.
    showConnected(true);
  }
}
