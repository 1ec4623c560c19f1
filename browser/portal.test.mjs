// The portal in a real browser: headless Chromium driven by playwright-core. Run by
// browser/run.sh, which starts keyward and creates the user and service account named
// in the environment:
//
//   PORTAL_URL               keyward's base URL (http://127.0.0.1:PORT)
//   PORTAL_USERNAME          a user with a password
//   PORTAL_PASSWORD          that password
//   PORTAL_SERVICE_ACCOUNT   a service account's username
//   PORTAL_MANAGER           an API Token Manager (role token-manager) with PORTAL_PASSWORD
//   PORTAL_ADMIN             an administrator (role admin) with PORTAL_PASSWORD
//   PORTAL_CHROMIUM          the browser (default: KEYWARD_CHROMIUM or /usr/bin/chromium)
//   PORTAL_SCREENSHOTS       where to write a screenshot of each page
//
// Prints `ok   <what>` or `FAIL <what>: <why>` per test; exits 1 if any failed.

import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";

function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`portal.test.mjs: ${name} is not set (run browser/run.sh)`);
    process.exit(2);
  }
  return value;
}

const URL_ = required("PORTAL_URL").replace(/\/$/, "");
const USERNAME = required("PORTAL_USERNAME");
const PASSWORD = required("PORTAL_PASSWORD");
const SERVICE_ACCOUNT = required("PORTAL_SERVICE_ACCOUNT");
const MANAGER = required("PORTAL_MANAGER");
const ADMIN = required("PORTAL_ADMIN");
const SHOTS = process.env.PORTAL_SCREENSHOTS || "screenshots";
const CHROMIUM = process.env.PORTAL_CHROMIUM || process.env.KEYWARD_CHROMIUM || "/usr/bin/chromium";
mkdirSync(SHOTS, { recursive: true });

let failures = 0;

async function test(what, body) {
  try {
    await body();
    console.log(`ok   ${what}`);
  } catch (error) {
    failures += 1;
    console.log(`FAIL ${what}: ${(error && error.message ? error.message : String(error)).split("\n")[0]}`);
  }
}

function check(condition, message) {
  if (!condition) throw new Error(message);
}

async function screenshot(page, name) {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

// Playwright launches the browser with a fresh, temporary profile (user-data-dir) that
// it removes on close; every test below also gets its own context (cookies, storage).
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
  ],
});

async function newContext(options = {}) {
  return browser.newContext({ baseURL: URL_, ...options });
}

/** The POST a click or key press triggers, with its response; after a redirect, once
 * the page it leads to is there. */
async function submitting(page, path, act) {
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === "POST" && new URL(r.url()).pathname === path),
    act(),
  ]);
  const location = response.headers()["location"];
  if (response.status() >= 300 && response.status() < 400 && location) {
    const target = new URL(location, URL_);
    await page.waitForURL((url) => url.pathname === target.pathname && url.search === target.search);
  }
  await page.waitForLoadState("load");
  return response;
}

/** Logs in through the form, by label, pressing Enter in the password field. */
async function logIn(page, username = USERNAME, password = PASSWORD, shot = null) {
  await page.goto("/login");
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password").fill(password);
  if (shot) await screenshot(page, shot);
  return submitting(page, "/login", () => page.getByLabel("Password").press("Enter"));
}

async function sessionCookie(context) {
  const cookies = await context.cookies(URL_);
  return cookies.find((cookie) => cookie.name === "kw_session");
}

async function logOut(page) {
  return submitting(page, "/logout", () => page.getByRole("button", { name: /^Log out/ }).click());
}

async function selfWithKey(secret, header = "X-Api-Key") {
  const response = await fetch(`${URL_}/v4/users/self`, { headers: { [header]: secret } });
  const text = await response.text();
  return { status: response.status, text };
}

async function selfWithJwt(jwt) {
  return selfWithKey(`Bearer ${jwt}`, "Authorization");
}

async function clipboard(page) {
  return (await page.evaluate(() => navigator.clipboard.readText())).trim();
}

await test("log in through the form: kw_session is HttpOnly and SameSite=Lax, the page shows the account", async () => {
  const context = await newContext();
  const page = await context.newPage();
  const response = await logIn(page, USERNAME, PASSWORD, "01-login");
  check(response.status() === 303, `POST /login answered ${response.status()}, expected 303`);
  check(new URL(page.url()).pathname === "/account", `landed on ${page.url()}, expected /account`);
  const cookie = await sessionCookie(context);
  check(cookie, "no kw_session cookie after login");
  check(/^[0-9a-f]{64}$/.test(cookie.value), "kw_session is not 256 bits of hex");
  check(cookie.httpOnly === true, "kw_session is not HttpOnly");
  check(cookie.sameSite === "Lax", `kw_session is SameSite=${cookie.sameSite}, expected Lax`);
  check(cookie.path === "/", `kw_session has Path=${cookie.path}`);
  check(!cookie.secure, "kw_session is Secure over plain http (the browser would drop it)");
  const fromScript = await page.evaluate(() => document.cookie);
  check(!fromScript.includes("kw_session"), "document.cookie shows kw_session");
  await page.getByRole("heading", { name: "Profile" }).waitFor();
  const text = await page.locator("main").innerText();
  check(text.includes(USERNAME), `the profile does not show ${USERNAME}`);
  check(text.includes("pat@example.com"), "the profile does not show the email");
  check(await page.getByRole("button", { name: `Log out ${USERNAME}` }).isVisible(), "no logout button");
  await screenshot(page, "02-account");
  await context.close();
});

