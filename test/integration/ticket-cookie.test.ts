/**
 * A browser's handshake (it has an Origin) that carries both a ticket and this server's session cookie
 * (a same-origin page using tickets, as the served script does): when they name different sessions the ticket is stale (the
 * browser's session changed since it was minted: a logout and a new session in another tab) and the
 * handshake is refused `ticket-session-mismatch`, so the SDK fetches a ticket for the cookie's session
 * at once instead of writing to the old session until the ticket runs out (issue 15 case 11, seen
 * in Firefox with three tabs).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connectWithSession } from '../../src/client/index.js';
import { tickets } from '../../src/client/tickets.js';
import { connectClient, connected, refused, startServer } from '../helpers/servers.js';

test('a ticket of another session than the cookie is refused ticket-session-mismatch; the same session connects', async (t) => {
  const server = await startServer();
  t.after(() => server.close());
  server.sio.on('sconnection', (s) => s.on('who', (ack: (u: unknown) => void) => ack(s.session.user)));
  const cookieOld = await server.login({ user: 'ann' });
  const { token: oldTicket } = await server.ticket(cookieOld);
  const cookieNew = await server.login({ user: 'bob' });

  // As a browser sends them: the page's Origin, its cookie, the ticket in auth.
  const browser = (cookie: string, sessionTicket: string) => connectClient(server.url, undefined, { auth: { sessionTicket }, extraHeaders: { cookie, origin: server.url } });
  const stale = browser(cookieNew, oldTicket);
  t.after(() => stale.close());
  const err = await refused(stale);
  assert.deepEqual([err.data?.code, err.data?.reason], ['SESSION_INVALID', 'ticket-session-mismatch']);

  const { token: newTicket } = await server.ticket(cookieNew);
  const fresh = browser(cookieNew, newTicket);
  t.after(() => fresh.close());
  await connected(fresh);
  assert.equal(await fresh.timeout(2000).emitWithAck('who'), 'bob');

  // A cookie that does not verify (another app's, or tampered) leaves the ticket to decide.
  const foreign = browser('connect.sid=s%3Anot-ours.bad', newTicket);
  t.after(() => foreign.close());
  await connected(foreign);

  // A Node client (no Origin) that sends both chose them: its ticket decides (test/adversarial/namespaces.test.ts relies on it).
  const node = connectClient(server.url, cookieNew, { auth: { sessionTicket: oldTicket } });
  t.after(() => node.close());
  await connected(node);
  assert.equal(await node.timeout(2000).emitWithAck('who'), 'ann');
});

test('the SDK with a stale ticket and a fresh cookie connects to the cookie session without waiting for the ticket to run out', async (t) => {
  const server = await startServer({ ticketTtl: 60_000 });
  t.after(() => server.close());
  server.sio.on('sconnection', (s) => s.on('who', (ack: (u: unknown) => void) => ack(s.session.user)));
  const cookieOld = await server.login({ user: 'ann' });
  const { token: oldTicket } = await server.ticket(cookieOld);
  const jar = { cookie: cookieOld, origin: server.url }; // a browser's cookie jar and its page's Origin
  let fetched = 0;
  const socket = connectWithSession(server.url, {
    transports: ['websocket'],
    extraHeaders: jar,
    autoConnect: false,
    onInvalid: 'none',
    // The page's ticket source: the first call hands the stale ticket (as a cached page would), later ones ask the token endpoint.
    credential: tickets({ source: async () => (fetched++ === 0 ? { token: oldTicket, expiresIn: 60_000 } : (await server.ticket(jar.cookie))) }),
  });
  t.after(() => socket.close());
  jar.cookie = await server.login({ user: 'bob' }); // the browser's session changed before the socket connected
  const reasons: string[] = [];
  socket.sessions.on('invalid', (ctx) => reasons.push(ctx.reason));
  const connect = new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    setTimeout(() => reject(new Error(`not connected; invalid reasons so far: ${reasons}`)), 5000).unref();
  });
  socket.connect();
  await connect; // the first handshake is refused (the stale ticket); the SDK's reconnect with a fresh ticket is not
  assert.equal(await socket.timeout(2000).emitWithAck('who'), 'bob');
  assert.deepEqual(reasons, ['ticket-session-mismatch']);
});
