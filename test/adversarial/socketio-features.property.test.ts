// Invariants 2, 6 and 9 (docs/architecture.md#invariants) over random uses of socket.io's own features
// (fast-check, seed printed): connectionStateRecovery (either skipMiddlewares), two namespaces over one
// connection, an app middleware registered before or after sessions(), either mode; steps: acked
// writes on either namespace, transport drops (recovered connections), broadcasts to the user's room,
// a logout, and a login that starts a new connection.
// Judged after each step: every connected socket answers with its session's user (never undefined,
// never another's); after a logout no socket of the old session is connected or in its room, and a
// broadcast to that room reaches nobody; every acked write is stored in its session.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Manager, type Socket as ClientSocket } from 'socket.io-client';
import type { Socket } from 'socket.io';
import { sessions, type SessionServer } from '../../src/server/index.js';
import { noticeOf } from '../../src/protocol.js';
import { once, SECRET, sidOf, startServer, type TestServer } from '../helpers/servers.js';

const NAMESPACES = ['/a', '/b'] as const;
type Step = { kind: 'write'; ns: 0 | 1 } | { kind: 'drop' } | { kind: 'broadcast' } | { kind: 'logout' };
const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('write' as const), ns: fc.constantFrom(0 as const, 1 as const) }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'drop' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'broadcast' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'logout' as const }) },
);
const setups = fc.record({ skipMiddlewares: fc.boolean(), perMessage: fc.boolean(), appFirst: fc.boolean() });

interface Connection {
  manager: Manager;
  sockets: ClientSocket[];
  user: string;
  cookie: string;
}