await test("the session id changes at every login", async () => {
  const context = await newContext();
  const page = await context.newPage();
  await logIn(page);
  const first = await sessionCookie(context);
  check(first, "no kw_session after the first login");
  await logOut(page);
  check(new URL(page.url()).pathname === "/login", `after logout the page is ${page.url()}`);
  check(!(await sessionCookie(context)), "kw_session is still set after logout");
  await logIn(page);
  const second = await sessionCookie(context);
  check(second, "no kw_session after the second login");
  check(second.value !== first.value, "the second login reused the first session id");
  // The login page, opened while logged in, goes to the account.
  await page.goto("/login");
  check(new URL(page.url()).pathname === "/account", "GET /login while logged in did not go to /account");
  await context.close();
});

await test("API keys: generate, copy without showing, use, never listed, revoke", async () => {
  const context = await newContext();
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: URL_ });
  const page = await context.newPage();
  await logIn(page);
  await page.getByRole("link", { name: "API keys" }).click();
  await page.getByRole("heading", { name: "API keys", level: 1 }).waitFor();
  const name = `browser-${Date.now()}`;
  const description = "made in headless Chromium";
  await page.getByLabel("Name", { exact: true }).fill(name);
  await page.getByLabel(/^Expires in/).fill("30");
  await page.getByLabel(/^Description/).fill(description);
  const created = await submitting(page, "/account/api-keys", () =>
    page.getByRole("button", { name: "Generate key" }).click(),
  );
  check(created.status() === 201, `creating answered ${created.status()}, expected 201`);
  await page.getByRole("heading", { name: "API key created" }).waitFor();

  await page.getByRole("button", { name: "Copy secret" }).click();
  await page.getByRole("status").filter({ hasText: "Copied to the clipboard." }).waitFor({ timeout: 5000 });
  const secret = (await page.evaluate(() => navigator.clipboard.readText())).trim();
  check(secret.length >= 20, `the clipboard holds ${JSON.stringify(secret.slice(0, 8))}…, not a key`);
  const notice = await page.locator("main .notice").innerText();
  const prefix = (/\((\w+)…\)/.exec(notice) || [])[1];
  check(prefix && secret.startsWith(prefix), `the copied secret does not start with the key's prefix ${prefix}`);
  const shown = await page.evaluate(() => document.body.innerText);
  check(!shown.includes(secret), "the secret is visible on the page");
  await screenshot(page, "04-api-key-created");

  const used = await selfWithKey(secret);
  check(used.status === 200, `GET /v4/users/self with the new key answered ${used.status}: ${used.text}`);
  const self = JSON.parse(used.text);
  check(self.userName === USERNAME, `GET /v4/users/self says userName ${self.userName}`);

  const listed = await page.goto("/account/api-keys");
  const html = await listed.text();
  check(listed.status() === 200, `the list answered ${listed.status()}`);
  check(!html.includes(secret), "the secret is in the list page's HTML");
  check(!(await page.content()).includes(secret), "the secret is in the list page's DOM");
  const row = page.getByRole("row").filter({ hasText: name });
  check((await row.count()) === 1, `the key ${name} is not listed once`);
  const rowText = await row.innerText();
  check(rowText.includes(description), "the list does not show the description");
  check(rowText.includes(prefix), "the list does not show the prefix");
  await screenshot(page, "03-api-keys");

  // Dismissing the confirmation keeps the key.
  const revoke = page.getByRole("button", { name: `Revoke ${name}` });
  let asked = "";
  page.once("dialog", (dialog) => {
    asked = dialog.message();
    dialog.dismiss();
  });
  await revoke.click();
  check(asked.includes(name), `the confirmation said ${JSON.stringify(asked)}`);
  check((await selfWithKey(secret)).status === 200, "the key stopped working though the revoke was cancelled");

  page.once("dialog", (dialog) => dialog.accept());
  const revoked = await submitting(page, `/account/api-keys/${await keyIdOf(page, name)}/revoke`, () => revoke.click());
  check(revoked.status() === 303, `revoking answered ${revoked.status()}, expected 303`);
  check(new URL(page.url()).pathname === "/account/api-keys", `after revoking the page is ${page.url()}`);
  check((await page.getByRole("row").filter({ hasText: name }).count()) === 0, "the revoked key is still listed");
  const after = await selfWithKey(secret);
  check(after.status === 401, `the revoked key answered ${after.status}, expected 401`);
  await context.close();
});

async function keyIdOf(page, name) {
  const action = await page.getByRole("row").filter({ hasText: name }).locator("form").getAttribute("action");
  const match = /^\/account\/api-keys\/([^/]+)\/revoke$/.exec(action || "");
  check(match, `the revoke form's action is ${action}`);
  return match[1];
}

