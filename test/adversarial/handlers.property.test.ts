// Invariant 7 (docs/architecture.md) over random handler behaviours (fast-check): per-message
// handlers that return ok, throw, reject, hang past handlerTimeout, ack twice, ack then throw, or
// write the session after returning, in random bursts from three real clients (two sockets of one
// session, one of another) on a FaultyStore (a real MemoryStore whose calls can hang, fail or throw).
//
// Judged after each run:
//   1. every emit is answered exactly once (ACK packets counted on the wire), within a bound: its
//      deadline (storeTimeout from its arrival), one handlerTimeout (a handler that started in time),
//      the save's storeTimeout, plus slack;
//   2. the answer fits the behaviour: a handler that failed gets a typed EVENT_FAILED notice
//      (handler-error, handler-timeout), never its ack; one that acked gets its first ack, or a
//      SESSION_UNAVAILABLE notice when the event could not run or be saved (store, queue);
//   3. once the faults are cleared every socket is served at once, and each session's stored counter
//      equals its acked increments (a failed handler's +1000 is never stored).
//
// A failure prints the seed; replay with FC_SEED=<seed> FC_PATH=<path>
// node --import tsx --test test/adversarial/handlers.property.test.ts (FC_RUNS raises the runs).
import { test } from 'node:test';
import fc from 'fast-check';
import type { Socket } from 'socket.io';
import type { Socket as ClientSocket } from 'socket.io-client';
import { emit, wire, type Answer } from '../helpers/acks.js';
import { connectClient, eventually, sidOf, startServer } from '../helpers/servers.js';
import { FaultyStore } from '../helpers/stores.js';
import { checkSteps, connectedDespiteLoad, faultSteps, playFault, type FaultStep } from '../helpers/property.js';

const STORE_TIMEOUT_MS = 200;
const HANDLER_TIMEOUT_MS = 150;
/** Time for the event to travel and the answer to come back on a loaded 2-core machine. */
const SLACK_MS = 600;
const BOUND_MS = 2 * STORE_TIMEOUT_MS + HANDLER_TIMEOUT_MS + SLACK_MS;
const BEHAVIOURS = ['ok', 'throw', 'reject', 'hang', 'twice', 'ack-then-throw', 'write-after-return'] as const;
type Behaviour = (typeof BEHAVIOURS)[number];
/** Behaviours whose ack must never arrive (their changes are undone). */
const FAILING = new Set<Behaviour>(['throw', 'reject', 'hang', 'ack-then-throw']);
const STORE_REASONS = new Set(['store-error', 'store-timeout', 'queue-timeout', 'queue-full']);

type Step =
  | { kind: 'burst'; client: number; behaviours: Behaviour[] }
  | FaultStep;

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('burst' as const), client: fc.nat(2), behaviours: fc.array(fc.constantFrom(...BEHAVIOURS), { minLength: 1, maxLength: 6 }) }) },
  ...faultSteps({ fault: 2, clear: 1, pause: 2 }, 200),
);

interface Sent {
  client: number;
  behaviour: Behaviour;
  at: number;
  answer: Answer;
}

/** One handler for every behaviour: `counter` is the session's acked increments, `stray` is written after returning. */
function handle(socket: Socket): void {
  const session = socket.session as Record<string, number>;
  socket.on('act', async (behaviour: Behaviour, ack: (...args: unknown[]) => void) => {
    if (behaviour === 'ok' || behaviour === 'twice' || behaviour === 'write-after-return') {
      session.counter += 1;
      ack(session.counter);
      if (behaviour === 'twice') ack('again');
      if (behaviour === 'write-after-return') setTimeout(() => (session.stray = (session.stray ?? 0) + 1), 5);
      return;
    }
    session.counter += 1000;
    if (behaviour === 'ack-then-throw') ack('acked before throwing');
    if (behaviour === 'reject') await Promise.resolve();
    if (behaviour === 'hang') await new Promise(() => undefined);
    throw new Error(`handler ${behaviour}`);
  });
}

