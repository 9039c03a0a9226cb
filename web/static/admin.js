// The admin area: users (list, create, role, disable, password reset), all rooms with live counts, the AI
// assistant's settings, and the audit log with filters and paging.
import { $, ApiError, api, busy, data, el, errorText, formatDateTime, setState, showError, statusPill, t, toast, user } from "./common.js";

function handleAuth(err) {
  if (err instanceof ApiError && err.status === 401) {
    location.assign(`/login?next=${encodeURIComponent(location.pathname)}`);
    return true;
  }
  return false;
}

/** Shows a generated password once, with a way to copy it. */
function showSecret(text, password) {
  const box = $("secret-box");
  const field = el("input", { readonly: true, value: password, "aria-label": t("admin.users.password_label"), class: "secret" });
  const copy = el("button", { type: "button", class: "button small", text: t("common.copy") });
  copy.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(password);
      toast(t("common.copied"));
    } catch {
      field.select();
    }
  });
  box.replaceChildren(el("p", { text }), el("div", { class: "copy-row" }, field, copy));
  box.hidden = false;
  box.scrollIntoView({ block: "nearest" });
}

// ----- users -----

async function loadUsers() {
  const state = $("users-state");
  setState(state, "loading");
  try {
    const body = await api("GET", "/api/admin/users");
    renderUsers(body.users);
    setState(state);
    $("users").hidden = false;
  } catch (err) {
    if (handleAuth(err)) return;
    setState(state, "error", errorText(err), loadUsers);
  }
}

function renderUsers(users) {
  const body = $("users").querySelector("tbody");
  body.replaceChildren(
    ...users.map((u) => {
      const self = user && u.id === user.id;
      const role = el(
        "select",
        { "aria-label": t("admin.users.role_of", { name: u.name }), disabled: self },
        ...["HOST", "ADMIN"].map((r) => el("option", { value: r, selected: u.role === r, text: t(`role.${r}`) })),
      );
      role.addEventListener("change", () => update(u, { role: role.value }, role));
      const toggle = el("button", { type: "button", class: `button small${u.disabled ? "" : " danger-outline"}`, disabled: self, text: u.disabled ? t("admin.users.enable") : t("admin.users.disable") });
      toggle.addEventListener("click", () => update(u, { disabled: !u.disabled }, toggle));
      const reset = el("button", { type: "button", class: "button small", text: t("admin.users.reset") });
      reset.addEventListener("click", () => resetPassword(u, reset));
      return el(
        "tr",
        { "data-user-id": u.id },
        el("td", {}, el("strong", { text: u.name }), self ? el("span", { class: "muted small", text: ` ${t("people.you")}` }) : null),
        el("td", { text: u.email }),
        el("td", {}, role),
        el("td", {}, el("span", { class: `pill ${u.disabled ? "bad" : "live"}`, text: u.disabled ? t("admin.users.disabled") : t("admin.users.active") })),
        el("td", {}, el("div", { class: "actions" }, toggle, reset)),
      );
    }),
  );
}

async function update(u, patch, control) {
  if (patch.disabled === true && !confirm(t("admin.users.disable_confirm", { name: u.name }))) return;
  try {
    await busy(control, () => api("PATCH", `/api/admin/users/${u.id}`, patch));
    toast(t("admin.users.updated", { name: u.name }));
  } catch (err) {
    toast(errorText(err), "error");
  }
  loadUsers();
}

async function resetPassword(u, button) {
  if (!confirm(t("admin.users.reset_confirm", { name: u.name }))) return;
  try {
    const body = await busy(button, () => api("POST", `/api/admin/users/${u.id}/password`, {}));
    if (body && body.password) showSecret(t("admin.users.reset_done", { name: u.name }), body.password);
    else toast(t("admin.users.updated", { name: u.name }));
  } catch (err) {
    toast(errorText(err), "error");
  }
}