await test("Model Monitor token: generate, copy, use in X-DMM-API-KEY only, revoke", async () => {
  const context = await newContext();
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: URL_ });
  const page = await context.newPage();
  await logIn(page);
  await page.getByRole("link", { name: "Model Monitor" }).click();
  await page.getByRole("heading", { name: "Model Monitor token", level: 1 }).waitFor();
  check((await page.locator("main").innerText()).includes("X-DMM-API-KEY"), "the page does not name X-DMM-API-KEY");
  const name = `dmm-${Date.now()}`;
  await page.getByLabel("Name", { exact: true }).fill(name);
  await screenshot(page, "08-model-monitor");
  const created = await submitting(page, "/account/model-monitor", () =>
    page.getByRole("button", { name: "Generate token" }).click(),
  );
  check(created.status() === 201, `generating answered ${created.status()}, expected 201`);
  await page.getByRole("button", { name: "Copy secret" }).click();
  await page.getByRole("status").filter({ hasText: "Copied to the clipboard." }).waitFor({ timeout: 5000 });
  const secret = await clipboard(page);
  check(!(await page.evaluate(() => document.body.innerText)).includes(secret), "the token is visible on the page");
  check((await selfWithKey(secret, "X-DMM-API-KEY")).status === 200, "the token does not work in X-DMM-API-KEY");
  check((await selfWithKey(secret)).status === 401, "the Model Monitor token works as a general API key");
  await page.getByRole("link", { name: "Done: back to the list" }).click();
  check(new URL(page.url()).pathname === "/account/model-monitor", `back on ${page.url()}`);
  page.once("dialog", (dialog) => dialog.accept());
  await submitting(page, `/account/api-keys/${await keyIdOf(page, name)}/revoke`, () =>
    page.getByRole("button", { name: `Revoke ${name}` }).click(),
  );
  check(new URL(page.url()).pathname === "/account/model-monitor", `after revoking the page is ${page.url()}`);
  check((await selfWithKey(secret, "X-DMM-API-KEY")).status === 401, "the revoked token still works");
  await context.close();
});

