// The web build in headless Chromium against a famcall stack, as two
// people would use it: both sign in by phone, find each other, chat both
// ways live, and hold a video call whose frames are counted from WebRTC's
// own statistics (not from the screen). t/60-mobile-web.t starts the stack
// and checks the server's side afterwards.
//
// Environment: BASE_URL (the stack's nginx, serving this build and the
// API), SMS_LOG (where the stack writes one-time codes), SHOTS (a folder
// for screenshots, optional), CHROMIUM (default /usr/bin/chromium).
// Prints one JSON object per line: {"step", "ok", "info"}; the last line
// is {"done": true, "facts": {...}}.
import {
  BASE,
  T,
  byId,
  facts,
  launch,
  mediaIn,
  newPerson,
  out,
  result,
  shot,
  signIn,
  smsCodes,
  step,
  waitFor,
} from './lib.mjs';

const browser = await launch();

try {
  const a = await newPerson(browser, 'A');
  const b = await newPerson(browser, 'B');

  const stamp = String(Date.now()).slice(-7);
  const phoneA = `+4470${stamp}1`;
  const phoneB = `+4470${stamp}2`;
  const userB = `bob${stamp}`;
  facts.phone_a = phoneA;
  facts.phone_b = phoneB;

  await step('alice signs up by phone (code from sms.log, name on first sign-in)', () =>
    signIn(a, phoneA, 'Alice', 'a'));
  await step('bob signs up by phone', () => signIn(b, phoneB, 'Bob', 'b'));

  await step('bob sets a username in Settings > Profile', async () => {
    await b.getByRole('tab', { name: 'Settings' }).click();
    await b.getByLabel('Profile', { exact: true }).click();
    await byId(b, 'profile-username').fill(userB);
    await shot(b, 'b-05-profile');
    await byId(b, 'profile-save').click();
    await b.getByText(`@${userB}`).waitFor({ timeout: T });
    await shot(b, 'b-06-settings');
    await b.getByLabel('Your data and account', { exact: true }).click();
    await byId(b, 'delete-start').waitFor({ timeout: T });
    await shot(b, 'b-06-account');
    await b.goBack();
    await b.getByRole('tab', { name: 'Chats' }).click();
  });
  facts.username_b = userB;

  await step('alice finds bob by username and asks', async () => {
    await byId(a, 'open-contacts').click();
    await byId(a, 'contact-search').fill(userB);
    await byId(a, 'contact-search-go').click();
    await byId(a, `add-${userB}`).click();
    await a.getByText('Waiting for an answer').waitFor({ timeout: T });
    await shot(a, 'a-05-contacts-asked');
  });

  await step('bob sees the request live and accepts', async () => {
    await byId(b, 'open-contacts').click();
    await b.getByLabel('Accept Alice').waitFor({ timeout: T });
    await shot(b, 'b-07-contacts-request');
    await b.getByLabel('Accept Alice').click();
    await b.getByLabel('Message Alice').waitFor({ timeout: T });
  });

  await step('alice sees the acceptance live and opens the chat', async () => {
    await a.getByLabel('Message Bob').waitFor({ timeout: T });
    await a.getByLabel('Message Bob').click();
    await byId(a, 'composer').waitFor({ timeout: T });
  });

  await step('alice writes; bob sees it live in Chats with an unread count', async () => {
    await b.goBack();
    await byId(a, 'composer').fill('Hello Bob, it is Alice');
    await byId(a, 'send').click();
    await byId(a, 'msg-mine').getByText('Hello Bob, it is Alice').waitFor({ timeout: T });
    await byId(b, 'unread-badge').waitFor({ timeout: T });
    await b.getByText('Hello Bob, it is Alice').waitFor({ timeout: T });
    await shot(b, 'b-08-chats-unread');
  });

  await step('bob opens the chat; alice sees the read ticks', async () => {
    await b.getByLabel(/^Chat with Alice/).click();
    await byId(b, 'msg-theirs').getByText('Hello Bob, it is Alice').waitFor({ timeout: T });
    await byId(a, 'tick-read').first().waitFor({ timeout: T });
  });

  await step('bob types (alice sees it) and answers; alice gets it live', async () => {
    await byId(b, 'composer').pressSequentially('Hi Alice', { delay: 20 });
    await byId(a, 'peer-status').getByText(/typing/).waitFor({ timeout: T }).catch(async () => {
      await a.getByText('Bob is typing…').waitFor({ timeout: 5000 });
    });
    await shot(a, 'a-06-chat-typing');
    await byId(b, 'send').click();
    await byId(a, 'msg-theirs').getByText('Hi Alice').waitFor({ timeout: T });
    await byId(b, 'tick-read').first().waitFor({ timeout: T });
    await shot(a, 'a-07-chat');
    await shot(b, 'b-09-chat');
  });

  await step('alice starts a video call: permissions explained first', async () => {
    await a.getByLabel('Video call Bob').click();
    await byId(a, 'permissions-continue').waitFor({ timeout: T });
    await shot(a, 'a-08-permissions');
    await byId(a, 'permissions-continue').click();
    await byId(a, 'call-status').waitFor({ timeout: T });
  });

  await step('bob hears it ring and answers', async () => {
    await b.getByLabel('Accept', { exact: true }).waitFor({ timeout: T });
    await a.getByText('Ringing…').waitFor({ timeout: T });
    await shot(a, 'a-09-call-ringing');
    await shot(b, 'b-10-call-incoming');
    await b.getByLabel('Accept', { exact: true }).click();
    await byId(b, 'primer-continue').click();
  });

  const media = await step('video and audio flow both ways (getStats on each side)', async () => {
    const got = await waitFor(
      'frames both ways',
      async () => {
        const [ma, mb] = await Promise.all([mediaIn(a), mediaIn(b)]);
        return ma && mb && ma.video_frames > 30 && mb.video_frames > 30 && ma.audio_packets > 20 && mb.audio_packets > 20
          ? { alice: ma, bob: mb }
          : null;
      },
      45_000,
    );
    await byId(a, 'remote-video').waitFor({ timeout: T });
    await a.waitForTimeout(500);
    await shot(a, 'a-10-in-call');
    await shot(b, 'b-11-in-call');
    return got;
  });
  facts.media = media;

  await step('mute and camera off show on the controls', async () => {
    await a.getByLabel('Mute', { exact: true }).click();
    await a.getByLabel('Unmute').waitFor({ timeout: T });
    await a.getByLabel('Camera off').click();
    await a.getByLabel('Camera on').waitFor({ timeout: T });
    const muted = await a.evaluate(() => {
      const v = document.querySelector('[data-testid="local-video"]');
      return v === null;
    });
    if (!muted) throw new Error('local preview still shown with the camera off');
    await a.getByLabel('Unmute').click();
    await a.getByLabel('Camera on').click();
  });

  await step('alice hangs up; both see how it ended, in words', async () => {
    facts.call_id = await a.evaluate(() => window.__famcallCall.state().callId);
    await a.getByLabel('End call', { exact: true }).click();
    await a.getByText('Call ended.').waitFor({ timeout: T });
    await b.getByText('Alice hung up.').waitFor({ timeout: T });
    await shot(b, 'b-12-call-ended');
    await byId(a, 'call-close').click();
    await byId(b, 'call-close').click();
  });

  await step('the call is in both histories', async () => {
    await a.goto(BASE + '/calls');
    await b.goto(BASE + '/calls');
    await a.getByText(/Outgoing video call/).waitFor({ timeout: T });
    await b.getByText(/Incoming video call/).waitFor({ timeout: T });
    await shot(a, 'a-11-calls');
  });

  await step('bob misses a call from alice: it shows as missed', async () => {
    await a.getByLabel('Call Bob back').click();
    await a.getByText('Ringing…').waitFor({ timeout: T });
    await b.getByLabel('Decline', { exact: true }).waitFor({ timeout: T });
    await a.getByLabel('End call', { exact: true }).click();
    await a.getByText('Call cancelled.').waitFor({ timeout: T });
    await b.getByText('You missed a call from Alice.').waitFor({ timeout: T });
    await byId(b, 'call-close').click();
    await b.getByRole('tab', { name: 'Calls' }).click();
    await b.getByText(/Missed video call/).waitFor({ timeout: T });
    await shot(b, 'b-13-calls-missed');
  });

  await step('carol joins, downloads her data, and deletes her account with a fresh code', async () => {
    const c = await newPerson(browser, 'C');
    const phoneC = `+4470${stamp}3`;
    facts.phone_c = phoneC;
    await signIn(c, phoneC, 'Carol', 'c');
    await c.getByRole('tab', { name: 'Settings' }).click();
    await c.getByLabel('Your data and account', { exact: true }).click();
    await byId(c, 'export').click();
    await c.getByText('Your data is ready: 0 contacts, 0 chats, 0 calls.').waitFor({ timeout: T });
    await byId(c, 'delete-start').click();
    const before = smsCodes(phoneC).length;
    await byId(c, 'delete-send-code').click();
    const code = await waitFor('the deletion code', () => smsCodes(phoneC)[before]);
    await byId(c, 'delete-proof').fill(code);
    await shot(c, 'c-05-delete');
    await byId(c, 'delete-confirm').click();
    await byId(c, 'phone').waitFor({ timeout: T });
  });
} catch {
  // the failing step is already reported
} finally {
  await browser.close().catch(() => undefined);
  out({ done: true, failed: result.failed, facts });
}