function setupUsers() {
  const form = $("create-user");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const box = $("create-error");
    const body = {
      name: $("new-name").value.trim(),
      email: $("new-email").value.trim(),
      role: $("new-role").value,
    };
    const password = $("new-password").value;
    if (password) body.password = password;
    if (!body.name) return showError(box, t("register.need_name"));
    if (!body.email.includes("@")) return showError(box, t("error.code.invalid_email"));
    showError(box, "");
    try {
      const created = await busy(form.querySelector("button[type=submit]"), () => api("POST", "/api/admin/users", body));
      form.reset();
      $("create-user-box").open = false;
      if (created.password) showSecret(t("admin.users.created_with", { name: created.user.name }), created.password);
      else toast(t("admin.users.created", { name: created.user.name }));
      loadUsers();
    } catch (err) {
      showError(box, errorText(err));
    }
  });
  loadUsers();
}

// ----- rooms -----

let roomsTimer = null;

async function loadRooms() {
  clearTimeout(roomsTimer);
  const state = $("rooms-state");
  try {
    const body = await api("GET", "/api/dashboard/rooms?all=true");
    const open = body.rooms.filter((r) => r.status !== "ARCHIVED");
    const rows = open.map((r) =>
      el(
        "tr",
        { "data-room-id": r.id },
        el("td", {}, el("strong", { text: r.name })),
        el("td", {}, statusPill(r.status)),
        el("td", { class: "num", text: r.participants ?? "—" }),
        el("td", { class: "num", text: r.waiting }),
        el("td", { text: formatDateTime(r.startedAt || r.createdAt) }),
        el("td", {}, el("div", { class: "actions" }, el("a", { class: "button small", href: `/rooms/${r.id}`, text: t("dashboard.enter") }), el("a", { class: "button small", href: `/rooms/${r.id}/settings`, text: t("dashboard.settings") }))),
      ),
    );
    $("admin-rooms").querySelector("tbody").replaceChildren(...rows);
    $("admin-rooms").hidden = rows.length === 0;
    $("media-warning").hidden = body.mediaServerReachable;
    setState(state, "", rows.length ? "" : t("admin.rooms.none"));
  } catch (err) {
    if (handleAuth(err)) return;
    setState(state, "error", errorText(err), loadRooms);
  }
  roomsTimer = setTimeout(loadRooms, 10000);
}

// ----- AI settings -----

const SETTINGS = ["assistantDefault", "defaultLanguage", "summaries", "summariser", "llmModel"];
let settingsNow = null;

function settingText(name, value) {
  if (typeof value === "boolean") return value ? t("admin.settings.on") : t("admin.settings.off");
  if (name === "summariser") return t(`admin.settings.summariser_${value}`);
  return value;
}

function settingField(name) {
  return $(`s-${name}`);
}

function readSetting(name) {
  const field = settingField(name);
  return field.type === "checkbox" ? field.checked : field.value.trim();
}

function fillSettings(view) {
  settingsNow = view.settings;
  for (const name of SETTINGS) {
    const field = settingField(name);
    if (field.type === "checkbox") field.checked = view.settings[name];
    else field.value = view.settings[name];
    field.removeAttribute("aria-invalid");
    const value = settingText(name, view.defaults[name]);
    const stored = view.stored[name] !== null && view.stored[name] !== undefined;
    $(`d-${name}`).textContent = t(stored ? "admin.settings.default_stored" : "admin.settings.default", { value });
  }
}

async function loadSettings() {
  const state = $("settings-state");
  setState(state, "loading");
  try {
    fillSettings(await api("GET", "/api/admin/settings"));
    setState(state);
    $("settings-form").hidden = false;
  } catch (err) {
    if (handleAuth(err)) return;
    setState(state, "error", errorText(err), loadSettings);
  }
}

