// The admin page's AI assistant section in a real browser: the settings in effect with their defaults, saving
// only what changed, a refused value marked on its field, a reset to the defaults, and the new-room form
// following the assistant default.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Harness } from "./harness.js";

const h = new Harness();

before(async () => {
  await h.start();
});

after(async () => {
  await h.stop();
});

/** GET /api/admin/settings with the page's session. */
function settingsOf(page) {
  return page.evaluate(async () => (await fetch("/api/admin/settings")).json());
}

describe("AI settings on the admin page", { concurrency: false }, () => {
  it("shows, saves, refuses and resets the AI settings", async () => {
    const page = await h.newPage({ label: "settings" });
    await page.goto("/register");
    await page.fill("#name", "Grace Hopper");
    await page.fill("#email", "grace@uni.example");
    await page.fill("#password", "correct horse battery");
    await Promise.all([page.waitForURL("**/dashboard"), page.click("#register-form button[type=submit]")]);

    await page.goto("/admin/settings");
    await page.locator("#settings-form").waitFor();
    assert.equal(await page.isChecked("#s-assistantDefault"), true);
    assert.equal(await page.inputValue("#s-defaultLanguage"), "en");
    assert.equal(await page.inputValue("#s-summariser"), "extractive", "no [agent] llm_url: the built-in one");
    assert.match(await page.textContent("#d-defaultLanguage"), /Default: en\./);
    assert.equal(await page.locator("text=/sk-|api_key/").count(), 0, "no secrets on the page");
    assert.equal(await h.shotBoth(page, "39-admin-settings"), 0);

    // A refused value: said, and its field marked; nothing stored.
    await page.fill("#s-defaultLanguage", "Russian");
    await page.click("#settings-form button[type=submit]");
    await page.locator("#settings-error", { hasText: "code such as en or ru" }).waitFor();
    assert.equal(await page.getAttribute("#s-defaultLanguage", "aria-invalid"), "true");
    assert.equal((await settingsOf(page)).stored.defaultLanguage, null);

    // Only what changed is sent and stored.
    await page.fill("#s-defaultLanguage", "ru");
    await page.uncheck("#s-assistantDefault");
    await page.click("#settings-form button[type=submit]");
    await page.locator("#d-defaultLanguage", { hasText: "Set here; the default is en." }).waitFor();
    const saved = await settingsOf(page);
    assert.deepEqual(saved.stored, { assistantDefault: false, defaultLanguage: "ru", summaries: null, summariser: null, llmModel: null });
    await page.goto("/rooms/new");
    assert.equal(await page.isChecked("#ai"), false, "new rooms follow the assistant default");

    // Reset everything to the defaults.
    await page.goto("/admin/settings");
    await page.locator("#settings-form").waitFor();
    await page.click("#settings-reset"); // the harness accepts the confirmation
    await page.locator("#d-defaultLanguage", { hasText: "Default: en." }).waitFor();
    assert.equal(await page.inputValue("#s-defaultLanguage"), "en");
    assert.ok(Object.values((await settingsOf(page)).stored).every((v) => v === null));
  });
});
