// Drives Airlock's web UI in headless Chromium (playwright-core, the system's /usr/bin/chromium).
// Run by tests/tests/web_browser.rs, which starts `airlock serve` and passes everything through the environment:
//   AIRLOCK_UI_BASE, AIRLOCK_UI_USER, AIRLOCK_UI_PASSWORD, AIRLOCK_UI_SESSION, AIRLOCK_UI_APPROVAL,
//   AIRLOCK_UI_MASKED, AIRLOCK_UI_RAW (comma-separated values that must never appear), AIRLOCK_UI_SCREENSHOTS,
//   AIRLOCK_UI_CHROMIUM (default /usr/bin/chromium).
// Prints one JSON object on stdout as its last line; exits non-zero on the first failed check.
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
const base = env('AIRLOCK_UI_BASE');
const session = env('AIRLOCK_UI_SESSION');
// AIRLOCK_UI_MODE=terminal: sign in, open the replay and play back recorded command output
// (AIRLOCK_UI_TERMINAL_TEXT must appear in the player after Play). Otherwise: replay, XSS and inbox checks.
const terminalMode = process.env.AIRLOCK_UI_MODE === 'terminal';
const T = 15000;

const result = { ok: false, steps: [] };
const step = (name, extra = {}) => result.steps.push({ name, ...extra });
const check = (cond, msg) => { if (!cond) throw new Error(msg); };

const profile = mkdtempSync(join(tmpdir(), 'airlock-chromium-'));
let context;
let page;
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.AIRLOCK_UI_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 900 },
    timeout: 60000,
  });
  page = context.pages()[0] ?? await context.newPage();
  page.setDefaultTimeout(T);
  const dialogs = [];
  page.on('dialog', (d) => { dialogs.push(d.message()); d.dismiss(); });
  const consoleErrors = [];
  // Console errors, except the browser's own favicon probe; failed loads are listed with their URL.
  page.on('console', (m) => {
    if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) consoleErrors.push(m.text());
  });
  const badLoads = [];
  page.on('response', (r) => {
    if (r.status() >= 400 && new URL(r.url()).pathname !== '/favicon.ico') badLoads.push(`${r.status()} ${r.url()}`);
  });

  // Sign in through the form, landing on the replay page (next=).
  const replayPath = `/sessions/${session}`;
  await page.goto(`${base}/login?next=${encodeURIComponent(replayPath)}`);
  await page.fill('#subject', env('AIRLOCK_UI_USER'));
  await page.fill('#password', env('AIRLOCK_UI_PASSWORD'));
  await Promise.all([page.waitForURL((u) => u.pathname === replayPath), page.click('button[type=submit]')]);
  step('login', { url: page.url() });

  if (terminalMode) {
    const want = env('AIRLOCK_UI_TERMINAL_TEXT');
    const player = page.locator('.player').first();
    await player.waitFor();
    const terminal = player.locator('pre.terminal');
    // Rewind to the start: the last line is not on screen yet.
    await player.locator('input.seek').fill('0');
    const atStart = await terminal.textContent();
    check(!atStart.includes(want), `at position 0 the terminal already shows ${want}: ${atStart}`);
    await player.locator('button.play').click();
    await page.waitForFunction(
      ([sel, text]) => document.querySelector(sel).textContent.includes(text),
      ['.player pre.terminal', want], { timeout: T });
    await player.locator('button.play', { hasText: 'Play' }).waitFor();
    const shown = await terminal.textContent();
    step('playback', { atStart, shown });
  } else {
  const approval = env('AIRLOCK_UI_APPROVAL');
  const masked = env('AIRLOCK_UI_MASKED');
  const raw = env('AIRLOCK_UI_RAW').split(',');
  const shots = env('AIRLOCK_UI_SCREENSHOTS');

  // Also reach it the way a reviewer would: the session list links to it.
  await page.goto(`${base}/sessions`);
  const link = page.locator(`a[href^="${replayPath}"]`).first();
  await link.waitFor();
  await Promise.all([page.waitForURL((u) => u.pathname === replayPath), link.click()]);
  const titleBefore = await page.title();
  await page.locator('.badge.ok').waitFor();
  const table = page.locator('table.result').first();
  await table.waitFor();
  const tableText = await table.innerText();
  check(tableText.includes(masked), `masked value ${masked} not in the table: ${tableText}`);
  const bodyText = await page.locator('body').innerText();
  const html = await page.content();
  for (const r of raw) check(!bodyText.includes(r) && !html.includes(r), `raw value ${r} on the replay page`);
  // Recorded HTML shows as text, and did nothing.
  check(bodyText.includes('<script>window.__pwned=1</script>'), 'the recorded <script> is not shown as text');
  check(bodyText.includes('onerror='), 'the recorded <img onerror> is not shown as text');
  const pwned = await page.evaluate(() => typeof window.__pwned);
  check(pwned === 'undefined', `window.__pwned is ${pwned}`);
  const injectedImgs = await page.locator('img[src=x]').count();
  check(injectedImgs === 0, `${injectedImgs} injected <img> elements`);
  const titleAfter = await page.title();
  check(titleAfter === titleBefore && titleAfter !== 'pwned', `document.title changed to ${titleAfter}`);
  check(dialogs.length === 0, `dialogs opened: ${dialogs.join(' | ')}`);
  mkdirSync(shots, { recursive: true });
  await page.screenshot({ path: join(shots, 'replay.png'), fullPage: true });
  step('replay', { title: titleAfter, masked, pwned });

  // The inbox: the held DELETE, approved with a comment, shown as decided.
  await page.goto(`${base}/approvals`);
  const card = page.locator(`#approval-${approval}`);
  await card.waitFor();
  const statement = await card.locator('pre.statement').innerText();
  check(/DELETE FROM customers/.test(statement), `inbox statement: ${statement}`);
  await card.locator('.status-pending').waitFor();
  await page.screenshot({ path: join(shots, 'inbox.png'), fullPage: true });
  await card.locator(`#approve-reason-${approval}`).fill('checked in the browser test');
  await Promise.all([page.waitForLoadState('load'), card.locator('button.approve').click()]);
  const notice = page.locator('p.notice[role=status]');
  await notice.waitFor();
  const noticeText = await notice.innerText();
  check(/approved/.test(noticeText), `notice after approving: ${noticeText}`);
  // Reload the approval's own page: no buttons any more, the vote is listed.
  await page.goto(`${base}/approvals/${approval}`);
  const decided = page.locator(`#approval-${approval}`);
  await decided.waitFor();
  await decided.locator('ul.votes').getByText('voted approve via web').waitFor();
  check(await decided.locator('button.approve').count() === 0, 'approve button still shown after the decision');
  const state = await decided.locator('.status').innerText();
  check(state !== 'pending', `state after approving: ${state}`);
  step('approve', { notice: noticeText, state });
  }
  check(badLoads.length === 0, `failed loads: ${badLoads.join(' | ')}`);
  check(consoleErrors.length === 0, `console errors: ${consoleErrors.join(' | ')}`);
  result.ok = true;
} catch (e) {
  result.error = String(e && e.stack ? e.stack : e);
  if (page) result.page = { url: page.url(), text: (await page.locator('body').innerText().catch(() => '')).slice(0, 2000) };
} finally {
  if (context) await context.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
}
console.log(JSON.stringify(result));
process.exit(result.ok ? 0 : 1);