function judge(sent: Sent[]): string[] {
  const problems: string[] = [];
  for (const e of sent) {
    const where = `client ${e.client} '${e.behaviour}' sent at +${e.at - sent[0]!.at} ms`;
    const bound = BOUND_MS;
    const { args, notice, at } = e.answer;
    if (at === undefined) {
      problems.push(`${where}: no ack and no notice`);
      continue;
    }
    if (at - e.at > bound) problems.push(`${where}: answered after ${at - e.at} ms (bound ${bound})`);
    if (notice) {
      const typed =
        (notice.code === 'SESSION_UNAVAILABLE' && STORE_REASONS.has(notice.reason) && typeof notice.retryAfter === 'number') ||
        (notice.code === 'EVENT_FAILED' && FAILING.has(e.behaviour) && notice.reason === (e.behaviour === 'hang' ? 'handler-timeout' : 'handler-error'));
      if (!typed) problems.push(`${where}: notice ${JSON.stringify(notice)}`);
    } else if (FAILING.has(e.behaviour)) problems.push(`${where}: a failed handler's ack arrived ${JSON.stringify(args)}`);
    else if (args?.length !== 1 || typeof args[0] !== 'number') problems.push(`${where}: not its first ack ${JSON.stringify(args)}`);
  }
  return problems;
}

async function run(steps: Step[]): Promise<string[]> {
  const store = new FaultyStore({ latency: 1 });
  const server = await startServer({ store, perMessage: true, storeTimeout: STORE_TIMEOUT_MS, handlerTimeout: HANDLER_TIMEOUT_MS, maxPendingEvents: 8 });
  server.sio.on('serror', () => {}); // failures are expected here; the answers are judged
  server.sio.on('sconnection', (socket) => handle(socket));
  const cookies = [await server.login({ counter: 0 }), await server.login({ counter: 0 })];
  const sessionOf = [0, 0, 1];
  const clients: ClientSocket[] = sessionOf.map((s) => connectClient(server.url, cookies[s]));
  const onWire = clients.map((c) => wire(c));
  const sent: Sent[] = [];
  try {
    await Promise.all(clients.map((c) => connectedDespiteLoad(c)));
    for (const s of steps) {
      if (s.kind !== 'burst') await playFault(store, s);
      else for (const behaviour of s.behaviours) sent.push({ client: s.client, behaviour, at: Date.now(), answer: emit(clients[s.client]!, 'act', behaviour) });
    }
    await eventually(() => sent.every((e) => e.answer.at !== undefined), BOUND_MS).catch(() => undefined);
    const problems = judge(sent);
    store.fault = undefined;
    for (const [client, c] of clients.entries()) {
      const answer = await c.timeout(2000).emitWithAck('act', 'ok').catch((err: Error) => err.message);
      if (typeof answer !== 'number') problems.push(`client ${client}: not served once the store is back (${JSON.stringify(answer)})`);
      else sent.push({ client, behaviour: 'ok', at: Date.now(), answer: { args: [answer], at: Date.now() } });
    }
    await server.sio.flush();
    // Each last emit ran after every earlier unit of its session and its ack came after theirs on the
    // same connection: a second answer to any earlier emit would have arrived by now.
    onWire.forEach((w, client) => w.duplicates().length > 0 && problems.push(`client ${client}: ack ids answered twice: ${w.duplicates().join(', ')}`));
    for (const [s, cookie] of cookies.entries()) {
      const acks = sent.filter((e) => sessionOf[e.client] === s && !FAILING.has(e.behaviour) && e.answer.args && !e.answer.notice).length;
      const stored = (store.peek(sidOf(cookie)) as { counter?: number } | undefined)?.counter;
      if (stored !== acks) problems.push(`session ${s}: stored counter ${stored}, ${acks} acked increments`);
    }
    return problems;
  } finally {
    clients.forEach((c) => c.close());
    await server.close();
  }
}

test('random handler behaviours (ok, throw, reject, hang, ack twice, ack then throw, write after returning) in bursts, with store faults: every emit answered exactly once, in time, by its ack or a notice that fits; acked increments stored', async (t) => {
  await checkSteps(t, step, 10, 6, run);
});