await test("API tokens: add, unlock, copy without showing, show, lock; old JWTs stop working; collapsing or leaving forgets", async () => {
  const context = await newContext();
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: URL_ });
  const page = await context.newPage();
  await logIn(page, MANAGER);
  await page.getByRole("link", { name: "API tokens" }).click();
  await page.getByRole("heading", { name: "API tokens", level: 1 }).waitFor();
  const name = `etl-${Date.now()}`;
  await page.getByLabel(/^User/).fill(USERNAME);
  await page.getByLabel("Name", { exact: true }).fill(name);
  const inAMonth = new Date(Date.now() + 30 * 86400e3).toISOString().slice(0, 10);
  await page.getByLabel(/^Expires on/).fill(inAMonth);
  await page.getByLabel(/^Allowed addresses/).fill("127.0.0.1\n::1");
  await page.getByLabel(/^Description/).fill("loads the warehouse");
  check(await page.getByLabel("Enabled").isChecked(), "Enabled is not checked by default");
  const created = await submitting(page, "/manage/api-tokens", () => page.getByRole("button", { name: "Add token" }).click());
  check(created.status() === 201, `adding answered ${created.status()}: ${await page.locator("main").innerText()}`);
  await page.getByRole("button", { name: "Copy secret" }).click();
  await page.getByRole("status").filter({ hasText: "Copied to the clipboard." }).waitFor({ timeout: 5000 });
  const first = await clipboard(page);
  check(first.split(".").length === 3, "the copied API token is not a JWT");
  check(!(await page.evaluate(() => document.body.innerText)).includes(first), "the JWT is visible after Add");
  await screenshot(page, "10-api-token-created");
  check((await selfWithJwt(first)).status === 200, "the new API token does not work");

  await page.getByRole("link", { name: "Done: back to the list" }).click();
  const entry = page.locator("details").filter({ hasText: name });
  const field = entry.locator("[data-jwt-value]");
  await entry.locator("summary").click();
  check((await field.innerText()) === "Locked", `the JWT field says ${await field.innerText()} before unlocking`);
  check(!(await page.content()).includes(first), "the JWT is in the list page");
  await screenshot(page, "09-api-tokens");

  // Unlock asks first, then makes a new JWT that only the script holds.
  const unlock = async () => {
    let asked = "";
    page.once("dialog", (dialog) => {
      asked = dialog.message();
      dialog.accept();
    });
    await entry.getByRole("button", { name: "Unlock Token" }).click();
    await entry.getByRole("status").filter({ hasText: "A new JWT was made" }).waitFor({ timeout: 5000 });
    check(asked.includes("stops working"), `the unlock confirmation said ${JSON.stringify(asked)}`);
    await entry.getByRole("button", { name: "Copy", exact: true }).click();
    await entry.getByRole("status").filter({ hasText: "Copied to the clipboard." }).waitFor({ timeout: 5000 });
    const jwt = await clipboard(page);
    check(jwt.split(".").length === 3, "Copy did not put a JWT on the clipboard");
    check(!(await page.content()).includes(jwt), "the unlocked JWT is in the page before Show Token");
    return jwt;
  };
  const second = await unlock();
  check(second !== first, "unlocking gave the same JWT");
  const generation = await entry.locator("[data-jwt-generation]").innerText();
  check(generation === "2", `after one unlock the entry says generation ${generation}`);
  check((await selfWithJwt(first)).status === 401, "the JWT from before the unlock still works");
  check((await selfWithJwt(second)).status === 200, "the unlocked JWT does not work");

  await entry.getByRole("button", { name: "Show Token" }).click();
  check((await field.innerText()) === second, "Show Token does not show the unlocked JWT");
  await screenshot(page, "11-api-token-shown");
  await entry.getByRole("button", { name: "Lock Token" }).click();
  check((await field.innerText()) === "Locked", "Lock Token did not lock the field");
  check(!(await page.content()).includes(second), "the JWT is left in the page after Lock Token");
  check(await entry.getByRole("button", { name: "Unlock Token" }).isVisible(), "Unlock Token is not offered again");
  check(!(await entry.getByRole("button", { name: "Show Token" }).isVisible()), "Show Token is still offered when locked");

  // Collapsing the entry locks it.
  const third = await unlock();
  await entry.getByRole("button", { name: "Show Token" }).click();
  await entry.locator("summary").click();
  await entry.locator("summary").click();
  check((await field.innerText()) === "Locked", "collapsing the entry did not lock it");
  check(!(await page.content()).includes(third), "the JWT is left in the page after collapsing");

  // Leaving the page, and coming back, leaves nothing behind.
  const fourth = await unlock();
  await entry.getByRole("button", { name: "Show Token" }).click();
  await page.goto("/account");
  await page.goBack();
  check(new URL(page.url()).pathname === "/manage/api-tokens", `back on ${page.url()}`);
  check(!(await page.content()).includes(fourth), "the JWT is in the page after leaving and coming back");
  check((await selfWithJwt(third)).status === 401, "an unlocked-then-replaced JWT still works");

  // Edit, then Delete, which recommends Expire.
  const reopened = page.locator("details").filter({ hasText: name });
  await reopened.locator("summary").click();
  await reopened.getByRole("link", { name: "Edit" }).click();
  await page.getByRole("heading", { name: "Edit API token" }).waitFor();
  await page.getByLabel(/^Description/).fill("loads the warehouse nightly");
  await screenshot(page, "12-api-token-edit");
  await submitting(page, page.url().replace(URL_, ""), () => page.getByRole("button", { name: "Save" }).click());
  const edited = page.locator("details[open]").filter({ hasText: name });
  check((await edited.innerText()).includes("loads the warehouse nightly"), "the edit is not shown, open, in the list");
  check((await selfWithJwt(fourth)).status === 200, "editing the description ended the JWT");
  await edited.getByRole("link", { name: "Delete…" }).click();
  const advice = await page.getByRole("alert").innerText();
  check(/Consider Expire instead/.test(advice), `the delete page says: ${advice}`);
  await screenshot(page, "13-api-token-delete");
  await submitting(page, page.url().replace(URL_, "").replace(/delete$/, "expire"), () =>
    page.getByRole("button", { name: "Expire instead" }).click(),
  );
  check((await page.locator("details[open]").filter({ hasText: name }).innerText()).includes("expired"), "not shown as expired");
  check((await selfWithJwt(fourth)).status === 401, "the expired token still works");
  await page.locator("details[open]").filter({ hasText: name }).getByRole("link", { name: "Delete…" }).click();
  await submitting(page, page.url().replace(URL_, ""), () => page.getByRole("button", { name: "Delete for good" }).click());
  check((await page.locator("details").filter({ hasText: name }).count()) === 0, "the deleted token is still listed");
  await context.close();
});

