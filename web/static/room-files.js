// Shared files: the list (API, plus announcements on data topic `files`), uploads through a signed URL with
// a progress bar (request → PUT → complete), and downloads (guests prove their session with a header, so
// their downloads go through fetch).
import { $, ApiError, api, el, errorText, formatBytes, formatDateTime, setState, t } from "./common.js";
import { onData } from "./room-data.js";

export class Files {
  /** @param {object} options roomId; headers(); isHost; onProblem(err). */
  constructor(options) {
    this.options = options;
    this.files = new Map();
    this.live = false;
    this.pollTimer = null;
    this.list = $("files-list");
    this.state = $("files-state");
    this.input = $("upload-input");
    this.progress = $("upload-progress");
    this.status = $("upload-status");
    if (this.input) this.input.addEventListener("change", () => this.upload());
    onData("files", (file) => this.add(file));
  }

  /** New files arrive on the data topic while media is connected; without it the list is re-read. */
  setLive(live) {
    this.live = live;
    clearTimeout(this.pollTimer);
    if (!live) this.pollTimer = setTimeout(() => this.refresh(), 10000);
  }

  async start() {
    setState(this.state, "loading");
    await this.refresh(true);
  }

  async refresh(first = false) {
    clearTimeout(this.pollTimer);
    try {
      const body = await api("GET", `/api/rooms/${this.options.roomId}/files`, undefined, { headers: this.options.headers() });
      for (const file of [...body.files].reverse()) if (!this.files.has(file.id)) this.add(file);
      setState(this.state, "", this.files.size ? "" : t("files.empty"));
    } catch (err) {
      if (this.options.onProblem?.(err)) return;
      if (first) setState(this.state, "error", errorText(err), () => this.start());
    }
    this.setLive(this.live);
  }

  add(file) {
    if (!file || !file.id) return;
    const download = el("button", { type: "button", class: "button small", text: t("files.download"), "aria-label": t("files.download_label", { name: file.fileName }) });
    download.addEventListener("click", () => this.download(file, download));
    const node = el(
      "li",
      { "data-id": file.id },
      el("div", {}, el("div", { class: "file-name", text: file.fileName }), el("div", { class: "file-meta", text: `${formatBytes(file.size)} · ${file.uploaderName || ""} · ${formatDateTime(file.createdAt)}` })),
      download,
    );
    const existing = this.files.get(file.id);
    if (existing) existing.replaceWith(node);
    else this.list.prepend(node);
    this.files.set(file.id, node);
    setState(this.state);
  }

  async download(file, button) {
    // Built from the id, never taken from the message: a link always points at confctl itself.
    const url = `/api/files/${encodeURIComponent(file.id)}/download`;
    const headers = this.options.headers();
    if (!headers["X-Confctl-Session"]) {
      // Hosts carry their cookie: an ordinary link keeps the browser's own download handling.
      const a = el("a", { href: url, download: file.fileName });
      document.body.append(a);
      a.click();
      a.remove();
      return;
    }
    button.disabled = true;
    this.status.textContent = t("files.downloading", { name: file.fileName });
    try {
      const response = await fetch(url, { headers, credentials: "same-origin" });
      if (!response.ok) {
        let code = `http_${response.status}`;
        let message = response.statusText;
        try {
          const body = await response.json();
          code = body.error.code;
          message = body.error.message;
        } catch {
          // Not JSON: keep the status line.
        }
        throw new ApiError(response.status, code, message);
      }
      const blob = await response.blob();
      const href = URL.createObjectURL(blob);
      const a = el("a", { href, download: file.fileName });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(href), 10000);
      this.status.textContent = "";
    } catch (err) {
      if (this.options.onProblem?.(err)) return;
      this.status.textContent = err instanceof ApiError ? errorText(err) : t("error.network");
    } finally {
      button.disabled = false;
    }
  }

  /** PUT with progress events (fetch has none for uploads). */
  put(ticket, file) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open(ticket.method || "PUT", ticket.uploadUrl);
      for (const [name, value] of Object.entries(ticket.headers || {})) xhr.setRequestHeader(name, value);
      xhr.upload.addEventListener("progress", (event) => {
        if (event.lengthComputable) this.progress.value = Math.round((event.loaded / event.total) * 100);
      });
      xhr.addEventListener("load", () => (xhr.status >= 200 && xhr.status < 300 ? resolve() : reject(new ApiError(xhr.status, `http_${xhr.status}`, t("files.upload_failed")))));
      xhr.addEventListener("error", () => reject(new ApiError(0, "network", t("error.network"))));
      xhr.send(file);
    });
  }

  async upload() {
    const file = this.input.files && this.input.files[0];
    if (!file) return;
    const { roomId } = this.options;
    this.progress.hidden = false;
    this.progress.value = 0;
    this.status.textContent = t("files.uploading", { name: file.name });
    try {
      const ticket = await api(
        "POST",
        `/api/rooms/${roomId}/files`,
        { fileName: file.name, contentType: file.type || "application/octet-stream", size: file.size },
        { headers: this.options.headers() },
      );
      await this.put(ticket, file);
      const done = await api("POST", `/api/rooms/${roomId}/files/${ticket.fileId}/complete`, undefined, { headers: this.options.headers() });
      this.add(done.file || done);
      this.status.textContent = t("files.uploaded", { name: file.name });
    } catch (err) {
      if (this.options.onProblem?.(err)) return;
      this.status.textContent = errorText(err);
    } finally {
      this.progress.hidden = true;
      this.input.value = "";
    }
  }
}
