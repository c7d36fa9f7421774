/**
 * A socket that keeps its session alive outlives the browser's cookie unless the cookie is renewed:
 * the server tells the socket (`sio-sessions:renew-cookie`) and the SDK renews it over HTTP, here
 * through the served script (`?renew=1`), as the demo page has no token endpoint configured.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser } from 'playwright-core';
import { launchBrowser, PageRecorder, textOf, waitUntil } from '../helpers/browser.js';
import { startReferenceServer } from '../helpers/reference-server.js';

const MAX_AGE = 4000;
let browser: Browser;
before(async () => {
  browser = await launchBrowser();
});
after(() => browser?.close());

test('an active page keeps its session past the cookie max age: the SDK renews the browser cookie when told', async () => {
  const server = await startReferenceServer({ env: { COOKIE_MAX_AGE: String(MAX_AGE), REVALIDATE_INTERVAL: '300' } });
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    const rec = new PageRecorder(page);
    const describe = () => `${rec.dump()}\n${server.output()}`;
    await page.goto(`${server.url}/`);
    await waitUntil(() => textOf(page, '#state'), (s) => s === 'connected', { what: 'connected', describe });
    const sessionCookie = async () => (await context.cookies(server.url)).find((c) => c.name === 'connect.sid');
    const first = (await sessionCookie())!;
    assert.ok(first.expires > 0, 'a cookie with an expiry (maxAge)');

    // Active for well over one max age: an increment every 300 ms.
    let increments = 0;
    const until = Date.now() + MAX_AGE * 1.75;
    while (Date.now() < until) {
      await page.click('#increment');
      increments += 1;
      await waitUntil(() => textOf(page, '#counter'), (c) => c === String(increments), { what: `counter ${increments}`, describe });
      await new Promise((r) => setTimeout(r, 300)); // wall clock: an active user's pace over a real max age
    }
    const renewed = (await sessionCookie())!;
    assert.ok(renewed, 'the browser still has its session cookie after the first max age ran out');
    assert.equal(renewed.value, first.value, 'the same session');
    assert.ok(renewed.expires > first.expires + 1, `renewed: expires ${renewed.expires} vs first ${first.expires}`);
    assert.ok(
      rec.events.some((e) => e.type === 'network' && /socket\.io-sessions\.js\?[^ ]*renew=1/.test(e.text)),
      `the SDK asked for the renewal:\n${describe()}`,
    );

    // A new page load uses the renewed cookie: the same session, the counter kept.
    await page.reload();
    await waitUntil(() => textOf(page, '#state'), (s) => s === 'connected', { what: 'connected after reload', describe });
    await waitUntil(() => textOf(page, '#counter'), (c) => c === String(increments), { what: `counter still ${increments}`, describe });
  } finally {
    await context.close();
    await server.dispose();
  }
});