await test("service accounts: create, issue tokens (one expiring soon, highlighted), copy, invalidate, deactivate", async () => {
  const context = await newContext();
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: URL_ });
  const page = await context.newPage();
  await logIn(page, ADMIN);
  await page.getByRole("navigation", { name: "Admin" }).getByRole("link", { name: "Service accounts" }).click();
  await page.getByRole("heading", { name: "Service accounts", level: 1 }).waitFor();
  const name = `bot-${Date.now()}`;
  await page.getByLabel(/^Username/).fill(name);
  await page.getByLabel("Email").fill(`${name}@example.com`);
  await submitting(page, "/admin/service-accounts", () => page.getByRole("button", { name: "Create account" }).click());
  await page.getByRole("heading", { name: "Service account", level: 1 }).waitFor();
  const accountPath = new URL(page.url()).pathname;
  check(/^\/admin\/service-accounts\/[0-9a-f]{24}$/.test(accountPath), `after creating, the page is ${accountPath}`);

  const issue = async (token, days) => {
    await page.getByLabel("Name", { exact: true }).fill(token);
    await page.getByLabel(/^Expires in/).fill(days);
    const issued = await submitting(page, `${accountPath}/tokens`, () => page.getByRole("button", { name: "Issue token" }).click());
    check(issued.status() === 201, `issuing ${token} answered ${issued.status()}`);
    await page.getByRole("button", { name: "Copy secret" }).click();
    await page.getByRole("status").filter({ hasText: "Copied to the clipboard." }).waitFor({ timeout: 5000 });
    const secret = await clipboard(page);
    check(secret.startsWith("kws_"), "the copied token is not a service-account token");
    check(!(await page.evaluate(() => document.body.innerText)).includes(secret), "the token is visible on the page");
    await page.getByRole("link", { name: "Done: back to the list" }).click();
    return secret;
  };
  const soon = await issue("soon", "7");
  const later = await issue("later", "120");
  check((await selfWithKey(soon)).status === 200 && (await selfWithKey(later)).status === 200, "a new token does not work");
  const soonRow = page.getByRole("row").filter({ hasText: "soon" });
  check((await soonRow.getAttribute("class")) === "soon", "the token expiring in 7 days is not highlighted");
  check((await soonRow.innerText()).includes("expires in 7 days"), "the highlight does not say when");
  check((await page.getByRole("row").filter({ hasText: "later" }).getAttribute("class")) !== "soon", "a 120-day token is highlighted");
  const background = await soonRow.evaluate((row) => getComputedStyle(row).backgroundColor);
  check(background !== "rgba(0, 0, 0, 0)", "the highlighted row has no background");
  check(!(await page.content()).includes(soon) && !(await page.content()).includes(later), "a token is in the account page");
  await screenshot(page, "15-service-account");

  page.once("dialog", (dialog) => dialog.accept());
  await page.getByRole("button", { name: "Invalidate soon" }).click();
  await page.waitForLoadState("load");
  await page.getByRole("row").filter({ hasText: "invalidated" }).waitFor();
  check((await selfWithKey(soon)).status === 401, "the invalidated token still works");
  check((await selfWithKey(later)).status === 200, "invalidating one token ended another");
  page.once("dialog", (dialog) => dialog.accept());
  await submitting(page, `${accountPath}/deactivate`, () => page.getByRole("button", { name: "Deactivate account" }).click());
  check((await selfWithKey(later)).status === 401, "a token of the deactivated account still works");
  check(await page.getByRole("button", { name: "Activate account" }).isVisible(), "no Activate button after deactivating");
  await page.goto("/admin/service-accounts");
  await screenshot(page, "16-service-accounts");
  await context.close();
});

await test("users and groups: add a person, grant a role by keyboard, put them in a group, they log in with its role", async () => {
  const context = await newContext();
  const page = await context.newPage();
  await logIn(page, ADMIN);
  await page.getByRole("navigation", { name: "Admin" }).getByRole("link", { name: "Users" }).click();
  await page.getByRole("heading", { name: "Users", level: 1 }).waitFor();
  const name = `lee${Date.now()}`;
  await page.getByLabel(/^Username/).fill(name);
  await page.getByLabel("Email").fill(`${name}@example.com`);
  await page.getByLabel("First name").fill("Lee");
  await page.getByLabel(/^Password/).fill(PASSWORD);
  await screenshot(page, "17-users");
  await submitting(page, "/admin/users", () => page.getByRole("button", { name: "Add person" }).click());
  await page.getByRole("heading", { name: "User", level: 1 }).waitFor();
  const userPath = new URL(page.url()).pathname;
  // The Grant button, reached and pressed with the keyboard.
  await page.getByRole("button", { name: "Grant workload-launcher" }).focus();
  await submitting(page, `${userPath}/roles/workload-launcher/grant`, () => page.keyboard.press("Enter"));
  await page.getByRole("button", { name: "Revoke workload-launcher" }).waitFor({ timeout: 5000 });
  await screenshot(page, "18-user");

  await page.getByRole("navigation", { name: "Admin" }).getByRole("link", { name: "Groups" }).click();
  await page.getByLabel("Name", { exact: true }).fill(`managers-${name}`);
  await submitting(page, "/admin/groups", () => page.getByRole("button", { name: "Create group" }).click());
  await page.getByRole("heading", { name: "Group", level: 1 }).waitFor();
  const groupPath = new URL(page.url()).pathname;
  await submitting(page, `${groupPath}/roles/token-manager/grant`, () =>
    page.getByRole("button", { name: "Grant token-manager" }).click(),
  );
  await page.getByRole("button", { name: "Revoke token-manager" }).waitFor({ timeout: 5000 });
  await page.getByLabel(/^Add a member/).fill(name);
  await submitting(page, `${groupPath}/members`, () => page.getByRole("button", { name: "Add member" }).click());
  await page.getByRole("link", { name, exact: true }).waitFor({ timeout: 5000 });
  await screenshot(page, "19-group");

  // The new person logs in and has the group's role: the API tokens page is theirs.
  const theirs = await newContext();
  const their = await theirs.newPage();
  const login = await logIn(their, name);
  check(login.status() === 303, `the new person's login answered ${login.status()}`);
  await their.getByRole("link", { name: "API tokens" }).waitFor({ timeout: 5000 });
  const tokens = await their.goto("/manage/api-tokens");
  check(tokens.status() === 200, `/manage/api-tokens answered ${tokens.status()} for a member of the group`);
  await theirs.close();
  await context.close();
});

