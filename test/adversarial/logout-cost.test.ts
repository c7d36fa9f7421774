// One logout (or login) costs O(1) store calls and no lingering CPU, even right after a socket
// wrote the session: one destroy, at most one repeat for a save that raced it; the HTTP side keeps
// answering at once; the session's sockets are told 'destroyed'.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { FaultyStore } from '../helpers/stores.js';
import { startServer, connectClient, connected, once, eventually, sidOf, delay } from '../helpers/servers.js';

const INVALID_DESTROYED = { code: 'SESSION_INVALID', reason: 'destroyed' };

type Action = 'logout' | 'login';

async function afterSocketWrite(t: { after(fn: () => unknown): void; diagnostic(msg: string): void }, perMessage: boolean, action: Action) {
  const store = new FaultyStore();
  const server = await startServer({ store, perMessage, saveDelay: 50 });
  t.after(() => server.close());
  server.sio.on('sconnection', (socket) => {
    socket.on('note', (value: string, ack: () => void) => {
      socket.session.note = value;
      ack();
    });
  });
  const cookie = await server.login({ user: 'alice' });
  const sid = sidOf(cookie);
  const client = connectClient(server.url, cookie);
  t.after(() => client.close());
  await connected(client);
  await client.timeout(3000).emitWithAck('note', 'written over the socket');
  // Saved (per-connection: past saveDelay; per-message: before the ack).
  await eventually(() => (store.peek(sid) as { note?: string } | undefined)?.note === 'written over the socket', 3000);
  const invalid = once<[unknown]>(client, 'sio-sessions:invalid', 3000);

  store.resetCalls();
  const started = performance.now();
  const res = await fetch(`${server.url}/${action}`, {
    method: 'POST',
    headers: { cookie, 'content-type': 'application/json' },
    body: JSON.stringify(action === 'login' ? { user: 'alice again' } : {}),
  });
  await res.arrayBuffer();
  const actionMs = performance.now() - started;
  // The next HTTP request of another user, right after.
  const nextStarted = performance.now();
  const other = await fetch(`${server.url}/session`);
  await other.arrayBuffer();
  const nextMs = performance.now() - nextStarted;
  const destroysRightAfter = store.calls.destroy;
  const [payload] = await invalid.catch(() => [undefined]);
  const cpuBefore = process.cpuUsage();
  await delay(2000); // wall clock: a window to catch lingering timers or retries (no queue to flush would show them)
  const cpu = process.cpuUsage(cpuBefore);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  const destroysLater = store.calls.destroy;
  t.diagnostic(`${action}: HTTP ${res.status} in ${actionMs.toFixed(0)} ms, next request ${nextMs.toFixed(0)} ms, destroys ${destroysRightAfter} then ${destroysLater} after 2 s, CPU ${cpuMs.toFixed(0)} ms in those 2 s, invalid ${JSON.stringify(payload)}`);

  assert.equal(res.status, 200);
  assert.ok(destroysRightAfter <= 2, `store.destroy called ${destroysRightAfter} times for one ${action}`);
  assert.ok(destroysLater <= 2, `store.destroy called ${destroysLater} times by 2 s after one ${action}`);
  assert.ok(cpuMs < 500, `the process was busy ${cpuMs.toFixed(0)} ms of the 2 s after the ${action}`);
  assert.ok(nextMs < 300, `the next HTTP request took ${nextMs.toFixed(0)} ms`);
  assert.ok(actionMs < 1000, `the ${action} took ${actionMs.toFixed(0)} ms`);
  assert.deepEqual(payload, INVALID_DESTROYED, 'the socket is told its session was destroyed');
  assert.equal(store.peek(sid), undefined, 'the old session is gone from the store');
}

for (const perMessage of [false, true]) {
  const mode = perMessage ? 'per-message' : 'per-connection';
  test(`${mode}: a logout right after a socket wrote the session costs at most two store destroys and no lingering work, HTTP answers at once, the socket hears 'destroyed'`, (t) =>
    afterSocketWrite(t, perMessage, 'logout'));
  test(`${mode}: a login (regenerate) right after a socket wrote the session costs at most two store destroys and no lingering work, HTTP answers at once, the socket hears 'destroyed'`, (t) =>
    afterSocketWrite(t, perMessage, 'login'));
}
