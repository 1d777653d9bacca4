// The console in headless Chromium, driven by tests/console.rs (the Rust side runs the
// emulator and the chat-tokio clients). The two talk in JSON lines: this script prints
// {"step": …} on stdout when it reaches a point, and reads the Rust side's answer, one JSON
// line on stdin, when it needs to know something.
//
// Environment: CONSOLE_URL (the console's address), SCREENSHOT (where to save the PNG),
// CHROMIUM (default /usr/bin/chromium).

import { chromium } from "playwright-core";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

const url = process.env.CONSOLE_URL;
const screenshot = process.env.SCREENSHOT;
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const PATIENCE = 15_000;

const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
async function receive() {
  const { value, done } = await lines.next();
  if (done) throw new Error("the Rust side closed stdin");
  return JSON.parse(value);
}
function say(step, data = {}) {
  process.stdout.write(`${JSON.stringify({ step, ...data })}\n`);
}

const profile = mkdtempSync(join(tmpdir(), "console-chromium-"));
let browser;
const started = Date.now();
const overall = setTimeout(() => {
  console.error("console.test.mjs: gave up after 100 s");
  process.exit(3);
}, 100_000);

try {
  // launchPersistentContext takes the profile directory itself (no --user-data-dir).
  const context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
    viewport: { width: 1440, height: 900 },
  });
  browser = context;
  const page = context.pages()[0] || (await context.newPage());
  page.setDefaultTimeout(PATIENCE);
  const problems = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => { if (m.type() === "error") problems.push(`console error: ${m.text()}`); });
  page.on("response", (r) => { if (r.status() >= 400) problems.push(`${r.status()} for ${r.url()}`); });

  await page.goto(url);
  await page.locator("#live.on").waitFor();
  say("ready");

  // 1. The customer's new chat appears; the person joins it as an agent; the customer's
  //    message appears; the agent answers it as a reply.
  const { engagementId } = await receive();
  const chatItem = page.locator(`li.chat-item[data-engagement="${engagementId}"]`);
  await chatItem.click();
  await page.locator("#chat-meta .badge", { hasText: "pending" }).waitFor();
  await page.locator("#join-form button[type=submit]").click();
  await page.locator("#participants .chip", { hasText: "Jordan (agent)" }).waitFor();
  say("joined");
  const { customerText } = await receive();
  const customerMessage = page.locator('#transcript li.msg[data-sender="CUSTOMER"]', { hasText: customerText });
  await customerMessage.waitFor();
  await customerMessage.getByRole("button", { name: "Reply" }).click();
  await page.locator("#reply-to:not([hidden])").waitFor();
  const answer = "Sorry to hear that! Let me check your order.";
  await page.locator("#send-as").selectOption({ label: "Jordan (agent) · agent" });
  await page.locator("#message").fill(answer);
  await page.locator("#message").press("Enter");
  const answerMessage = page.locator('#transcript li.msg[data-sender="AGENT"]', { hasText: answer });
  await answerMessage.waitFor();
  const customerMessageId = await customerMessage.getAttribute("data-message");
  say("answered", { text: answer, parentMessageId: customerMessageId });

  // The client acknowledged it: the page shows the delivery.
  await receive();
  await answerMessage.locator(".delivery.ok").waitFor();
  if (screenshot) await page.screenshot({ path: screenshot });
  say("screenshot");

  // 2. Faults from the page: chat tokens expired (the client refreshes), and a 503 armed for
  //    the next poll (armed, then fired).
  await page.getByRole("button", { name: "Expire chat tokens" }).click();
  say("tokens-expired");
  await receive(); // the client has refreshed
  await page.locator("#f-route").selectOption("EVENTS");
  await page.locator("#f-action").selectOption("status");
  await page.locator("#f-status").fill("503");
  await page.locator("#f-count").fill("1");
  await page.getByRole("button", { name: "Arm fault" }).click();
  await page.locator("#armed li.armed", { hasText: "status 503" }).waitFor();
  say("fault-armed");
  await page.locator("#fired li.fired", { hasText: "status 503" }).waitFor();
  await page.locator("#armed li.armed").waitFor({ state: "detached" });
  say("fault-fired");

  // 3. An integration created in the page, and a chat token minted there for it; the
  //    simulated agent turned on for new chats, so that the kiosk's chat is answered.
  await page.locator("#agent-mode").selectOption("agent");
  await page.locator("#agent-mode").evaluate((el) => el.blur());
  await page.locator("#integration-name").fill("Kiosk app");
  await page.getByRole("button", { name: "Create" }).click();
  const kiosk = page.locator("#integrations li.integration", { hasText: "Kiosk app" });
  await kiosk.waitFor();
  const integrationId = await kiosk.getAttribute("data-integration");
  await page.locator("#t-integration").selectOption(integrationId);
  await page.locator("#t-customer").fill("kiosk-7");
  await page.getByRole("button", { name: "Mint token" }).click();
  await page.locator("#token-out:not([hidden])").waitFor();
  const token = await page.locator("#token").inputValue();
  say("integration", { integrationId, token });
  const { engagementId: kioskChat, customerText: kioskText } = await receive();
  await page.locator(`li.chat-item[data-engagement="${kioskChat}"]`).click();
  await page.locator('#transcript li.msg[data-sender="CUSTOMER"]', { hasText: kioskText }).waitFor();
  await page.locator("#sessions li.session", { hasText: "kiosk-7" }).waitFor();

  if (problems.length) throw new Error(problems.join("\n"));
  say("done", { seconds: (Date.now() - started) / 1000 });
  await context.close();
  browser = null;
} catch (e) {
  console.error(`console.test.mjs: ${e.stack || e}`);
  process.exitCode = 1;
} finally {
  clearTimeout(overall);
  if (browser) await browser.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
  process.exit(process.exitCode || 0);
}
