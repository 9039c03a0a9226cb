// Google Drive on the account page in a real browser, against the Google double (its consent screen answers
// at once): connect (the browser goes to "Google" and comes back connected), the refused case, disconnect
// (revoked at "Google"), and the section hidden on an instance without an OAuth client; "Export to Drive" on
// the lecture page (the way to connect first, the export and its re-export into the same files, consent revoked
// at "Google", hidden for others and without an OAuth client).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Harness } from "./harness.js";

const h = new Harness();
const plain = new Harness();

before(async () => {
  await h.start({ google: true });
  await plain.start();
});

after(async () => {
  await h.stop();
  await plain.stop();
});

async function register(harness, label, email = "ada@uni.example") {
  const page = await harness.newPage({ label });
  await page.goto("/register");
  await page.fill("#name", "Ada Lovelace");
  await page.fill("#email", email);
  await page.fill("#password", "correct horse battery");
  await Promise.all([page.waitForURL("**/dashboard"), page.click("#register-form button[type=submit]")]);
  await page.goto("/account");
  await page.locator("#password-form").waitFor();
  return page;
}

/** A room of the signed-in host whose first lecture has ended (through the API: the page is the subject). */
async function endedLecture(page, name) {
  return page.evaluate(async (roomName) => {
    const post = (url, body) =>
      fetch(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body || {}) }).then((r) => r.json());
    const room = await post("/api/rooms", { name: roomName });
    await post(`/api/rooms/${room.id}/end`);
    return room.lectureId;
  }, name);
}

describe("Google Drive on the account page", { concurrency: false }, () => {
  it("connects through Google's consent screen and disconnects", async () => {
    const page = await register(h, "drive");
    await page.locator("#drive-state", { hasText: "Not connected." }).waitFor();
    assert.equal(await h.shotBoth(page, "60-account-drive"), 0);

    await Promise.all([page.waitForURL("**/account"), page.click("#drive-connect")]);
    await page.locator("#drive-message", { hasText: "Google Drive is connected." }).waitFor();
    await page.locator("#drive-state", { hasText: "Connected to ada.lovelace@gmail.example" }).waitFor();
    assert.equal(new URL(page.url()).search, "", "the outcome leaves the address bar");
    assert.ok(await page.isHidden("#drive-connect"));
    assert.equal(await h.shotBoth(page, "61-account-drive-connected"), 0);
    const status = await page.evaluate(() => fetch("/api/drive").then((r) => r.json()));
    assert.equal(status.connected, true);

    await page.click("#drive-disconnect");
    await page.locator("#drive-message", { hasText: "confctl's access was revoked at Google" }).waitFor();
    await page.locator("#drive-state", { hasText: "Not connected." }).waitFor();
    assert.ok(await page.isVisible("#drive-connect"));

    // A forged return from "Google" is refused and said so.
    await page.goto("/auth/google/callback?state=forged&code=4/0forged");
    await page.locator("#drive-message", { hasText: "was not started here" }).waitFor();
    assert.equal(await h.shotBoth(page, "62-account-drive-refused"), 0);
    assert.deepEqual(h.problems, []);
  });

  it("hides Drive where no OAuth client is configured", async () => {
    const page = await register(plain, "no-drive");
    assert.ok(await page.isHidden("#drive"));
    const lecture = await endedLecture(page, "Optics");
    await page.goto(`/lectures/${lecture}`);
    await page.locator("#lecture-name", { hasText: "Optics" }).waitFor();
    assert.ok(await page.isHidden("#drive-export"), "no Export to Drive without an OAuth client");
    assert.deepEqual(plain.problems, []);
  });

  it("exports a lecture to Drive from its page", async () => {
    const page = await register(h, "drive-export", "grace@uni.example");
    const lecture = await endedLecture(page, "Optics");
    await page.goto(`/lectures/${lecture}`);
    // Not connected yet: the way to the account page instead of the button.
    const connect = page.locator("#drive-connect-link", { hasText: "Connect Google Drive" });
    await connect.waitFor();
    assert.ok(await page.isHidden("#drive-export-button"));
    await page.locator("#drive-export-status", { hasText: "connect your Drive on your account page first" }).waitFor();
    assert.equal(await h.shotBoth(page, "63-lecture-drive-connect-first"), 0);
    await Promise.all([page.waitForURL("**/account"), connect.click()]);
    await Promise.all([page.waitForURL("**/account"), page.click("#drive-connect")]);
    await page.locator("#drive-message", { hasText: "Google Drive is connected." }).waitFor();

    await page.goto(`/lectures/${lecture}`);
    const button = page.locator("#drive-export-button");
    await button.waitFor();
    await button.click();
    const result = page.locator("#drive-export-result", { hasText: "Exported 7 files to confctl/Optics/" });
    await result.waitFor();
    const href = await page.getAttribute("#drive-export-open", "href");
    assert.match(href, /^https:\/\/drive\.google\.com\/drive\/folders\/\S+$/);
    assert.equal(await h.shotBoth(page, "64-lecture-drive-exported"), 0);
    const files = (await h.googleDouble("GET", "/_double/files")).body;
    const pdfs = files.filter((f) => f.name === "lecture.pdf");
    assert.equal(pdfs.length, 1);
    assert.ok(pdfs[0].size > 1000, "a rendered PDF");

    // Again: the same files are replaced, none added.
    await button.click();
    await page.locator("#drive-export-result", { hasText: "7 of them replaced the earlier export's files" }).waitFor();
    const again = (await h.googleDouble("GET", "/_double/files")).body;
    assert.equal(again.length, files.length, "no copies");
    assert.equal(again.find((f) => f.id === pdfs[0].id).versions, 2);

    // Grace removed confctl at Google: the page says to reconnect and shows the way.
    assert.equal((await h.googleDouble("POST", "/_double/revoke-consent")).status, 204);
    await button.click();
    await page.locator("#drive-export-error", { hasText: "Reconnect Google Drive on your account page" }).waitFor();
    await page.locator("#drive-connect-link", { hasText: "Reconnect Google Drive" }).waitFor();
    assert.ok(await page.isHidden("#drive-export-button"));
    assert.equal(await h.shotBoth(page, "65-lecture-drive-reconnect"), 0);

    // Another reader of the lecture (here the instance's admin, Ada) is not offered the export.
    const admin = await h.newPage({ label: "drive-admin" });
    await admin.goto("/login");
    await admin.fill("#email", "ada@uni.example");
    await admin.fill("#password", "correct horse battery");
    await Promise.all([admin.waitForURL("**/dashboard"), admin.click("#login-form button[type=submit]")]);
    await admin.goto(`/lectures/${lecture}`);
    await admin.locator("#lecture-name", { hasText: "Optics" }).waitFor();
    assert.ok(await admin.isHidden("#drive-export"));
    assert.deepEqual(h.problems, []);
  });
});
