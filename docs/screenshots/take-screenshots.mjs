// Takes the docs/screenshots PNGs: headless Chromium drives the Microsoft 365
// Agents Playground web UI while it chats with `storagebot demo`. See
// README.md in this folder for how to start the bot and the Playground first.
//
// Environment:
//   PLAYWRIGHT_CORE_DIR  folder of the playwright-core package
//                        (default /tmp/shots/node_modules/playwright-core)
//   CHROMIUM             browser binary (default /usr/bin/chromium)
//   PLAYGROUND_URL       admin Playground (default http://localhost:56150)
//   OWNER_PLAYGROUND_URL Playground whose current user is a plain owner. Without
//                        it the owner screenshots are skipped.
//   OUT_DIR              where the PNGs and export-check.txt go (default: this folder)
//   SKIP_ADMIN=1         take only the owner screenshots
//
// Every page load and download goes to localhost or 127.0.0.1 only.

import { createRequire } from "node:module";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const { chromium } = require(process.env.PLAYWRIGHT_CORE_DIR || "/tmp/shots/node_modules/playwright-core");

const outDir = process.env.OUT_DIR || dirname(fileURLToPath(import.meta.url));
const adminURL = loopbackURL(process.env.PLAYGROUND_URL || "http://localhost:56150");
const ownerURL = process.env.OWNER_PLAYGROUND_URL ? loopbackURL(process.env.OWNER_PLAYGROUND_URL) : undefined;

// cardTimeout bounds the wait for one reply. scanTimeout bounds a whole
// refresh and other slow replies.
const cardTimeout = 30_000;
const scanTimeout = 180_000;
const pollInterval = 200;
const baseViewport = { width: 1400, height: 1000 };
const maxViewportHeight = 2600;

// loopbackURL parses raw and throws unless its host is localhost or 127.0.0.1.
function loopbackURL(raw) {
  const url = new URL(raw);
  if (url.hostname !== "localhost" && url.hostname !== "127.0.0.1") {
    throw new Error(`invalid URL host ${url.hostname}: only localhost and 127.0.0.1 are allowed`);
  }
  return url;
}

// topCards matches the Adaptive Cards that are messages, not cards nested
// inside them (Action.ShowCard).
const topCards = ".ac-adaptiveCard:not(.ac-adaptiveCard .ac-adaptiveCard)";

async function openChat(context, url) {
  const page = await context.newPage();
  page.setDefaultTimeout(cardTimeout);
  const frames = [];
  page.on("websocket", (ws) => {
    ws.on("framereceived", (frame) => {
      if (typeof frame.payload === "string") {
        frames.push(frame.payload);
      }
    });
  });
  await page.goto(url.href, { waitUntil: "networkidle" });
  await page.getByRole("treeitem", { name: "Personal Chat" }).click();
  await closeLogPanel(page);
  return { page, frames };
}

// closeLogPanel hides the Playground's log panel so that the chat gets the
// width. The panel's close button is the last button in its header.
async function closeLogPanel(page) {
  const header = page.getByText("Log Panel", { exact: true });
  if (await header.count() === 0) {
    return;
  }
  await header.locator("xpath=..").locator("button").last().click();
  await header.waitFor({ state: "hidden" });
}

async function cardCount(page) {
  return page.locator(topCards).count();
}

function lastCard(page) {
  return page.locator(topCards).last();
}

async function send(page, text) {
  const box = page.getByRole("textbox");
  await box.click();
  await box.pressSequentially(text);
  await page.getByRole("button", { name: "Send Message" }).click();
}

// snapshot records the chat before a question, for waitForCard.
async function snapshot(page) {
  const count = await cardCount(page);
  const text = count > 0 ? await lastCard(page).innerText() : "";
  return { count, text };
}

// waitForCard waits until the bot has replied since before, with a new card
// or by updating the newest one in place, and that card's text matches want
// (a RegExp or a predicate). It returns that text.
async function waitForCard(page, before, want, timeout = cardTimeout) {
  const matches = typeof want === "function" ? want : (text) => want.test(text);
  const deadline = Date.now() + timeout;
  let text = "";
  while (Date.now() < deadline) {
    const count = await cardCount(page);
    if (count > 0) {
      text = await lastCard(page).innerText();
      if ((count > before.count || text !== before.text) && matches(text)) {
        return text;
      }
    }
    await page.waitForTimeout(pollInterval);
  }
  throw new Error(`timed out after ${timeout} ms waiting for a card matching ${want}, last card text: ${text.slice(0, 200)}`);
}

