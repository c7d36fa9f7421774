// Invariant 5 (docs/architecture.md#invariants), checked over random sequences (fast-check) of per-message events and store
// faults: "every store, lock and network wait has a deadline; after it the caller gets a typed
// 'unavailable', and nothing queues without bound". One real socket.io server in per-message mode
// on a FaultyStore (a real MemoryStore whose calls can be made to hang, fail or throw), three real
// clients: two sockets of one session and one of another.
//
// Judged after each run:
//   1. every event is answered exactly once, by its ack or by one typed notice as its ack (invariant
//      7; ACK packets counted on the wire), and within its deadline (storeTimeout from its arrival; the save of a unit that ran in time
//      has its own storeTimeout): at most 2 × storeTimeout + slack after it was sent;
//   2. notices are typed: SESSION_UNAVAILABLE with a reason of the store (store-error,
//      store-timeout, queue-timeout) and a retryAfter;
//   3. once the faults are cleared, every socket is served again at once (an acked event within
//      a second), and the stored counter of each session equals its acked increments.
//
// A failure prints the seed and the counterexample's path; replay with
// FC_SEED=<seed> FC_PATH=<path> node --import tsx --test test/adversarial/deadlines.property.test.ts
// (FC_RUNS raises the number of runs).
import { test } from 'node:test';
import fc from 'fast-check';
import type { Socket as ClientSocket } from 'socket.io-client';
import { emit, wire, type Answer } from '../helpers/acks.js';
import { startServer, connectClient, eventually, sidOf } from '../helpers/servers.js';
import { FaultyStore } from '../helpers/stores.js';
import { checkSteps, connectedDespiteLoad, faultSteps, playFault, type FaultStep } from '../helpers/property.js';

const STORE_TIMEOUT_MS = 200;
/** Time for the event to travel and the answer to come back on a loaded 2-core machine. */
const SLACK_MS = 400;
const DEADLINE_MS = 2 * STORE_TIMEOUT_MS + SLACK_MS;
const STORE_REASONS = ['store-error', 'store-timeout', 'queue-timeout'];

type Step =
  | { kind: 'emit'; client: number; burst: number }
  | FaultStep;

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('emit' as const), client: fc.nat(2), burst: fc.integer({ min: 1, max: 6 }) }) },
  ...faultSteps({ fault: 3, clear: 1, pause: 2 }, 300),
);

interface Sent {
  client: number;
  at: number;
  answer: Answer;
}

async function run(steps: Step[]): Promise<string[]> {
  const problems: string[] = [];
  const store = new FaultyStore({ latency: 1 });
  const server = await startServer({ store, perMessage: true, storeTimeout: STORE_TIMEOUT_MS });
  server.sio.on('serror', () => {}); // store failures are expected here; the notices are judged
  server.sio.on('sconnection', (socket) => {
    socket.on('inc', (ack: (n: number) => void) => {
      socket.session.counter = ((socket.session.counter as number | undefined) ?? 0) + 1;
      ack(socket.session.counter as number);
    });
  });
  const cookies = [await server.login({ counter: 0 }), await server.login({ counter: 0 })];
  const sessionOf = [0, 0, 1];
  const clients: ClientSocket[] = sessionOf.map((s) => connectClient(server.url, cookies[s]));
  const sent: Sent[] = [];
  const onWire = clients.map((c) => wire(c));
  try {
    await Promise.all(clients.map((c) => connectedDespiteLoad(c)));
    for (const s of steps) {
      if (s.kind !== 'emit') await playFault(store, s);
      else {
        for (let i = 0; i < s.burst; i++) {
          sent.push({ client: s.client, at: Date.now(), answer: emit(clients[s.client]!, 'inc') });
        }
      }
    }
    // Every answer is due by the last deadline.
    await eventually(() => sent.every((e) => e.answer.at !== undefined), DEADLINE_MS).catch(() => undefined);
    for (const e of sent) {
      const where = `client ${e.client}, event sent at +${e.at - sent[0]!.at} ms`;
      if (e.answer.at === undefined) problems.push(`${where}: no ack and no notice`);
      else if (e.answer.at - e.at > DEADLINE_MS) problems.push(`${where}: answered after ${e.answer.at - e.at} ms`);
      const { notice } = e.answer;
      if (notice && (notice.code !== 'SESSION_UNAVAILABLE' || !STORE_REASONS.includes(notice.reason) || typeof notice.retryAfter !== 'number')) {
        problems.push(`${where}: an untyped notice ${JSON.stringify(notice)}`);
      }
    }
    // Faults gone: every socket is served at once, and each session's counter is its acked increments.
    store.fault = undefined;
    for (const [client, c] of clients.entries()) {
      const started = Date.now();
      const answer = await c.timeout(1000).emitWithAck('inc').catch((err: Error) => err.message);
      if (typeof answer !== 'number') problems.push(`client ${client}: not served once the store is back (${JSON.stringify(answer)}) after ${Date.now() - started} ms`);
      else sent.push({ client, at: started, answer: { args: [answer], at: Date.now() } });
    }
    await server.sio.flush();
    // Each last emit ran after every earlier unit of its session and its ack came after theirs on the
    // same connection: a second answer to any earlier emit would have arrived by now.
    onWire.forEach((w, client) => w.duplicates().length > 0 && problems.push(`client ${client}: ack ids answered twice ${w.duplicates().join(', ')}`));
    for (const [s, cookie] of cookies.entries()) {
      const acks = sent.filter((e) => sessionOf[e.client] === s && e.answer.args !== undefined && !e.answer.notice).length;
      const stored = (store.peek(sidOf(cookie)) as { counter?: number } | undefined)?.counter;
      if (stored !== acks) problems.push(`session ${s}: stored counter ${stored}, ${acks} acked increments`);
    }
  } finally {
    clients.forEach((c) => c.close());
    await server.close();
  }
  return problems;
}

test('per-message events under random store hangs, errors and throws: every event answered in time (ack or one typed notice), served again once the store is back, acked increments stored', async (t) => {
  await checkSteps(t, step, 14, 8, run);
});
