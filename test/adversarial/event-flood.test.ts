// Nothing queues without bound: one socket that emits 100,000 events (no acks) as fast as it can
// in per-message mode, on a store with 2 ms per call. The server (its own process, so its heap can
// be measured: fixtures/flood-server.ts) keeps at most `maxPendingEvents` (default 100) of that
// socket's events waiting, tells it 'queue-full' once per overflow episode (not once per event),
// drops what still waits when it disconnects, and keeps answering another user meanwhile.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { startServerProcess } from '../helpers/server-process.js';
import { connectClient, connected, eventually } from '../helpers/servers.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/flood-server.ts', import.meta.url));
const EVENTS = 100_000;
const MB = 1024 * 1024;

interface Stats {
  heapUsed: number;
  runs: number;
  messages: number;
  clients: number;
  runsAtDisconnect: number;
}

async function startFloodServer(t: { after(fn: () => unknown): void }): Promise<{ url: string; stats(): Promise<Stats>; flush(): Promise<{ runs: number }>; output(): string }> {
  const { url, output } = await startServerProcess(t, FIXTURE, { nodeArgs: ['--expose-gc'] });
  const flush = async () => (await fetch(`${url}/flush`, { method: 'POST' })).json() as Promise<{ runs: number }>;
  return { url, stats: async () => (await fetch(`${url}/stats`)).json() as Promise<Stats>, flush, output };
}

async function login(url: string, user: string): Promise<string> {
  const res = await fetch(`${url}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user }) });
  await res.arrayBuffer();
  const setCookie = res.headers.get('set-cookie');
  if (!setCookie) throw new Error('login set no cookie');
  return setCookie.split(';')[0]!;
}

test('per-message: a socket flooding 100,000 events is told "queue-full" (not 100,000 times), the server heap stays bounded, its queued work is dropped on disconnect, and another user is answered meanwhile', async (t) => {
  const server = await startFloodServer(t);
  const [floodCookie, otherCookie] = await Promise.all([login(server.url, 'flooder'), login(server.url, 'bystander')]);
  const flooder = connectClient(server.url, floodCookie);
  const other = connectClient(server.url, otherCookie);
  t.after(() => flooder.close());
  t.after(() => other.close());
  await Promise.all([connected(flooder), connected(other)]);
  await other.timeout(2000).emitWithAck('ping');
  const baseline = await server.stats();

  const queueFull: unknown[] = [];
  const otherNotices: unknown[] = [];
  flooder.on('sio-sessions:unavailable', (data: { reason?: string }) => data?.reason === 'queue-full' && queueFull.push(data));
  flooder.on('sio-sessions:unavailable', (data: { reason?: string }) => data?.reason !== 'queue-full' && otherNotices.push(data));

  // The bystander's acked event, sent once the flood is well under way.
  let pingMs: number | undefined;
  let pingError: string | undefined;
  let bystander: Promise<void> | undefined;
  const floodStarted = performance.now();
  for (let sent = 0; sent < EVENTS; ) {
    for (const end = Math.min(EVENTS, sent + 1000); sent < end; sent++) flooder.emit('work', sent);
    if (sent === 20_000) {
      const started = performance.now();
      bystander = other.timeout(5000).emitWithAck('ping').then(
        () => void (pingMs = performance.now() - started),
        (err: Error) => void (pingError = err.message),
      );
    }
    await new Promise((resolve) => setImmediate(resolve));
  }
  const emittedMs = performance.now() - floodStarted;
  // Until the server has read the whole flood (or stopped reading it).
  let last = -1;
  let received = 0;
  await eventually(async () => {
    received = (await server.stats()).messages;
    const settled = received >= baseline.messages + EVENTS || received === last;
    last = received;
    return settled;
  }, 60_000, 300);
  const peak = await server.stats();
  await bystander;
  const growthMb = (peak.heapUsed - baseline.heapUsed) / MB;

  // A last burst, then leave at once: the server still holds up to maxPendingEvents of it when it sees the disconnect.
  for (let i = 0; i < 1000; i++) flooder.emit('work', EVENTS + i);
  flooder.close();
  // Once the server has seen the disconnect (handler runs counted at that moment), everything still queued for the flooder must be dropped:
  // sio.flush() waits for all queued work, so a kept queue would run (up to maxPendingEvents) before it answers.
  await eventually(async () => (await server.stats()).clients === 1, 10_000);
  const { runsAtDisconnect } = await server.stats();
  const { runs: runsAfterFlush } = await server.flush();

  t.diagnostic(
    `emitted ${EVENTS} in ${emittedMs.toFixed(0)} ms; server read ${received - baseline.messages}; heap +${growthMb.toFixed(1)} MB; handler runs ${peak.runs} at peak, ` +
      `${runsAtDisconnect} once the server saw the disconnect, ${runsAfterFlush} once its queued work was flushed; queue-full notices ${queueFull.length} (other unavailable notices ${otherNotices.length}); ` +
      `bystander ping ${pingMs === undefined ? pingError : `${pingMs.toFixed(0)} ms`}`,
  );

  assert.ok(growthMb < 40, `server heap grew ${growthMb.toFixed(1)} MB under the flood (want < 40 MB)`);
  assert.ok(queueFull.length >= 1, 'the flooding client is told its queue is full');
  assert.ok(queueFull.length < 1000, `told 'queue-full' ${queueFull.length} times: once per overflow episode, not per dropped event`);
  assert.ok(pingMs !== undefined && pingMs < 2000, `another user's acked event during the flood: ${pingMs === undefined ? pingError : `${pingMs.toFixed(0)} ms`} (want < 2000 ms)`);
  // At most the one event whose store read was in flight at the disconnect may still run.
  assert.ok(runsAfterFlush - runsAtDisconnect <= 1, `handlers kept running for the disconnected flooder: ${runsAtDisconnect} -> ${runsAfterFlush}`);
  assert.ok(peak.runs < EVENTS, 'not every flooded event ran');
});