await test("Audit log: an admin opens it from the nav, filters by action, and downloads the filtered CSV", async () => {
  const context = await newContext({ acceptDownloads: true });
  await context.addInitScript(() => {
    window.__violations = [];
    document.addEventListener("securitypolicyviolation", (event) => {
      window.__violations.push(`${event.violatedDirective} ${event.blockedURI}`);
    });
  });
  const page = await context.newPage();
  await logIn(page, ADMIN);
  await page.getByRole("navigation", { name: "Admin" }).getByRole("link", { name: "Audit log" }).click();
  await page.getByRole("heading", { name: "Audit log", level: 1 }).waitFor();
  const actions = () => page.locator("table.events tbody tr td:nth-child(4)").allInnerTexts();
  check((await actions()).length > 0, "the audit log shows no events");

  // Filter by keyboard: type the action and press Enter in the field.
  await page.getByLabel(/^Action/).fill("auth.login");
  await Promise.all([page.waitForURL(/\/admin\/audit\?action=auth\.login/), page.getByLabel(/^Action/).press("Enter")]);
  const filtered = await actions();
  check(filtered.length > 0, "no auth.login events after filtering");
  check(filtered.every((action) => action === "auth.login"), `the filtered table shows ${[...new Set(filtered)]}`);
  check((await page.getByLabel(/^Action/).inputValue()) === "auth.login", "the form forgot the filter");
  const found = await page.evaluate(() => window.__violations);
  check(found.length === 0, `CSP violations: ${found.join("; ")}`);
  await screenshot(page, "14-audit");

  const [download] = await Promise.all([
    page.waitForEvent("download"),
    page.getByRole("link", { name: "Download CSV" }).click(),
  ]);
  check(download.suggestedFilename() === "keyward-audit.csv", `the download is named ${download.suggestedFilename()}`);
  const lines = (await readFile(await download.path(), "utf8")).trim().split("\n");
  check(lines[0] === "seq,at,realm,actor,action,target,client_ip,result,detail,hash", `the CSV starts ${lines[0]}`);
  check(lines.length > 1, "the CSV has no events");
  check(lines.slice(1).every((line) => line.includes(',"auth.login",')), "the CSV is not filtered by action");
  await context.close();
});

await test("a form post without the CSRF token is refused with 403 and nothing is created", async () => {
  const context = await newContext();
  const page = await context.newPage();
  await logIn(page);
  await page.goto("/account/api-keys");
  const name = `csrf-${Date.now()}`;
  await page.getByLabel("Name", { exact: true }).fill(name);
  await page.getByLabel(/^Expires in/).fill("7");
  const removed = await page.evaluate(() => {
    const form = document.querySelector('form[action="/account/api-keys"]');
    const inputs = form ? form.querySelectorAll('input[name="csrf"]') : [];
    inputs.forEach((input) => input.remove());
    return inputs.length;
  });
  check(removed === 1, `removed ${removed} csrf inputs from the form`);
  const refused = await submitting(page, "/account/api-keys", () =>
    page.getByRole("button", { name: "Generate key" }).click(),
  );
  check(refused.status() === 403, `the post without a token answered ${refused.status()}, expected 403`);
  const text = await page.locator("main").innerText();
  check(text.includes("Form expired"), "the refusal page has no 'Form expired' heading");
  check(/CSRF\) token is missing/.test(text) && text.includes("nothing was changed"), `the page says: ${text}`);
  await screenshot(page, "07-csrf-refused");
  await page.goto("/account/api-keys");
  check((await page.getByRole("row").filter({ hasText: name }).count()) === 0, "a key was created anyway");
  check(!(await page.locator("main").innerText()).includes(name), "the refused key's name is on the list page");
  // A wrong token (another session's, or made up) is refused the same way.
  await page.getByLabel("Name", { exact: true }).fill(name);
  await page.getByLabel(/^Expires in/).fill("7");
  await page.evaluate(() => {
    document.querySelector('form[action="/account/api-keys"] input[name="csrf"]').value = "00".repeat(32);
  });
  const wrong = await submitting(page, "/account/api-keys", () =>
    page.getByRole("button", { name: "Generate key" }).click(),
  );
  check(wrong.status() === 403, `the post with a wrong token answered ${wrong.status()}, expected 403`);
  await page.goto("/account/api-keys");
  check((await page.getByRole("row").filter({ hasText: name }).count()) === 0, "a key was created with a wrong token");
  await context.close();
});

await test("a service account cannot log in: 403 and the page says why", async () => {
  const context = await newContext();
  const page = await context.newPage();
  const response = await logIn(page, SERVICE_ACCOUNT, "any password at all, it is never checked");
  check(response.status() === 403, `POST /login answered ${response.status()}, expected 403`);
  check(new URL(page.url()).pathname === "/login", `the page is ${page.url()}`);
  const alert = await page.getByRole("alert").innerText();
  check(alert.includes("service accounts cannot log in"), `the page says: ${alert}`);
  check(!(await sessionCookie(context)), "a kw_session cookie was set");
  await screenshot(page, "06-service-account-refused");
  await context.close();
});

