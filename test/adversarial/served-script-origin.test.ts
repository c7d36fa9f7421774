// The served script `/socket.io/socket.io-sessions.js` embeds a ticket (and on `?renew=1`
// re-issues the session cookie) only when the request shows it comes from an allowed origin:
// `Sec-Fetch-Site: same-origin` (or `none`), an allowed `Origin`, or, with neither, a `Referer` of
// an allowed origin. A classic <script> tag on another site carries the user's cookie but no Origin,
// and older browsers send no Sec-Fetch-Site: that page must not read a ticket of this user.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, type TestServer } from '../helpers/servers.js';

const SCRIPT = '/socket.io/socket.io-sessions.js';
const NULL_TICKET = /\.ticket=null;\s*$/;
const SOME_TICKET = /\.ticket=\{"token":"[^"]+"/;

async function script(server: TestServer, headers: Record<string, string>, query = ''): Promise<{ body: string; setCookie: string | null }> {
  const res = await fetch(`${server.url}${SCRIPT}${query}`, { headers });
  assert.equal(res.status, 200);
  return { body: await res.text(), setCookie: res.headers.get('set-cookie') };
}

async function loggedIn(t: { after(fn: () => unknown): void }) {
  // A cookie with a max age, so `?renew=1` has a cookie to re-issue.
  const server = await startServer({ sessionCookie: { maxAge: 60_000 } });
  t.after(() => server.close());
  return { server, cookie: await server.login({ user: 'alice' }) };
}

test('another site including the script gets no ticket when the browser sends no Sec-Fetch-Site (only its Referer)', async (t) => {
  const { server, cookie } = await loggedIn(t);
  const evil = { cookie, referer: 'https://evil.example/page' };
  const plain = await script(server, evil);
  assert.match(plain.body.slice(-200), NULL_TICKET);
  const renew = await script(server, evil, '?renew=1');
  assert.match(renew.body.slice(-200), NULL_TICKET);
  assert.equal(renew.setCookie, null, 'no session cookie re-issued for another site');
});

test('a request that shows nothing of where it comes from (no Sec-Fetch-Site, Origin or Referer) gets no ticket and no cookie', async (t) => {
  const { server, cookie } = await loggedIn(t);
  assert.match((await script(server, { cookie })).body.slice(-200), NULL_TICKET);
  assert.equal((await script(server, { cookie }, '?renew=1')).setCookie, null);
});

test('a foreign Origin, Sec-Fetch-Site cross-site, same-site or garbage, and a Referer of another scheme or not a URL get no ticket and no cookie', async (t) => {
  const { server, cookie } = await loggedIn(t);
  for (const headers of <Array<Record<string, string>>>[
    { origin: 'https://evil.example' },
    { 'sec-fetch-site': 'cross-site' },
    { 'sec-fetch-site': 'same-site' }, // a sibling subdomain is another origin
    { 'sec-fetch-site': 'garbage', referer: `${server.url}/` },
    { referer: `https://127.0.0.1:${server.port}/` }, // same host and port, other scheme
    { referer: 'not a url' },
  ]) {
    const res = await script(server, { cookie, ...headers }, '?renew=1');
    assert.match(res.body.slice(-200), NULL_TICKET, JSON.stringify(headers));
    assert.equal(res.setCookie, null, JSON.stringify(headers));
  }
});

test("the server's own pages get a ticket: Sec-Fetch-Site same-origin or none, its own Origin, or (no Sec-Fetch-Site) its own Referer", async (t) => {
  const { server, cookie } = await loggedIn(t);
  for (const headers of <Array<Record<string, string>>>[
    { 'sec-fetch-site': 'same-origin' },
    { 'sec-fetch-site': 'none' },
    { origin: server.url },
    { referer: `${server.url}/index.html` },
  ]) {
    assert.match((await script(server, { cookie, ...headers })).body.slice(-400), SOME_TICKET, JSON.stringify(headers));
  }
  // ...and with ?renew=1, the renewed cookie.
  const renewed = await script(server, { cookie, 'sec-fetch-site': 'same-origin' }, '?renew=1');
  assert.match(renewed.body.slice(-400), SOME_TICKET);
  assert.equal(renewed.setCookie?.split(';')[0], cookie);
});
