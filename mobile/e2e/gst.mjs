// The web app calls the GStreamer desktop client (famcall-client, issue
// 20): t/60-mobile-gst.t has made both accounts (Alice by phone, Bob's
// client by email) contacts and left the client answering; here Alice
// signs in in Chromium, opens the chat with Bob, places a video call,
// sees frames and sound arrive from the client (getStats), and hangs up.
// Environment as web.mjs, plus PHONE (Alice's number).
import { BASE, T, byId, facts, launch, mediaIn, newPerson, out, result, shot, signIn, step, waitFor } from './lib.mjs';

const browser = await launch();

try {
  const a = await newPerson(browser, 'A');

  await step('alice signs in by phone in the web app', () => signIn(a, process.env.PHONE, 'Alice', 'g'));

  await step('alice opens the chat with bob (the desktop client)', async () => {
    await byId(a, 'open-contacts').click();
    await a.getByLabel('Message Bob').click();
    await byId(a, 'composer').waitFor({ timeout: T });
  });

  await step('alice video-calls bob; the client answers', async () => {
    await a.getByLabel('Video call Bob').click();
    await byId(a, 'permissions-continue').click();
    await a.getByLabel('End call', { exact: true }).waitFor({ timeout: T });
  });

  facts.media = await step('frames and sound arrive from the client (getStats)', async () => {
    const got = await waitFor(
      'video and audio from the client',
      async () => {
        const m = await mediaIn(a);
        return m && m.video_frames > 30 && m.audio_packets > 50 ? m : null;
      },
      45_000,
    );
    await shot(a, 'g-in-call');
    return got;
  });

  await step('alice hangs up', async () => {
    facts.call_id = await a.evaluate(() => window.__famcallCall.state().callId);
    // the client counts what it decoded until the end: give it some to count
    await a.waitForTimeout(2000);
    await a.getByLabel('End call', { exact: true }).click();
    await a.getByText('Call ended.').waitFor({ timeout: T });
  });
} catch {
  // the failing step is already reported
} finally {
  await browser.close().catch(() => undefined);
  out({ done: true, failed: result.failed, facts, base: BASE });
}