// shoot saves the viewport with the newest card at the bottom of the chat,
// growing the viewport when the card is taller than the chat pane.
async function shoot(page, name) {
  const card = lastCard(page);
  const box = await card.boundingBox();
  const height = Math.min(maxViewportHeight, Math.max(baseViewport.height, Math.ceil(box.height) + 380));
  if (height !== page.viewportSize().height) {
    await page.setViewportSize({ width: baseViewport.width, height });
    await page.waitForTimeout(300);
  }
  await card.scrollIntoViewIfNeeded();
  await page.evaluate((selector) => {
    const cards = document.querySelectorAll(selector);
    let node = cards[cards.length - 1];
    while (node && node !== document.body) {
      if (node.scrollHeight > node.clientHeight + 1 && getComputedStyle(node).overflowY !== "visible") {
        node.scrollTop = node.scrollHeight;
        return;
      }
      node = node.parentElement;
    }
  }, topCards);
  await page.waitForTimeout(300);
  const path = join(outDir, name);
  await page.screenshot({ path });
  if (height !== baseViewport.height) {
    await page.setViewportSize(baseViewport);
  }
  console.log(`${name}: ${statSync(path).size} bytes, viewport height ${height}`);
}

async function clickInLastCard(page, name) {
  await lastCard(page).getByRole("button", { name }).first().click();
}

const binaryUnits = { B: 0, KiB: 1, MiB: 2, GiB: 3, TiB: 4, PiB: 5 };

// sizeOf reads the last binary size in label ("The Library · 6d436c7a ·
// 1.9 TiB"), or -1 when it has none.
function sizeOf(label) {
  const sizes = [...label.matchAll(/([0-9.]+) (B|KiB|MiB|GiB|TiB|PiB)\b/g)];
  if (sizes.length === 0) {
    return -1;
  }
  const [, number, unit] = sizes[sizes.length - 1];
  return Number(number) * 1024 ** binaryUnits[unit];
}

// clickLargestChoice clicks the choice card's button for the largest Team,
// whatever order the card lists them in.
async function clickLargestChoice(page) {
  const buttons = lastCard(page).getByRole("button");
  const labels = await buttons.allInnerTexts();
  let best = 0;
  for (let i = 1; i < labels.length; i++) {
    if (sizeOf(labels[i]) > sizeOf(labels[best])) {
      best = i;
    }
  }
  console.log(`choose: ${labels[best]}`);
  await buttons.nth(best).click();
}

// exportLink returns the Download CSV URL from the newest websocket frame
// that carries one.
function exportLink(frames) {
  for (let i = frames.length - 1; i >= 0; i--) {
    let frame;
    try {
      frame = JSON.parse(frames[i]);
    } catch {
      continue;
    }
    for (const attachment of frame.message?.attachments ?? []) {
      const url = findOpenURL(attachment.content);
      if (url) {
        return url;
      }
    }
  }
  throw new Error("export link not found: no Action.OpenUrl in the bot's messages");
}

function findOpenURL(node) {
  if (Array.isArray(node)) {
    for (const item of node) {
      const url = findOpenURL(item);
      if (url) {
        return url;
      }
    }
    return undefined;
  }
  if (node && typeof node === "object") {
    if (node.type === "Action.OpenUrl" && typeof node.url === "string") {
      return node.url;
    }
    return findOpenURL(Object.values(node));
  }
  return undefined;
}

// redact hides the link's long path segments (the signed token) and its
// parameter values, because a signed URL does not belong in a file.
function redact(link) {
  const url = new URL(link);
  for (const key of [...url.searchParams.keys()]) {
    url.searchParams.set(key, "REDACTED");
  }
  url.pathname = url.pathname.replace(/[^/.]{24,}(\.[^/.]{24,})*/g, "REDACTED");
  return url.href.replaceAll("REDACTED", "…");
}

function curl(link) {
  try {
    return execFileSync("curl", ["-sS", "-i", "--max-time", "10", link], { encoding: "utf8" });
  } catch (err) {
    return `curl failed: ${err.message}\n${err.stdout ?? ""}`;
  }
}

// headAndCount keeps the HTTP head and the first lines of the body.
function headAndCount(response, bodyLines) {
  const split = response.indexOf("\r\n\r\n");
  if (split < 0) {
    return response;
  }
  const head = response.slice(0, split).replaceAll("\r\n", "\n");
  const body = response.slice(split + 4);
  const lines = body.split("\n").filter((line) => line !== "");
  const firstLines = lines.slice(0, bodyLines).join("\n");
  const rest = lines.length > bodyLines ? `\n… ${lines.length - bodyLines} more lines (${lines.length} in all, ${Buffer.byteLength(body)} bytes)` : "";
  return `${head}\n\n${firstLines}${rest}`;
}