async function saveSettings(patch, button) {
  const box = $("settings-error");
  try {
    fillSettings(await busy(button, () => api("PATCH", "/api/admin/settings", patch)));
    showError(box, "");
    toast(t("admin.settings.saved"));
  } catch (err) {
    // The server names the field it refused; mark it.
    const field = SETTINGS.find((name) => err instanceof ApiError && err.message.includes(name));
    if (field) settingField(field).setAttribute("aria-invalid", "true");
    showError(box, errorText(err));
  }
}

function setupSettings() {
  const form = $("settings-form");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    // Only what changed is sent: a setting left alone keeps following its default.
    const patch = Object.fromEntries(SETTINGS.filter((name) => readSetting(name) !== settingsNow[name]).map((name) => [name, readSetting(name)]));
    if (Object.keys(patch).length === 0) return toast(t("admin.settings.unchanged"));
    saveSettings(patch, form.querySelector("button[type=submit]"));
  });
  $("settings-reset").addEventListener("click", (event) => {
    if (!confirm(t("admin.settings.reset_confirm"))) return;
    saveSettings(Object.fromEntries(SETTINGS.map((name) => [name, null])), event.currentTarget);
  });
  loadSettings();
}

// ----- audit -----

let nextBefore = null;
const knownActions = new Set();

function auditQuery(before) {
  const params = new URLSearchParams();
  const action = $("f-action").value.trim();
  const roomId = $("f-room").value.trim();
  const actor = $("f-actor").value;
  const since = $("f-since").value;
  if (action) params.set("action", action);
  if (roomId) params.set("room", roomId);
  if (actor) params.set("actor", actor);
  if (since) params.set("since", new Date(`${since}T00:00:00`).toISOString());
  if (before) params.set("before", String(before));
  params.set("limit", "100");
  return params.toString();
}

function auditRow(entry) {
  const target = [entry.targetType, entry.targetId].filter(Boolean).join(" ");
  const details = entry.details && Object.keys(entry.details).length ? JSON.stringify(entry.details) : "";
  knownActions.add(entry.action);
  return el(
    "tr",
    {},
    el("td", {}, el("time", { datetime: entry.at, text: formatDateTime(entry.at) })),
    el("td", {}, entry.actorLabel, entry.ip ? el("div", { class: "muted small", text: entry.ip }) : null),
    el("td", {}, el("code", { text: entry.action })),
    el("td", { class: "details-cell", text: target || "—" }),
    el("td", { class: "details-cell", text: details || "—" }),
  );
}

async function loadAudit(append) {
  const state = $("audit-state");
  const more = $("audit-more");
  setState(state, "loading");
  try {
    const body = await api("GET", `/api/admin/audit?${auditQuery(append ? nextBefore : null)}`);
    const rows = body.entries.map(auditRow);
    const tbody = $("audit").querySelector("tbody");
    if (append) tbody.append(...rows);
    else tbody.replaceChildren(...rows);
    nextBefore = body.nextBefore;
    more.hidden = !nextBefore;
    $("audit").hidden = tbody.children.length === 0;
    setState(state, "", tbody.children.length ? "" : t("admin.audit.none"));
    $("known-actions").replaceChildren(...[...knownActions].sort().map((a) => el("option", { value: a })));
  } catch (err) {
    if (handleAuth(err)) return;
    setState(state, "error", errorText(err), () => loadAudit(append));
  }
}

async function setupAudit() {
  $("audit-filter").addEventListener("submit", (event) => {
    event.preventDefault();
    loadAudit(false);
  });
  $("audit-filter").addEventListener("reset", () => setTimeout(() => loadAudit(false), 0));
  $("audit-more").addEventListener("click", () => loadAudit(true));
  // The actor filter lists accounts by name; the log itself keeps ids.
  try {
    const body = await api("GET", "/api/admin/users");
    $("f-actor").append(...body.users.map((u) => el("option", { value: u.id, text: `${u.name} <${u.email}>` })));
  } catch {
    // The filter still works without names.
  }
  loadAudit(false);
}

({ users: setupUsers, rooms: loadRooms, settings: setupSettings, audit: setupAudit })[data.section]?.();
