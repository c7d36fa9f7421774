/**
 * Issue 15 case 12 in real Chromium against the reference server: the cross-origin tickets page
 * (docs/tickets.md's set-up) after its session ended. Without a session its token endpoint answers
 * 401; the SDK must not fall back to a cookie handshake from a foreign origin (refused as
 * ORIGIN_NOT_ALLOWED, fatal, stuck): the invalid policy runs, and after a login the page connects.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser } from 'playwright-core';
import { launchBrowser, PageRecorder, waitUntil } from '../helpers/browser.js';
import { startReferenceServer } from '../helpers/reference-server.js';

let browser: Browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

type PageSocket = { connected: boolean; connect(): void; sessions: { state: string; on(e: string, l: (x: any) => void): void }; emitWithAck(e: string): Promise<any> };

test('cross-origin tickets page logged out: invalid policy runs (no-session-id), nothing fatal; after a login it connects', async () => {
  const server = await startReferenceServer({ env: { PAGE_PORT: '0' }, waitForPage: true });
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    const rec = new PageRecorder(page);
    const describe = () => `${rec.dump()}\nserver:\n${server.output()}`;
    await page.goto(`${server.pageUrl}/cross-origin.html`);
    const state = () => page.evaluate(() => ((0, eval)('socket') as PageSocket).sessions.state);
    await waitUntil(state, (s) => s === 'connected', { what: 'connected with a ticket', describe });
    await page.evaluate(() => {
      const seen: string[] = ((window as unknown as { __seen: string[] }).__seen = []);
      const socket = (0, eval)('socket') as PageSocket;
      socket.sessions.on('invalid', (ctx) => seen.push(`invalid ${ctx.phase} ${ctx.reason} ${ctx.action}`));
      socket.sessions.on('fatal', (err) => seen.push(`fatal ${err.message}`));
    });
    // Log out on the page origin: the session is destroyed and its cookie cleared.
    await page.evaluate(() => fetch('/logout', { method: 'POST' }));
    await waitUntil(state, (s) => s === 'invalid', { what: "the SDK to give up (the page's onInvalid: 'none')", describe });
    const seen = await page.evaluate(() => (window as unknown as { __seen: string[] }).__seen);
    assert.deepEqual(seen.filter((l) => l.startsWith('fatal')), [], 'no fatal ORIGIN_NOT_ALLOWED');
    assert.equal(seen[0], 'invalid connected destroyed reconnect');
    assert.match(seen.at(-1)!, /^invalid handshake no-session-id stop$/, seen.join('\n'));
    // A login on the page origin, then the app connects again.
    const login = await page.evaluate(() =>
      fetch('/login', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name: 'ann' }) }).then((r) => r.status),
    );
    assert.equal(login, 200);
    await page.evaluate(() => ((0, eval)('socket') as PageSocket).connect());
    await waitUntil(state, (s) => s === 'connected', { what: 'connected after the login', describe });
    const user = await page.evaluate(() => ((0, eval)('socket') as PageSocket).emitWithAck('state').then((s) => s.user));
    assert.equal(user, 'ann', "the socket is in the login's session");
  } finally {
    await context.close();
    await server.dispose();
  }
});
