/**
 * Errors that name the fix (issue 18 item 2, issue 15 case 12's server side): for each set-up
 * mistake, the message a user sees (the refused client's `err.message` and `err.data.message`, the
 * SDK's `invalid` error, the token endpoint's body) says the likely cause and the option,
 * and the server's console says it once per cause, WITHOUT `DEBUG`, bounded so that a client
 * cannot flood it. `code`/`reason` stay as they were. The servers run in their own process
 * (test/fixtures/errors/server.ts) so their stderr is what the app's console shows.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { connectWithSession, type InvalidContext } from '../../src/client/index.js';
import { startServerProcess, type ServerProcess } from '../helpers/server-process.js';
import { connectClient, eventually, once, refused, SECRET, signedCookie } from '../helpers/servers.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/errors/server.ts', import.meta.url));
type Kind = 'origin' | 'store' | 'secret' | 'secure' | 'sameSite';

let server: ServerProcess;
const url = (kind: Kind) => (server.announced.urls as Record<Kind, string>)[kind];
/** The lines the library printed on the server's console. */
const lines = () => server.stderr().split('\n').filter((line) => line.startsWith('socket.io-sessions: '));
const linesWith = (text: string) => lines().filter((line) => line.includes(text));

async function login(kind: Kind): Promise<{ setCookie: string | null; cookie: string }> {
  const res = await fetch(`${url(kind)}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
  await res.arrayBuffer();
  const setCookie = res.headers.get('set-cookie');
  return { setCookie, cookie: setCookie?.split(';')[0] ?? '' };
}

async function refusal(kind: Kind, cookie?: string, headers: Record<string, string> = {}) {
  const client = connectClient(url(kind), cookie, { extraHeaders: headers });
  try {
    return await refused(client, 20_000);
  } finally {
    client.close();
  }
}

/** Waits until `text` is on the console; then the lines before it are all there too (one process writes stderr in order). */
const printed = (text: string) => eventually(() => linesWith(text).length > 0 || undefined, 20_000);

test('error messages name the cause and the option', async (t) => {
  server = await startServerProcess(t, FIXTURE);

  await t.test("a page of another origin, socket.io's cors set but not `origins`: the error and the log (once per origin, bounded) name the origin and `origins`", async () => {
    const { cookie } = await login('origin');
    for (let i = 0; i < 2; i++) {
      const err = await refusal('origin', cookie, { origin: 'http://app.example' });
      assert.equal(err.data?.code, 'ORIGIN_NOT_ALLOWED');
      assert.equal(err.data?.reason, 'origin');
      assert.match(err.message, /^origin not allowed: the page origin "http:\/\/app\.example" is not in the server's sessions\(\) "origins" option \(socket\.io's "cors" does not cover it\)$/);
      assert.equal(err.data?.message, err.message);
    }

    // The token endpoint answers a page of that origin the same way.
    const res = await fetch(`${url('origin')}/socket.io-sessions/token`, { headers: { cookie, origin: 'http://tickets.example' } });
    assert.equal(res.status, 403);
    const body = (await res.json()) as { code: string; reason: string; message: string };
    assert.deepEqual([body.code, body.reason], ['ORIGIN_NOT_ALLOWED', 'origin']);
    assert.match(body.message, /^origin not allowed: the page origin "http:\/\/tickets\.example" is not in the server's sessions\(\) "origins" option/);

    await printed('"http://tickets.example"');
    const told = linesWith('"http://app.example"');
    assert.equal(told.length, 1, `told once for three refusals:\n${lines().join('\n')}`);
    assert.match(told[0]!, /refused the session to a page of origin "http:\/\/app\.example": not allowed by sessions\(\)'s "origins" option \(by default only this server's own origin, "http:\/\/127\.0\.0\.1:\d+"\)\. socket\.io's "cors" option does not cover the session\. If pages of that origin should use it: sessions\(io, \{ origins: \["http:\/\/app\.example"\] \}\)\./);

    // An attacker choosing a new Origin per request gets 100 lines in all, then one "more", then nothing.
    for (let i = 0; i < 120; i++) {
      const flood = await fetch(`${url('origin')}/socket.io-sessions/token`, { headers: { cookie, origin: `http://flood-${i}.example` } });
      assert.equal(flood.status, 403);
      await flood.arrayBuffer();
    }
    // A line of another cause marks the end of what the flood printed.
    assert.equal((await refusal('origin', signedCookie('x', 'not the secret'))).data?.reason, 'bad-signature');
    await printed('signed with none of');
    assert.equal(linesWith('refused the session to a page of origin').length, 100, 'one line per origin, for the first 100 origins');
    assert.deepEqual(linesWith('more than 100'), ['socket.io-sessions: more than 100 origins refused; not logging further ones (DEBUG=socket.io-sessions:handshake logs every refusal)']);
    assert.ok(!server.stderr().includes('flood-119'), 'nothing past the bound');
  });

  await t.test('sessions() given another store than express-session: after a few not-found refusals the error and one log line name the `store` option', async () => {
    const { cookie } = await login('store');
    const seen = [];
    for (let i = 0; i < 4; i++) seen.push(await refusal('store', cookie));
    assert.deepEqual(seen.map((err) => [err.data?.code, err.data?.reason]), Array(4).fill(['SESSION_INVALID', 'not-found']), 'code and reason as before');
    assert.deepEqual(seen.map((err) => err.data?.message === undefined), [true, true, false, false], 'named from the third on: once could be a logout');
    assert.equal(seen[0]!.message, 'session invalid (not-found)');
    assert.equal(seen[3]!.message, 'session invalid (not-found): the store given to sessions() has no session for this cookie and has never been written (is express-session using another store instance?)');
    await printed('nothing has written a session to that store object');
    const told = linesWith('"store"');
    assert.equal(told.length, 1, lines().join('\n'));
    assert.match(told[0]!, /3 handshakes had a correctly signed session cookie whose session is not in the "store" given to sessions\(\).*express-session was given another store instance.*pass the same object as "store" to both/);

    // With one store, an unknown or logged-out session stays a plain not-found: the store was written by the login.
    const { cookie: good } = await login('origin');
    for (let i = 0; i < 3; i++) {
      const err = await refusal('origin', signedCookie(`gone-${i}`));
      assert.deepEqual([err.data?.reason, err.data?.message, err.message], ['not-found', undefined, 'session invalid (not-found)']);
    }
    assert.ok(good);
  });

  await t.test('express-session signs with another secret (another node): bad-signature names the `secret` option, logged once', async () => {
    const { cookie } = await login('secret');
    // Through the SDK: its socket's connect_error carries the server's message (its `invalid` context, the reason).
    const sdk = connectWithSession(url('secret'), { transports: ['websocket'], forceNew: true, extraHeaders: { cookie }, onInvalid: 'none' });
    const [[err], [ctx]] = await Promise.all([once<[Error]>(sdk, 'connect_error', 20_000), once<[InvalidContext]>(sdk.sessions as never, 'invalid', 20_000)]);
    sdk.disconnect();
    assert.deepEqual([ctx.code, ctx.reason], ['SESSION_INVALID', 'bad-signature']);
    assert.equal(err.message, "session invalid (bad-signature): the session cookie is not signed with the secret given to sessions() (it must be express-session's, the same on every node)");
    assert.equal((await refusal('secret', cookie)).data?.reason, 'bad-signature');
    await printed('signed with none of');
    // Two servers of the fixture have had a bad signature: one line each (origin's above, this one).
    assert.equal(linesWith('signed with none of').length, 2, lines().join('\n'));
    assert.match(linesWith('signed with none of')[1]!, /give sessions\(\) the same "secret" \(during a rotation a list: \['new', 'old'\]\)/);
    assert.ok(!server.stderr().includes(SECRET) && !server.stderr().includes('the other node secret'), 'no secret in the log');
  });

  await t.test('a `secure` cookie on http never reaches the server: the handshake, the token endpoint and the log say so', async () => {
    const { setCookie } = await login('secure');
    assert.equal(setCookie, null, 'express-session sets no Secure cookie over http');
    const err = await refusal('secure');
    assert.deepEqual([err.data?.code, err.data?.reason], ['SESSION_INVALID', 'no-session-id']);
    assert.match(err.message, /^session invalid \(no-session-id\): no cookie named "connect\.sid" was sent: express-session sets it with secure: true, and this request came over http \(browsers never store or send a Secure cookie over http: serve over https/);
    const res = await fetch(`${url('secure')}/socket.io-sessions/token`);
    assert.equal(res.status, 401);
    const body = (await res.json()) as { reason: string; message: string };
    assert.equal(body.reason, 'no-session-id');
    assert.match(body.message, /^session invalid \(no-session-id\): .*secure: true, and this request came over http/);
    // Behind a TLS proxy that says so, the cookie is not the cause: not named.
    assert.equal((await refusal('secure', undefined, { 'x-forwarded-proto': 'https' })).message, 'session invalid (no-session-id): no cookie named "connect.sid" was sent');
    await printed('secure: true, and this request came over http');
    assert.equal(linesWith('secure: true, and this request came over http').length, 1, lines().join('\n'));
  });

  await t.test("sameSite: 'none' without secure: the browser drops the cookie; the error and the log say why", async () => {
    const { setCookie } = await login('sameSite');
    assert.match(setCookie ?? '', /SameSite=None/);
    assert.doesNotMatch(setCookie ?? '', /Secure/, 'a cookie a browser refuses');
    const err = await refusal('sameSite'); // what a browser then sends: no cookie
    assert.equal(err.data?.reason, 'no-session-id');
    assert.match(err.message, /express-session sets it with sameSite: 'none' without secure: true \(browsers refuse such a cookie: add cookie\.secure: true/);
    await printed("sameSite: 'none' without secure: true");
    assert.equal(linesWith("sameSite: 'none'").length, 1);
  });

  await t.test('a visitor without any cookie on a server whose cookie is fine: the message names the cookie, no log line', async () => {
    const before = lines().length;
    const err = await refusal('origin');
    assert.equal(err.message, 'session invalid (no-session-id): no cookie named "connect.sid" was sent');
    // A line of a new cause (the store server's first bad signature) marks the end of what the refusal printed.
    await refusal('store', signedCookie('x', 'not the secret'));
    await eventually(() => linesWith('signed with none of').length === 3 || undefined, 20_000);
    assert.equal(lines().length, before + 1, 'nothing for an ordinary logged-out visitor');
  });
});
