// Sign in, register, change password and connect Google Drive: forms that post JSON and say clearly what went
// wrong.
import { $, ApiError, api, busy, data, errorText, formatDateTime, showError, t } from "./common.js";

function fieldError(input, message) {
  input.setAttribute("aria-invalid", "true");
  input.focus();
  return message;
}

function clearInvalid(form) {
  for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
}

function setupLogin() {
  const form = $("login-form");
  const box = $("form-error");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearInvalid(form);
    const email = $("email");
    const password = $("password");
    if (!email.value.trim()) return showError(box, fieldError(email, t("login.need_email")));
    if (!password.value) return showError(box, fieldError(password, t("login.need_password")));
    showError(box, "");
    try {
      await busy(form.querySelector("button[type=submit]"), () =>
        api("POST", "/api/auth/login", { email: email.value.trim(), password: password.value }),
      );
      location.assign(data.next || "/dashboard");
    } catch (err) {
      showError(box, errorText(err));
      password.value = "";
      password.focus();
    }
  });
  $("email").focus();
}

function setupRegister() {
  const form = $("register-form");
  const box = $("form-error");
  if (data.state === "closed") {
    $("register-closed").hidden = false;
    return;
  }
  if (data.state === "first") $("register-first").hidden = false;
  $("setup-code-field").hidden = !data.setupCodeRequired;
  form.hidden = false;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearInvalid(form);
    const name = $("name");
    const email = $("email");
    const password = $("password");
    if (!name.value.trim()) return showError(box, fieldError(name, t("register.need_name")));
    if (!email.value.includes("@")) return showError(box, fieldError(email, t("error.code.invalid_email")));
    if ([...password.value].length < 8) return showError(box, fieldError(password, t("error.code.weak_password")));
    showError(box, "");
    const body = { name: name.value.trim(), email: email.value.trim(), password: password.value };
    if (data.setupCodeRequired) body.setupCode = $("setup-code").value.trim();
    try {
      await busy(form.querySelector("button[type=submit]"), () => api("POST", "/api/auth/register", body));
      location.assign("/dashboard");
    } catch (err) {
      showError(box, errorText(err));
      box.focus?.();
    }
  });
  $("name").focus();
}

function setupAccount() {
  const form = $("password-form");
  const box = $("form-error");
  const done = $("form-ok");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearInvalid(form);
    done.hidden = true;
    const current = $("current");
    const fresh = $("new");
    if (!current.value) return showError(box, fieldError(current, t("login.need_password")));
    if ([...fresh.value].length < 8) return showError(box, fieldError(fresh, t("error.code.weak_password")));
    showError(box, "");
    try {
      await busy(form.querySelector("button[type=submit]"), () =>
        api("POST", "/api/auth/password", { currentPassword: current.value, newPassword: fresh.value }),
      );
      form.reset();
      done.hidden = false;
    } catch (err) {
      showError(box, errorText(err));
    }
  });
}

// Google Drive: connecting leaves for Google's consent screen and comes back with `?drive=connected` or
// `?drive=<error code>`; the token never reaches this page.
function setupDrive() {
  if (!data.driveConfigured) return;
  $("drive").hidden = false;
  const message = $("drive-message");
  const state = $("drive-state");
  const connect = $("drive-connect");
  const disconnect = $("drive-disconnect");
  const say = (text, kind) => {
    message.textContent = text;
    message.className = `alert ${kind}`;
    message.hidden = !text;
  };
  const render = (status) => {
    connect.hidden = status.connected;
    disconnect.hidden = !status.connected;
    if (!status.connected) state.textContent = t("account.drive.not_connected");
    else if (status.email) {
      state.textContent = t("account.drive.connected_as", { email: status.email, date: formatDateTime(status.connectedAt) });
    } else state.textContent = t("account.drive.connected_since", { date: formatDateTime(status.connectedAt) });
  };
  const load = async () => {
    try {
      render(await api("GET", "/api/drive"));
    } catch (err) {
      say(errorText(err), "error");
    }
  };
  const outcome = new URLSearchParams(location.search).get("drive");
  if (outcome === "connected") say(t("account.drive.connected"), "ok");
  else if (outcome) say(errorText(new ApiError(0, outcome, t("error.unexpected"))), "error");
  if (outcome) history.replaceState(null, "", location.pathname);
  connect.addEventListener("click", async () => {
    say("", "ok");
    try {
      const { authorizeUrl } = await busy(connect, () => api("POST", "/api/drive/connect"));
      location.assign(authorizeUrl);
    } catch (err) {
      say(errorText(err), "error");
    }
  });
  disconnect.addEventListener("click", async () => {
    say("", "ok");
    try {
      const { revoked } = await busy(disconnect, () => api("DELETE", "/api/drive"));
      say(t(revoked ? "account.drive.disconnected" : "account.drive.disconnected_not_revoked"), revoked ? "ok" : "error");
    } catch (err) {
      say(errorText(err), "error");
    }
    await load();
  });
  load();
}

({ login: setupLogin, register: setupRegister, account: setupAccount })[data.page]?.();
if (data.page === "account") setupDrive();