await test("logout ends the session server-side: the old cookie is sent back to /login", async () => {
  const context = await newContext();
  const page = await context.newPage();
  await logIn(page);
  const cookie = await sessionCookie(context);
  check(cookie, "no kw_session after login");
  const withCookie = () =>
    fetch(`${URL_}/account`, { headers: { Cookie: `kw_session=${cookie.value}` }, redirect: "manual" });
  const before = await withCookie();
  check(before.status === 200, `before logout, /account with the cookie answered ${before.status}`);
  await logOut(page);
  check(new URL(page.url()).pathname === "/login", `after logout the page is ${page.url()}`);
  const after = await withCookie();
  check(after.status >= 300 && after.status < 400, `after logout, /account with the old cookie answered ${after.status}`);
  const location = after.headers.get("location");
  check(location === "/login", `after logout, /account redirects to ${location}`);
  await context.close();
});

await test("portal pages carry the CSP and X-Frame-Options: DENY, with no console errors or CSP violations", async () => {
  const context = await newContext();
  // Runs before any page script; CSP does not apply to it. Records every violation.
  await context.addInitScript(() => {
    window.__violations = [];
    document.addEventListener("securitypolicyviolation", (event) => {
      window.__violations.push(`${event.violatedDirective} ${event.blockedURI}`);
    });
  });
  const page = await context.newPage();
  const problems = [];
  page.on("console", (message) => {
    if (message.type() === "error" || message.type() === "warning") problems.push(`console ${message.type()}: ${message.text()}`);
  });
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  page.on("requestfailed", (request) => problems.push(`request failed: ${request.url()}`));

  const checkHeaders = (response, where) => {
    const headers = response.headers();
    const csp = headers["content-security-policy"] || "";
    check(csp.includes("default-src 'none'"), `${where}: CSP is ${JSON.stringify(csp)}`);
    check(/script-src 'self'(;|$)/.test(csp), `${where}: CSP allows more script than 'self': ${csp}`);
    check(!csp.includes("unsafe-inline") && !csp.includes("unsafe-eval"), `${where}: CSP allows unsafe-*: ${csp}`);
    check(csp.includes("frame-ancestors 'none'"), `${where}: CSP has no frame-ancestors 'none'`);
    check(headers["x-frame-options"] === "DENY", `${where}: X-Frame-Options is ${headers["x-frame-options"]}`);
    check(headers["referrer-policy"] === "no-referrer", `${where}: Referrer-Policy is ${headers["referrer-policy"]}`);
  };
  const violations = async (where) => {
    const found = await page.evaluate(() => window.__violations);
    check(found.length === 0, `${where}: CSP violations: ${found.join("; ")}`);
  };

  const login = await page.goto("/login");
  checkHeaders(login, "/login");
  await violations("/login");
  await logIn(page);
  for (const path of ["/account", "/account/api-keys", "/account/model-monitor", "/account/about"]) {
    const response = await page.goto(path);
    check(response.status() === 200, `${path} answered ${response.status()}`);
    checkHeaders(response, path);
    // The stylesheet, from this origin under the CSP, applied.
    const styled = await page.evaluate(() => getComputedStyle(document.body).fontFamily);
    check(styled.includes("system-ui"), `${path}: the stylesheet did not apply (font ${styled})`);
    await violations(path);
  }
  const docs = page.getByRole("link", { name: "API Documentation" });
  check((await docs.getAttribute("href")) === "/api/docs", "About has no API Documentation link to /api/docs");
  await screenshot(page, "05-about");
  check(problems.length === 0, problems.join("; "));
  await context.close();
});

async function gateway(path, key) {
  const headers = key ? { Authorization: `Bearer ${key}` } : {};
  return (await fetch(`${URL_}${path}`, { headers })).status;
}

