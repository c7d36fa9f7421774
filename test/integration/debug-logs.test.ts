/**
 * DEBUG=socket.io-sessions* (or socket.io-sessions:*) explains a refused handshake, the way socket.io's and express's debug
 * logs do: the handshake log names the reason of every refusal and, for `no-session-id`, the
 * cookie names it saw and the one it looked for, so a name mismatch is obvious. Cookie values and
 * session ids never appear (only a hash of the id). The server runs in its own process
 * (test/fixtures/debug/server.ts: express-session's cookie is 'app.sid', sessions() looks for
 * 'connect.sid'), as an app would with the variable set.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { parse as parseCookie } from 'cookie';
import { startServerProcess } from '../helpers/server-process.js';
import { connectClient, connected, eventually, refused, sidOf, signedCookie } from '../helpers/servers.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/debug/server.ts', import.meta.url));

test('DEBUG=socket.io-sessions* names the reason of a refused handshake and the cookie names seen, never a cookie value or session id', async (t) => {
  const server = await startServerProcess(t, FIXTURE, { env: { DEBUG: 'socket.io-sessions*', DEBUG_COLORS: 'no' } });
  const res = await fetch(`${server.url}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
  await res.arrayBuffer();
  const appCookie = res.headers.get('set-cookie')!.split(';')[0]!; // app.sid=s%3A<id>.<signature>
  assert.match(appCookie, /^app\.sid=/);
  const sid = sidOf(appCookie);
  const secrets = [sid, parseCookie(appCookie)['app.sid']!, appCookie.split('=')[1]!, 'dark-blue'];

  // The cookie under express-session's name: sessions() finds none under its own.
  const socket = connectClient(server.url, `theme=dark-blue; ${appCookie}`);
  t.after(() => socket.close());
  assert.equal((await refused(socket)).data?.reason, 'no-session-id');
  const noId = await eventually(() => server.stderr().split('\n').find((line) => line.includes("no cookie named 'connect.sid'")) ?? '');
  assert.match(noId, /socket\.io-sessions:handshake/);
  assert.match(noId, /cookies seen: \[ 'theme', 'app\.sid' \]/);
  await eventually(() => /socket\.io-sessions:handshake socket \S+ refused: .*no-session-id/.test(server.stderr()));

  // The same id signed with another secret: refused, and the log says why.
  const forged = connectClient(server.url, signedCookie(sid, 'not the secret'));
  t.after(() => forged.close());
  assert.equal((await refused(forged)).data?.reason, 'bad-signature');
  await eventually(() => /socket\.io-sessions:handshake socket \S+ refused: .*bad-signature/.test(server.stderr()));

  // Under the name sessions() expects, the same session connects; the log shows a hash for it.
  const good = connectClient(server.url, signedCookie(sid));
  t.after(() => good.close());
  await connected(good);
  await eventually(() => /socket\.io-sessions:handshake socket \S+ bound to \S+/.test(server.stderr()));

  // The other names: a socket write (save), a ticket (tickets), a logout over HTTP (invalidate).
  await good.emitWithAck('set', 'dark-blue');
  await eventually(() => /socket\.io-sessions:save \S+ saved 1 key/.test(server.stderr()));
  const token = await fetch(`${server.url}/socket.io-sessions/token`, { headers: { cookie: signedCookie(sid) } });
  assert.equal(token.status, 200);
  await token.arrayBuffer();
  await eventually(() => /socket\.io-sessions:tickets ticket minted for \S+/.test(server.stderr()));
  const told = new Promise((resolve) => good.once('disconnect', resolve));
  await (await fetch(`${server.url}/logout`, { method: 'POST', headers: { cookie: appCookie } })).arrayBuffer();
  await told;
  await eventually(() => /socket\.io-sessions:invalidate \S+ invalid \(destroyed\): 1 socket\(s\) told/.test(server.stderr()));

  for (const secret of secrets) assert.ok(!server.stderr().includes(secret), `the debug log shows ${secret}:\n${server.stderr()}`);
});