async function adminTour(context) {
  const { page, frames } = await openChat(context, adminURL);

  let before = await snapshot(page);
  await send(page, "summary");
  await waitForCard(page, before, /Storage summary/);
  await shoot(page, "01-summary.png");

  before = await snapshot(page);
  await send(page, "top 10");
  await waitForCard(page, before, /Next 10/);
  await shoot(page, "02-top10.png");

  before = await snapshot(page);
  await clickInLastCard(page, "Next 10");
  await waitForCard(page, before, /Previous 10/);
  await shoot(page, "03-next-page.png");

  before = await snapshot(page);
  await send(page, "usage the library");
  const choice = await waitForCard(page, before, /Library/);
  console.log(`choice card: ${choice.replaceAll("\n", " | ")}`);
  await shoot(page, "04-usage-choice.png");

  before = await snapshot(page);
  await clickLargestChoice(page);
  await waitForCard(page, before, /Short id/);
  await shoot(page, "05-usage-library.png");

  before = await snapshot(page);
  await send(page, "refresh");
  let text = await waitForCard(page, before, /Scanning the tenant again/);
  const deadline = Date.now() + scanTimeout;
  const progressShots = ["06-refresh-progress-1.png", "07-refresh-progress-2.png"];
  // The first progress card is the bot's immediate reply. The screenshots
  // are of the updates that follow it.
  let lastProgress = text;
  console.log(`progress: ${text.replaceAll("\n", " | ")}`);
  while (Date.now() < deadline && /Scanning the tenant again/.test(text)) {
    if (text !== lastProgress) {
      console.log(`progress: ${text.replaceAll("\n", " | ")}`);
      if (progressShots.length > 0 && /\d+ of \d+/.test(text)) {
        await shoot(page, progressShots.shift());
      }
      lastProgress = text;
    }
    await page.waitForTimeout(pollInterval);
    text = await lastCard(page).innerText();
  }
  if (progressShots.length > 0) {
    throw new Error(`refresh finished before ${progressShots.join(", ")} could be taken`);
  }
  if (/Scanning the tenant again/.test(text)) {
    throw new Error(`refresh still running after ${scanTimeout} ms`);
  }
  await shoot(page, "08-refresh-done.png");

  before = await snapshot(page);
  await send(page, "export");
  await waitForCard(page, before, /Download CSV/);
  await shoot(page, "09-export.png");

  const link = exportLink(frames);
  loopbackURL(link);
  const first = curl(link);
  const second = curl(link);
  const check = [
    `export link (signed token hidden): ${redact(link)}`,
    "",
    "$ curl -sS -i <link>   # first download",
    headAndCount(first, 12),
    "",
    "$ curl -sS -i <link>   # second download of the same link",
    headAndCount(second, 12),
    "",
  ].join("\n");
  writeFileSync(join(outDir, "export-check.txt"), check);
  console.log(check);
  await page.close();
}

// isFinalCard reports whether a card is the bot's result rather than a
// progress card, which ends with this line until the bot replaces it.
function isFinalCard(text) {
  return !/This card updates itself/.test(text);
}

async function ownerTour(context) {
  const { page } = await openChat(context, ownerURL);

  let before = await snapshot(page);
  await send(page, "my teams");
  // NOTE: in one run with --latency 500ms, the owner's first "my teams"
  // took about 30 s, so this reply gets the longer bound.
  const mine = await waitForCard(page, before, isFinalCard, scanTimeout);
  console.log(`my teams: ${mine.replaceAll("\n", " | ")}`);
  await shoot(page, "10-owner-my-teams.png");

  before = await snapshot(page);
  await send(page, "top 10");
  const ownerTopCard = await waitForCard(page, before, isFinalCard);
  console.log(`owner top 10: ${ownerTopCard.replaceAll("\n", " | ")}`);
  await shoot(page, "11-owner-top10-refused.png");
  await page.close();
}

const profile = mkdtempSync(join(tmpdir(), "storagebot-shots-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  viewport: baseViewport,
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
try {
  if (process.env.SKIP_ADMIN !== "1") {
    await adminTour(context);
  }
  if (ownerURL) {
    await ownerTour(context);
  }
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