await test("deployer: see the deployment, reveal and copy its key without showing it, disable and enable it", async () => {
  const context = await newContext();
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: URL_ });
  const page = await context.newPage();
  await logIn(page);
  await page.getByRole("navigation", { name: "Deployer" }).getByRole("link", { name: "API services" }).click();
  await page.getByRole("heading", { name: "API services", level: 1 }).waitFor();
  const row = page.getByRole("row").filter({ hasText: "/public/dev/churn/" });
  check((await row.count()) === 1, "the deployment of churn on dev is not listed once");
  check((await row.innerText()).includes("enabled"), "the deployment is not shown enabled");
  await screenshot(page, "20-deployer");

  await page.getByRole("link", { name: "Deployment of churn on dev" }).click();
  await page.getByRole("heading", { name: "Deployment", level: 1 }).waitFor();
  const deploymentPath = new URL(page.url()).pathname;
  check(/^\/deployer\/deployments\/[0-9a-f]{24}$/.test(deploymentPath), `the deployment page is ${deploymentPath}`);
  check((await page.locator("main").innerText()).includes("API keys (kwd_"), "the page does not say API keys apply");
  await screenshot(page, "21-deployment");

  // Reveal: by keyboard, the key behind the Copy button only.
  const revealPath = await page.locator('form[action$="/reveal"]').getAttribute("action");
  await page.getByRole("button", { name: "Reveal key dev" }).focus();
  const revealed = await submitting(page, revealPath, () => page.keyboard.press("Enter"));
  check(revealed.status() === 200, `revealing answered ${revealed.status()}`);
  await page.getByRole("button", { name: "Copy key" }).click();
  await page.getByRole("status").filter({ hasText: "Copied to the clipboard." }).waitFor({ timeout: 5000 });
  const key = await clipboard(page);
  check(key.startsWith("kwd_"), "the copied key is not a deployment key");
  check(!(await page.evaluate(() => document.body.innerText)).includes(key), "the key is visible on the page");
  const opened = await gateway("/public/dev/churn/healthz", key);
  check(opened === 200, `the revealed key answered ${opened} at the gateway`);
  await page.getByRole("link", { name: "Done: back" }).click();
  await page.getByRole("heading", { name: "Deployment", level: 1 }).waitFor();
  check(new URL(page.url()).pathname === deploymentPath, `back after the reveal is ${page.url()}`);
  check(!(await page.content()).includes(key), "the key is in the deployment page");

  // Disable asks first; cancelled, nothing changes.
  let asked = "";
  page.once("dialog", (dialog) => {
    asked = dialog.message();
    dialog.dismiss();
  });
  await page.getByRole("button", { name: "Disable" }).click();
  check(asked.includes("Disable churn on dev"), `the confirmation said ${JSON.stringify(asked)}`);
  check((await gateway("/public/dev/churn/healthz", key)) === 200, "the deployment stopped though disabling was cancelled");
  page.once("dialog", (dialog) => dialog.accept());
  const disabled = await submitting(page, `${deploymentPath}/disable`, () => page.getByRole("button", { name: "Disable" }).click());
  check(disabled.status() === 303, `disabling answered ${disabled.status()}`);
  await page.getByRole("button", { name: "Enable" }).waitFor({ timeout: 5000 });
  check((await gateway("/public/dev/churn/healthz", key)) === 404, "the disabled deployment still answers");
  const enabled = await submitting(page, `${deploymentPath}/enable`, () => page.getByRole("button", { name: "Enable" }).click());
  check(enabled.status() === 303, `enabling answered ${enabled.status()}`);
  await page.getByRole("button", { name: "Disable" }).waitFor({ timeout: 5000 });
  check((await gateway("/public/dev/churn/healthz", key)) === 200, "the enabled deployment does not answer");
  check((await gateway("/public/dev/churn/healthz", null)) === 401, "the deployment answers without a key");
  await context.close();
});

await test("deployer: an API service's page shows its versions, keys and deployments; a version is uploaded through its form", async () => {
  const context = await newContext();
  const page = await context.newPage();
  // Chromium logs the refused form's 422 as a failed load; anything else is a problem.
  const problems = [];
  page.on("console", (message) => {
    const expected = message.text().includes("status of 422");
    if (!expected && (message.type() === "error" || message.type() === "warning")) problems.push(`console ${message.type()}: ${message.text()}`);
  });
  await logIn(page);
  await page.goto("/deployer");
  await page.getByRole("table").first().getByRole("link", { name: "churn", exact: true }).click();
  await page.getByRole("heading", { name: "API service", level: 1 }).waitFor();
  const servicePath = new URL(page.url()).pathname;
  check(/^\/deployer\/services\/[0-9a-f]{24}$/.test(servicePath), `the service page is ${servicePath}`);
  check((await page.getByRole("button", { name: "Reveal key dev" }).count()) === 1, "the service's key has no Reveal button");
  check((await page.getByRole("row").filter({ hasText: "/public/dev/churn/" }).count()) === 1, "the deployment is not listed");

  // A bad upstream comes back with what was typed and what to fix.
  await page.getByLabel(/^Upstream URL/).fill("file:///etc");
  await page.getByLabel("Description (optional)").fill("second");
  const refused = await submitting(page, `${servicePath}/versions`, () => page.getByRole("button", { name: "Upload version" }).click());
  check(refused.status() === 422, `a bad upstream answered ${refused.status()}`);
  check((await page.getByRole("alert").innerText()).includes("upstream: must be an http:// URL"), "the page does not say what to fix");
  check((await page.getByLabel(/^Upstream URL/).inputValue()) === "file:///etc", "the form lost what was typed");
  await page.getByLabel(/^Upstream URL/).fill(`${URL_}/v2`);
  await page.getByLabel(/^Upstream URL/).press("Enter");
  await page.waitForURL((url) => url.pathname === servicePath);
  await page.getByRole("row").filter({ hasText: `${URL_}/v2` }).waitFor({ timeout: 5000 });
  const versions = await page.getByLabel("Version", { exact: true }).locator("option").allInnerTexts();
  check(versions[0].startsWith("2:"), `the deploy form offers ${versions.join(", ")} first`);
  await screenshot(page, "22-api-service");
  check(problems.length === 0, problems.join("; "));
  await context.close();
});

await browser.close();
console.log(failures === 0 ? "browser: all passed" : `browser: ${failures} failed`);
process.exit(failures === 0 ? 0 : 1);
