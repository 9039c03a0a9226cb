// Google Drive on the account page in a real browser, against the Google double (its consent screen answers
// at once): connect (the browser goes to "Google" and comes back connected), the refused case, disconnect
// (revoked at "Google"), and the section hidden on an instance without an OAuth client.
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

async function register(harness, label) {
  const page = await harness.newPage({ label });
  await page.goto("/register");
  await page.fill("#name", "Ada Lovelace");
  await page.fill("#email", "ada@uni.example");
  await page.fill("#password", "correct horse battery");
  await Promise.all([page.waitForURL("**/dashboard"), page.click("#register-form button[type=submit]")]);
  await page.goto("/account");
  await page.locator("#password-form").waitFor();
  return page;
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
    assert.deepEqual(plain.problems, []);
  });
});
