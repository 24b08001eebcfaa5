// What the browser scripts share (web.mjs, gst.mjs): JSON lines out,
// steps, screenshots, waiting, the one-time code from sms.log, signing in
// by phone, and WebRTC's inbound counters read from the page.
import { readFileSync, mkdirSync } from 'node:fs';
import { chromium } from 'playwright-core';

export const BASE = process.env.BASE_URL;
const SMS = process.env.SMS_LOG;
const SHOTS = process.env.SHOTS || '';
export const T = 30_000;
if (SHOTS) mkdirSync(SHOTS, { recursive: true });

export const facts = {};
export const result = { failed: 0 };

export function out(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

export async function step(name, fn) {
  const t0 = Date.now();
  try {
    const info = await fn();
    out({ step: name, ok: true, ms: Date.now() - t0, info: info ?? null });
    return info;
  } catch (e) {
    result.failed++;
    out({ step: name, ok: false, ms: Date.now() - t0, info: String(e?.stack ?? e).slice(0, 2000) });
    throw e;
  }
}

export async function shot(page, name) {
  if (SHOTS) await page.screenshot({ path: `${SHOTS}/${name}.png` });
}

export async function waitFor(what, fn, ms = T) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    last = await fn();
    if (last) return last;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(last)})`);
}

/** the codes sent to `phone` so far, oldest first */
export function smsCodes(phone) {
  let text = '';
  try {
    text = readFileSync(SMS, 'utf8');
  } catch {
    return [];
  }
  return text
    .trim()
    .split('\n')
    .filter((l) => l.startsWith(phone + ' '))
    .map((l) => l.split(' ')[1]);
}

export const byId = (page, id) => page.locator(`[data-testid="${id}"]`);

export async function signIn(page, phone, name, tag) {
  await page.goto(BASE + '/');
  await byId(page, 'phone').waitFor({ timeout: T });
  await shot(page, `${tag}-01-sign-in`);
  await byId(page, 'phone').fill(phone);
  // the code this sign-in asks for, not one sent to the number before
  const before = smsCodes(phone).length;
  await byId(page, 'send-code').click();
  const code = await waitFor(`the code for ${phone} in sms.log`, () => smsCodes(phone)[before]);
  await byId(page, 'code').waitFor({ timeout: T });
  await byId(page, 'code').fill(code);
  await shot(page, `${tag}-02-code`);
  await byId(page, 'verify').click();
  // a new account is asked for a name; an existing one is in at once
  await byId(page, 'display-name').or(byId(page, 'open-contacts')).waitFor({ timeout: T });
  if (await byId(page, 'display-name').isVisible()) {
    await shot(page, `${tag}-03-name`);
    await byId(page, 'display-name').fill(name);
    await byId(page, 'verify').click();
  }
  await byId(page, 'open-contacts').waitFor({ timeout: T });
  await shot(page, `${tag}-04-chats-empty`);
}

/** inbound video frames decoded and audio packets received, from getStats */
export async function mediaIn(page) {
  return page.evaluate(async () => {
    const c = window.__famcallCall;
    if (!c) return null;
    const r = await c.stats();
    if (!r) return null;
    const o = { video_frames: 0, audio_packets: 0, pair: null };
    r.forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'video') o.video_frames += s.framesDecoded || 0;
      if (s.type === 'inbound-rtp' && s.kind === 'audio') o.audio_packets += s.packetsReceived || 0;
    });
    return o;
  });
}


/** Debian's Chromium with a fake camera and microphone, loopback ICE allowed */
export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: [
      '--use-fake-ui-for-media-stream',
      '--use-fake-device-for-media-stream',
      '--allow-loopback-in-peer-connection',
      '--disable-features=WebRtcHideLocalIpsWithMdns',
      '--no-sandbox',
      '--disable-dev-shm-usage',
    ],
  });
}

/** two pages of a phone's size, each its own person (own storage) */
export async function newPerson(browser, who) {
  const ctx = await browser.newContext({
    viewport: { width: 390, height: 844 },
    permissions: ['camera', 'microphone'],
  });
  const p = await ctx.newPage();
  p.on('pageerror', (e) => out({ log: `${who} pageerror: ${e.message}` }));
  p.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') {
      out({ log: `${who} console.${m.type()}: ${m.text().slice(0, 300)}` });
    }
  });
  return p;
}