async function play(setup: { skipMiddlewares: boolean; perMessage: boolean; appFirst: boolean }, steps: Step[]): Promise<string[]> {
  const problems: string[] = [];
  const instances: SessionServer[] = [];
  const server: TestServer = await startServer({
    ioOptions: { connectionStateRecovery: { skipMiddlewares: setup.skipMiddlewares, maxDisconnectionDuration: 60_000 } },
    attach(io, store) {
      for (const name of NAMESPACES) {
        const ns = io.of(name);
        const appMiddleware = (socket: Socket, next: (err?: Error) => void) => ((socket.data.checked = true), next());
        if (setup.appFirst) ns.use(appMiddleware);
        instances.push(sessions(ns, { store, secret: SECRET, perMessage: setup.perMessage, serveClient: name === '/a' }));
        if (!setup.appFirst) ns.use(appMiddleware);
      }
      return instances[0]!;
    },
  });
  const connections: Connection[] = [];
  const writes = new Map<string, number>(); // acked writes per session id
  try {
    for (const [i, sio] of instances.entries()) {
      sio.on('serror', () => undefined);
      sio.on('sconnection', (socket: Socket) => {
        void socket.join(`user:${socket.session.user as string}`);
        socket.on('write', (ack: (user: unknown, n: number) => void) => {
          const key = `n${i}`;
          socket.session[key] = ((socket.session[key] as number | undefined) ?? 0) + 1;
          ack(socket.session.user, socket.session[key] as number);
        });
        socket.on('who', (ack: (user: unknown) => void) => ack(socket.session?.user));
      });
    }
    let n = 0;
    const login = async (): Promise<Connection> => {
      const user = `u${n++}`;
      const cookie = await server.login({ user });
      const manager = new Manager(server.url, { transports: ['websocket'], reconnectionDelay: 50, reconnectionDelayMax: 100, extraHeaders: { cookie } });
      const sockets = NAMESPACES.map((name) => manager.socket(name));
      await Promise.all(sockets.map((s) => once(s, 'connect', 5000)));
      // One broadcast each, so the clients hold an offset: socket.io recovers only such connections.
      const news = sockets.map((s) => once(s, 'news', 5000));
      for (const name of NAMESPACES) server.io.of(name).to(`user:${user}`).emit('news');
      await Promise.all(news);
      const connection = { manager, sockets, user, cookie };
      connections.push(connection);
      return connection;
    };
    let current = await login();
    const allConnected = (c: Connection) => Promise.all(c.sockets.map((s) => (s.connected ? undefined : once(s, 'connect', 5000))));

    for (const s of steps) {
      if (s.kind === 'write') {
        const sock = current.sockets[s.ns]!;
        // The ack names the session user the handler saw (a notice in its place would be an object).
        const reply: unknown = await sock.timeout(5000).emitWithAck('write').catch((err: Error) => `no answer (${err.message})`);
        if (reply === current.user) writes.set(sidOf(current.cookie), (writes.get(sidOf(current.cookie)) ?? 0) + 1);
        else if (!noticeOf([reply])) problems.push(`${NAMESPACES[s.ns]}: a write answered ${JSON.stringify(reply)}, not the session user ${current.user}`);
        const who = await sock.timeout(5000).emitWithAck('who').catch((err: Error) => `no answer (${err.message})`);
        if (who !== current.user) problems.push(`${NAMESPACES[s.ns]}: the socket's session user is ${JSON.stringify(who)}, not ${current.user}`);
      } else if (s.kind === 'drop') {
        const back = Promise.all(current.sockets.map((sock) => once(sock, 'disconnect', 5000).then(() => once(sock, 'connect', 5000))));
        current.manager.engine.close(); // a recoverable drop: "transport close"
        await back.catch((err: Error) => problems.push(`after a drop: ${err.message}`));
        if (current.sockets.some((sock) => !sock.recovered)) problems.push('socket.io did not recover the connection (the property is about recovered sockets)');
      } else if (s.kind === 'broadcast') {
        const heard = current.sockets.map((sock) => once(sock, 'news', 2000).then(() => true, () => false));
        for (const name of NAMESPACES) server.io.of(name).to(`user:${current.user}`).emit('news');
        const got = await Promise.all(heard);
        if (got.some((g) => !g)) problems.push(`a connected socket missed its room's broadcast: ${got}`);
      } else {
        const old = current;
        const told = old.sockets.map((sock) => once(sock, 'disconnect', 3000).then(() => true, () => false));
        await server.logout(old.cookie);
        if ((await Promise.all(told)).some((t) => !t)) problems.push('a socket of the logged-out session was not disconnected');
        for (const name of NAMESPACES) {
          const inRoom = await server.io.of(name).in(`user:${old.user}`).fetchSockets();
          if (inRoom.length > 0) problems.push(`${name}: ${inRoom.length} socket(s) still in the room of the logged-out ${old.user}`);
        }
        old.manager.engine?.close();
        old.sockets.forEach((sock) => sock.close());
        current = await login();
      }
      await allConnected(current).catch((err: Error) => problems.push(`not connected after ${s.kind}: ${err.message}`));
      if (problems.length > 0) break;
    }
    // Every acked write of the live session is stored (its handler ran before the ack; flush saves what waits).
    for (const sio of instances) await sio.flush();
    const sid = sidOf(current.cookie);
    const record = await new Promise<Record<string, number> | undefined>((resolve) => server.store.get(sid, (_err, s) => resolve((s ?? undefined) as Record<string, number> | undefined)));
    const stored = (record?.n0 ?? 0) + (record?.n1 ?? 0);
    if ((writes.get(sid) ?? 0) > stored) problems.push(`${writes.get(sid)} acked writes, ${stored} stored`);
  } finally {
    for (const c of connections) c.sockets.forEach((sock) => sock.close());
    for (const sio of instances.slice(1)) sio.close();
    await server.close();
  }
  return problems;
}

test('socket.io features at random (recovery either way, two namespaces, middleware order, either mode): every connected socket has its own session, a logout leaves nothing connected or in its room, acked writes are stored', { timeout: 240_000 }, async (t) => {
  const seed = process.env.FC_SEED !== undefined ? Number(process.env.FC_SEED) : Math.floor(Math.random() * 2 ** 31);
  const numRuns = Number(process.env.FC_RUNS ?? 6);
  t.diagnostic(`seed ${seed}, ${numRuns} runs`);
  const started = Date.now();
  const details = await fc.check(
    fc.asyncProperty(setups, fc.array(step, { minLength: 1, maxLength: 8 }), async (setup, steps) => {
      const problems = await play(setup, steps);
      if (problems.length > 0) throw new Error(`${problems.join('\n')}\nsetup: ${JSON.stringify(setup)}\nsteps: ${JSON.stringify(steps)}`);
    }),
    { numRuns, seed, path: process.env.FC_PATH, endOnFailure: true },
  );
  t.diagnostic(`${numRuns} runs in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  if (details.failed) assert.fail(`seed ${details.seed}, path ${details.counterexamplePath}: replay with FC_SEED=${details.seed} FC_PATH='${details.counterexamplePath}'\n${String(details.errorInstance)}`);
});
