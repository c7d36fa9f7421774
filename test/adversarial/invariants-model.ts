/**
 * The world the invariant property tests drive (invariants.property.test.ts): real server nodes
 * (one on a FaultyStore with random latency, or two sharing a real redis-server through
 * connect-redis and the Redis adapter), real socket.io clients, and browsers with cookie jars;
 * an interpreter for generated step lists; and judges for the invariants (docs/architecture.md#invariants), which read
 * only what the run recorded (writes with their send and ack times, destroys, store check points)
 * and the store itself.
 *
 * Every value written is `<owner tag>:<write id>`, where the owner tag names one session (set at
 * its login) and the write id names one write, so a stored value says which session wrote it and
 * which write it was.
 */
import { performance } from 'node:perf_hooks';
import type { SessionData } from 'express-session';
import { RedisStore } from 'connect-redis';
import type { Socket as ClientSocket } from 'socket.io-client';
import { sessions, type SessionServer } from '../../src/server/index.js';
import { noticeOf } from '../../src/protocol.js';
import { startServer, connectClient, connected, delay, sidOf, SECRET, type TestServer, type TestServerOptions } from '../helpers/servers.js';
import { FaultyStore, type StoreOp } from '../helpers/stores.js';
import { startRedisNode, type RedisClient } from '../helpers/redis-node.js';

// ---------------------------------------------------------------------------------------------
// What a run is made of

/** Keys that socket and HTTP writes set (blind writes). */
export const KEYS = ['k0', 'k1'] as const;
/** The key appends extend: a list, so a write is a read-modify-write of the session (as a counter is). */
export const LOG_KEY = 'log';
export const BROWSERS = 2;
/** What a lying client sends as its "session". */
const FORGED = { owner: 'FORGED', role: 'admin', cookie: { originalMaxAge: null } };

export interface Variant {
  name: string;
  /** 'faulty': one node on a FaultyStore with 0-3 ms latency per call (and some slow ones); 'redis': two nodes on one redis-server. */
  backend: 'faulty' | 'redis';
  /** Namespaces, each with its own sessions() instance on the node's one store. */
  namespaces: Array<{ path: string; perMessage: boolean }>;
  /** redis: `lock: redisLock(client)`, and `sio.httpLock()` in front of every HTTP route. */
  lock?: boolean;
  /** A connection may carry sockets of several namespaces (one engine.io connection, one handshake request). */
  multiplex?: boolean;
}

/** A socket of a connection: on namespace `ns`, with the browser's cookie or a ticket of browser `cred`'s session. */
export interface SocketSpec {
  ns: number;
  cred: 'cookie' | number;
}

/** A socket.io Manager (one engine.io connection) of a browser, to a node, with one socket per namespace. */
export interface ConnSpec {
  browser: number;
  node: number;
  sockets: SocketSpec[];
}

export type BasicStep =
  | { kind: 'emit'; conn: number; sock: number; key: number }
  | { kind: 'append'; conn: number; sock: number }
  | { kind: 'httpWrite'; browser: number; node: number; key: number }
  | { kind: 'httpRead'; browser: number; node: number }
  | { kind: 'reconnect'; conn: number; node: number }
  | { kind: 'login'; browser: number; node: number }
  | { kind: 'logout'; browser: number; node: number }
  | { kind: 'renew'; browser: number; node: number }
  | { kind: 'refresh'; conn: number; sock: number }
  /** The client lies: emits `smessage` with a forged "session", then sends through the seed's send(). */
  | { kind: 'lie'; conn: number; sock: number }
  | { kind: 'pause'; ms: number };
/** A step of a race, launched `after` ms after the race began. */
export type RaceMember = BasicStep & { after: number };
/** `race`: the steps launched together (each `after` a few ms), none awaiting another, then all awaited. */
export type Step = BasicStep | { kind: 'race'; steps: RaceMember[] };

export interface Scenario {
  /** Seeds the store latencies (FaultyStore). */
  latencySeed: number;
  conns: ConnSpec[];
  steps: Step[];
}

export function formatStep(step: Step | RaceMember): string {
  switch (step.kind) {
    case 'emit':
      return `emit(c${step.conn}.s${step.sock} ${KEYS[step.key]})`;
    case 'append':
      return `append(c${step.conn}.s${step.sock})`;
    case 'httpWrite':
      return `httpWrite(b${step.browser}@n${step.node} ${KEYS[step.key]})`;
    case 'httpRead':
    case 'login':
    case 'logout':
    case 'renew':
      return `${step.kind}(b${step.browser}@n${step.node})`;
    case 'reconnect':
      return `reconnect(c${step.conn}@n${step.node})`;
    case 'refresh':
      return `refresh(c${step.conn}.s${step.sock})`;
    case 'lie':
      return `lie(c${step.conn}.s${step.sock})`;
    case 'pause':
      return `pause(${step.ms})`;
    case 'race':
      return `race[${step.steps.map((member) => `${member.after ? `+${member.after} ` : ''}${formatStep(member)}`).join(' | ')}]`;
  }
}

export function formatConn(conn: ConnSpec, variant: Variant): string {
  const sockets = conn.sockets.map((s) => `${variant.namespaces[s.ns % variant.namespaces.length]!.path} ${s.cred === 'cookie' ? 'cookie' : `ticket(b${s.cred})`}`);
  return `b${conn.browser}@n${conn.node}[${sockets.join(', ')}]`;
}

/** The invariants judged, numbered as in the test file. */
export const PROPERTIES = {
  1: 'a destroyed session never exists again',
  2: 'every acked per-message write is in the store (unless superseded or destroyed)',
  3: 'one destroy costs at most 1 + nodes store destroys',
  4: 'no session record holds another session\'s data',
  5: 'no handler sees another session, or a session a client sent',
  6: 'no store work lingers after the run settles (beyond revalidation)',
} as const;
export type PropertyId = keyof typeof PROPERTIES;
/** Which violated property a counterexample is shrunk for, when a run violates several: another session's data first, cost last. */
export const PRIORITY: PropertyId[] = [5, 4, 1, 2, 3, 6];

export interface Violation {
  property: PropertyId;
  message: string;
}

// ---------------------------------------------------------------------------------------------
// Timings: short, so revalidation, save delays and ticket expiry interleave with the steps.

const REVALIDATE_MS = 150;
const SAVE_DELAY_MS = 40;
const TICKET_TTL_MS = 1000;
const STORE_TIMEOUT_MS = 3000;
const COOKIE_MAX_AGE_MS = 60_000;
/** A client waits this long for an ack or a connect before recording "no answer". */
const ANSWER_MS = 4000;
/** The store is settled when no write (set, destroy) started or ended for this long (more than SAVE_DELAY_MS plus a store call). */
const QUIET_MS = 80;
/** ... and must be within this long after the last step. */
const SETTLE_MAX_MS = 2000;
/** ... or this long when property 6 is not judged. */
const UNJUDGED_SETTLE_MS = 600;
/** Property 6 watches the store for this long once settled. */
const WINDOW_MS = 300;
/** A destroyed session seen again this soon after its destroy may be a save's write being destroyed again (the contract's "one repeat per node"). */
const RESURRECT_GRACE_MS = 300;

// ---------------------------------------------------------------------------------------------
// Stores that count underneath the library (which wraps store.destroy on the instance)

export class StoreTrace {
  readonly calls: Record<StoreOp, number> = { get: 0, set: 0, destroy: 0, touch: 0 };
  readonly destroysBySid = new Map<string, number>();
  /** Writes (set, destroy) under way. */
  writesInFlight = 0;
  /** When a write last started or finished (performance.now()). */
  lastWriteAt = 0;
  /** The latest calls, for messages. */
  readonly recent: Array<{ op: StoreOp; sid: string; at: number }> = [];

  /** Count a call; the returned callback notes its end, then calls `cb`. */
  track<A extends unknown[]>(op: StoreOp, sid: string, cb: ((...args: A) => unknown) | undefined): (...args: A) => void {
    this.calls[op] += 1;
    this.recent.push({ op, sid, at: performance.now() });
    if (this.recent.length > 200) this.recent.shift();
    if (op === 'destroy') this.destroysBySid.set(sid, (this.destroysBySid.get(sid) ?? 0) + 1);
    const write = op === 'set' || op === 'destroy';
    if (write) {
      this.writesInFlight += 1;
      this.lastWriteAt = performance.now();
    }
    let done = false;
    return (...args: A) => {
      if (write && !done) {
        this.writesInFlight -= 1;
        this.lastWriteAt = performance.now();
      }
      done = true;
      cb?.(...args);
    };
  }
}

type Cb = (err?: any, value?: any) => void;

/** A FaultyStore (latency per call) that also counts destroys per session id and writes in flight. */
export class TracedFaultyStore extends FaultyStore {
  readonly trace = new StoreTrace();
  override get(sid: string, cb: Cb): void {
    super.get(sid, this.trace.track('get', sid, cb));
  }
  override set(sid: string, sess: SessionData, cb?: Cb): void {
    super.set(sid, sess, this.trace.track('set', sid, cb));
  }
  override destroy(sid: string, cb?: Cb): void {
    super.destroy(sid, this.trace.track('destroy', sid, cb));
  }
  override touch(sid: string, sess: SessionData, cb?: () => void): void {
    super.touch(sid, sess, this.trace.track('touch', sid, cb));
  }
}

/** connect-redis's RedisStore, counting as TracedFaultyStore does. */
export class TracedRedisStore extends RedisStore {
  readonly trace = new StoreTrace();
  override get(sid: string, cb?: Cb): Promise<any> {
    return super.get(sid, this.trace.track('get', sid, cb));
  }
  override set(sid: string, sess: SessionData, cb?: Cb): Promise<any> {
    return super.set(sid, sess, this.trace.track('set', sid, cb));
  }
  override destroy(sid: string, cb?: Cb): Promise<any> {
    return super.destroy(sid, this.trace.track('destroy', sid, cb));
  }
  override touch(sid: string, sess: SessionData, cb?: Cb): Promise<any> {
    return super.touch(sid, sess, this.trace.track('touch', sid, cb));
  }
}

/** A small seeded PRNG (mulberry32) for store latencies. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---------------------------------------------------------------------------------------------
// Nodes

interface WorldNode {
  server: TestServer;
  trace: StoreTrace;
  instances: Array<{ path: string; perMessage: boolean; sio: SessionServer }>;
  close(): Promise<void>;
}

/** What the Redis variants share across runs: the file's redis-server and a client to read it. */
export interface RedisEnv {
  url: string;
  inspector: RedisClient;
}

interface WriteRecord {
  id: string;
  via: 'socket' | 'http';
  /** A per-message socket write (its ack means "saved"). */
  perMessage: boolean;
  sid: string;
  key: string;
  value: string;
  node: number;
  sentAt: number;
  /** When it was known saved: the ack of a per-message write, the 200 of an HTTP write. */
  savedAt?: number;
  /** When the client stopped waiting, whatever the outcome. */
  endAt?: number;
}

interface DestroyAction {
  kind: 'logout' | 'login';
  sid: string;
  startAt: number;
  endAt?: number;
}

interface SocketSlot {
  spec: SocketSpec;
  socket?: ClientSocket;
  sid?: string;
  tag?: string;
  perMessage: boolean;
}

interface Conn {
  spec: ConnSpec;
  node: number;
  slots: SocketSlot[];
}

type StoredRecord = Record<string, unknown> | undefined;

const errText = (err: unknown) => (err instanceof Error ? err.message : String(err));

/**
 * One run: starts the nodes, plays the steps, judges. Use {@link runScenario}.
 */
class World {
  private readonly t0 = performance.now();
  readonly log: string[] = [];
  private readonly writes: WriteRecord[] = [];
  private readonly byValue = new Map<string, WriteRecord>();
  /** Owner tag of every session a login created, by session id. */
  private readonly sidTag = new Map<string, string>();
  private readonly destroyActions: DestroyAction[] = [];
  /** `?renew=1` requests (they rewrite the record). */
  private readonly renewals: Array<{ sid: string; node: number; sentAt: number; endAt?: number }> = [];
  /** Session ids whose destroy (logout, or a login's regenerate) was answered, and when. */
  private readonly destroyedAt = new Map<string, number>();
  /** Property 5 reports: handlers (server side) and acks (client side) that saw another session. */
  private readonly mismatches: string[] = [];
  /** Property 1 and 4 observations at check points. */
  private readonly seenAgain: Array<{ sid: string; at: number }> = [];
  private readonly foreign: string[] = [];
  private readonly browsers = Array.from({ length: BROWSERS }, () => ({ cookie: undefined as string | undefined, generation: 0 }));
  private conns: Conn[] = [];
  private seq = 0;
  private readonly serverErrors: string[] = [];

  private constructor(
    private readonly variant: Variant,
    private readonly nodes: WorldNode[],
    private readonly peek: (sids: string[]) => Promise<StoredRecord[]>,
  ) {
    for (const node of nodes) for (const instance of node.instances) this.instrument(instance.sio, instance.path);
  }

  private now(): number {
    return performance.now() - this.t0;
  }

  private note(line: string): void {
    if (this.log.length < 400) this.log.push(`${this.now().toFixed(0).padStart(5)} ${line}`);
  }

  static async start(variant: Variant, latencySeed: number, redis?: RedisEnv): Promise<World> {
    const libraryOptions = { saveDelay: SAVE_DELAY_MS, revalidateInterval: REVALIDATE_MS, ticketTtl: TICKET_TTL_MS, storeTimeout: STORE_TIMEOUT_MS };
    const [first, ...others] = variant.namespaces;
    // The first namespace is the one startServer attaches; the others get their own sessions() on the same store.
    const serverOptions = (store: () => TracedFaultyStore | TracedRedisStore, instances: WorldNode['instances']): Partial<TestServerOptions> => ({
      ...libraryOptions,
      perMessage: first!.perMessage,
      sessionCookie: { maxAge: COOKIE_MAX_AGE_MS },
      before: (io) => {
        for (const ns of others) {
          instances.push({ ...ns, sio: sessions(io.of(ns.path), { store: store(), secret: SECRET, perMessage: ns.perMessage, ...libraryOptions }) });
        }
      },
    });
    const nodes: WorldNode[] = [];
    try {
      if (variant.backend === 'faulty') {
        const random = prng(latencySeed);
        // Mostly 0-3 ms, now and then a slow call (5-24 ms): windows that interleave a whole request.
        const store = new TracedFaultyStore({ latency: () => (random() < 0.15 ? 5 + Math.floor(random() * 20) : Math.floor(random() * 4)) });
        const instances: WorldNode['instances'] = [];
        const server = await startServer({ store, ...serverOptions(() => store, instances) });
        instances.unshift({ ...first!, sio: server.sio });
        nodes.push({ server, trace: store.trace, instances, close: () => closeNode(server, instances) });
        return new World(variant, nodes, async (sids) => sids.map((sid) => store.peek(sid) as StoredRecord));
      }
      if (!redis) throw new Error('the redis variants need a redis-server');
      for (let n = 0; n < 2; n += 1) {
        let store: TracedRedisStore | undefined;
        const instances: WorldNode['instances'] = [];
        const node = await startRedisNode(redis.url, {
          createStore: (client) => (store = new TracedRedisStore({ client })),
          redisLock: variant.lock === true,
          httpLock: variant.lock === true,
          ...serverOptions(() => store!, instances),
        });
        instances.unshift({ ...first!, sio: node.server.sio });
        nodes.push({
          server: node.server,
          trace: store!.trace,
          instances,
          close: async () => {
            for (const instance of instances.slice(1)) instance.sio.close();
            await node.close();
          },
        });
      }
      return new World(variant, nodes, async (sids) => {
        if (sids.length === 0) return [];
        const raw = await redis.inspector.mGet(sids.map((sid) => `sess:${sid}`));
        return raw.map((value) => (value ? (JSON.parse(value) as Record<string, unknown>) : undefined));
      });
    } catch (err) {
      await Promise.allSettled(nodes.map((node) => node.close()));
      throw err;
    }
  }

  /** The handler every namespace runs: writes `value` under `key`; reports a session that is not the one the client named. */
  private instrument(sio: SessionServer, path: string): void {
    sio.on('serror', (err) => {
      if (this.serverErrors.length < 20) this.serverErrors.push(`${path}: ${errText(err)}`);
    });
    sio.on('sconnection', (socket, session) => {
      const expect = (socket.handshake.auth as { expect?: { tag: string; sid: string } } | undefined)?.expect;
      if (expect && (session.owner !== expect.tag || session.id !== expect.sid)) {
        this.mismatches.push(`sconnection on ${path}: the client connected with session ${expect.tag}, socket.session is ${String(session.owner)}`);
      }
      /** The handler's session, after reporting it if it is not the one the client wrote for. */
      const own = (event: string, write: { value: string; tag: string; sid: string }) => {
        const session = socket.session as unknown as Record<string, unknown>;
        if (session.owner !== write.tag || socket.session.id !== write.sid) {
          this.mismatches.push(`handler on ${path}: ${event} ${write.value} from a socket of session ${write.tag} ran with socket.session of ${String(session.owner)}`);
        }
        return session;
      };
      socket.on('write', (write: { key: string; value: string; tag: string; sid: string }, ack?: (reply: unknown) => void) => {
        const session = own('write', write);
        session[write.key] = write.value;
        ack?.({ owner: session.owner });
      });
      socket.on('append', (write: { value: string; tag: string; sid: string }, ack?: (reply: unknown) => void) => {
        const session = own('append', write);
        session[LOG_KEY] = [...(Array.isArray(session[LOG_KEY]) ? (session[LOG_KEY] as unknown[]) : []), write.value];
        ack?.({ owner: session.owner });
      });
      // The seed's smessage: reached only by send(), always with the server's session.
      socket.on('smessage', (message: { value?: string; tag?: string; sid?: string } | undefined, session: Record<string, unknown> | undefined) => {
        if (session?.owner === FORGED.owner || message?.value === 'forged') {
          this.mismatches.push(`smessage on ${path}: a client's forged ${message?.value === 'forged' ? 'smessage event' : 'session'} reached the handler`);
        } else if (message?.tag !== undefined && (session?.owner !== message.tag || socket.session.id !== message.sid)) {
          this.mismatches.push(`smessage on ${path}: send() from a socket of session ${message.tag} ran with session ${String(session?.owner)}`);
        }
      });
    });
  }

  // -------------------------------------------------------------------------------------------
  // Browsers and connections

  private tagOf(cookie: string | undefined): { sid?: string; tag?: string } {
    if (!cookie) return {};
    const sid = sidOf(cookie);
    return { sid, tag: this.sidTag.get(sid) };
  }

  private nextTag(browser: number): string {
    this.browsers[browser]!.generation += 1;
    return `b${browser}.${this.browsers[browser]!.generation}`;
  }

  private node(n: number): WorldNode {
    return this.nodes[n % this.nodes.length]!;
  }

  async setup(conns: ConnSpec[]): Promise<void> {
    for (let b = 0; b < BROWSERS; b += 1) {
      const tag = this.nextTag(b);
      const cookie = await this.nodes[0]!.server.login({ owner: tag });
      this.browsers[b]!.cookie = cookie;
      this.sidTag.set(sidOf(cookie), tag);
    }
    this.conns = conns.map((spec) => ({
      spec,
      node: spec.node % this.nodes.length,
      slots: spec.sockets.map((s) => ({ spec: s, perMessage: this.variant.namespaces[s.ns % this.variant.namespaces.length]!.perMessage })),
    }));
    for (let c = 0; c < this.conns.length; c += 1) await this.open(c, this.conns[c]!.node);
  }

  /** Open connection `c` on node `n`: every socket with the browser's cookie, or a ticket fetched now from that node. */
  private async open(c: number, n: number): Promise<void> {
    const conn = this.conns[c]!;
    conn.node = n % this.nodes.length;
    const { server } = this.node(conn.node);
    const cookie = this.browsers[conn.spec.browser % BROWSERS]!.cookie;
    const creds = await Promise.all(
      conn.slots.map(async (slot) => {
        if (slot.spec.cred === 'cookie') return { ...this.tagOf(cookie), auth: {} };
        const source = this.browsers[slot.spec.cred % BROWSERS]!.cookie;
        const { sid, tag } = this.tagOf(source);
        const ticket = await server.ticket(source!).catch((err: unknown) => err as Error);
        if (ticket instanceof Error) return { refusedBy: `no ticket: ${ticket.message}` };
        return { sid, tag, auth: { sessionTicket: ticket.token } };
      }),
    );
    let first: ClientSocket | undefined;
    const waits: Array<Promise<void>> = [];
    conn.slots.forEach((slot, s) => {
      const cred = creds[s]!;
      const path = this.variant.namespaces[slot.spec.ns % this.variant.namespaces.length]!.path;
      const name = `c${c}.s${s}${path}@n${conn.node}`;
      slot.socket = undefined;
      if ('refusedBy' in cred) return this.note(`${name}: ${cred.refusedBy}`);
      slot.sid = cred.sid;
      slot.tag = cred.tag;
      const auth = { ...cred.auth, expect: { tag: cred.tag, sid: cred.sid } };
      // The sockets of one connection share its engine.io connection (and its handshake request).
      const socket = first ? first.io.socket(path, { auth }) : connectClient(server.url + path, cookie, { auth });
      first ??= socket;
      if (!socket.active) socket.connect();
      slot.socket = socket;
      socket.on('sio-sessions:invalid', (data: { reason?: string }) => this.note(`${name} (${cred.tag}): invalid ${data?.reason}`));
      waits.push(
        within(connected(socket).then(() => 'connected'), ANSWER_MS, 'no answer')
          .catch((err: Error & { data?: { reason?: string } }) => `refused ${err.data?.reason ?? err.message}`)
          .then((outcome) => this.note(`${name} (${cred.tag}): ${outcome}`)),
      );
    });
    await Promise.all(waits);
  }

  private close(c: number): void {
    for (const slot of this.conns[c]!.slots) slot.socket?.disconnect();
  }

  closeAll(): void {
    this.conns.forEach((_, c) => this.close(c));
  }

  // -------------------------------------------------------------------------------------------
  // Steps

  async step(step: Step): Promise<void> {
    if (step.kind === 'race') {
      this.note(`race of ${step.steps.length}`);
      await Promise.all(step.steps.map(async (member) => (member.after > 0 ? delay(member.after).then(() => this.basic(member)) : this.basic(member))));
    } else {
      await this.basic(step);
    }
  }

  private async basic(step: BasicStep): Promise<void> {
    const label = formatStep(step);
    try {
      await this.run(step, label);
    } catch (err) {
      this.note(`${label}: threw ${errText(err)}`);
    }
  }

  private record(write: Omit<WriteRecord, 'id' | 'value' | 'sentAt'>, tag: string | undefined): WriteRecord {
    const id = `${write.via === 'http' ? 'h' : 'w'}${++this.seq}`;
    const full: WriteRecord = { ...write, id, value: `${tag ?? 'untagged'}:${id}`, sentAt: this.now() };
    this.writes.push(full);
    this.byValue.set(full.value, full);
    return full;
  }

  private async run(step: BasicStep, label: string): Promise<void> {
    switch (step.kind) {
      case 'pause':
        await delay(step.ms);
        return;
      case 'emit':
      case 'append': {
        const c = step.conn % this.conns.length;
        const conn = this.conns[c]!;
        const slot = conn.slots[step.sock % conn.slots.length]!;
        const { socket, sid, tag } = slot;
        if (!socket?.connected || !sid) return this.note(`${label}: not connected, skipped`);
        const key = step.kind === 'emit' ? KEYS[step.key % KEYS.length]! : LOG_KEY;
        const write = this.record({ via: 'socket', perMessage: slot.perMessage, sid, key, node: conn.node }, tag);
        this.note(`${label}: ${write.value} -> ${write.key} (${slot.perMessage ? 'per-message' : 'per-connection'})`);
        try {
          const payload = { key: write.key, value: write.value, tag, sid };
          const reply = (await socket.timeout(ANSWER_MS).emitWithAck(step.kind === 'emit' ? 'write' : 'append', payload)) as { owner?: string };
          write.endAt = this.now();
          // A notice in place of the ack (invariant 7): the write was not made.
          const notice = noticeOf([reply]);
          if (notice) return this.note(`${write.value}: notice ${notice.reason}`);
          if (slot.perMessage) write.savedAt = write.endAt;
          if (reply?.owner !== tag) this.mismatches.push(`ack of ${write.value}: sent by a socket of session ${tag}, the handler's socket.session was ${String(reply?.owner)}`);
          this.note(`${write.value}: acked`);
        } catch (err) {
          write.endAt = this.now();
          this.note(`${write.value}: no ack (${errText(err)})`);
        }
        return;
      }
      case 'lie': {
        const conn = this.conns[step.conn % this.conns.length]!;
        const { socket, sid, tag } = conn.slots[step.sock % conn.slots.length]!;
        if (!socket?.connected || !sid) return this.note(`${label}: not connected, skipped`);
        socket.emit('smessage', { value: 'forged', tag: FORGED.owner, sid }, FORGED);
        const sent = await new Promise<boolean>((resolve) => {
          const timer = setTimeout(() => resolve(false), ANSWER_MS);
          socket.send({ value: 'send', tag, sid }, () => (clearTimeout(timer), resolve(true)));
        });
        this.note(`${label}: forged smessage emitted; send() ${sent ? 'answered' : 'not answered'}`);
        return;
      }
      case 'httpWrite': {
        const cookie = this.browsers[step.browser % BROWSERS]!.cookie!;
        const { sid, tag } = this.tagOf(cookie);
        const n = step.node % this.nodes.length;
        const write = this.record({ via: 'http', perMessage: false, sid: sid!, key: KEYS[step.key % KEYS.length]!, node: n }, tag);
        this.note(`${label}: ${write.value} -> ${write.key}`);
        try {
          await this.node(n).server.httpWrite(cookie, { [write.key]: write.value });
          write.savedAt = this.now();
        } finally {
          write.endAt = this.now();
        }
        this.note(`${write.value}: 200`);
        return;
      }
      case 'httpRead': {
        const cookie = this.browsers[step.browser % BROWSERS]!.cookie!;
        const data = await this.node(step.node).server.httpSession(cookie);
        this.checkRecord(`HTTP read of ${this.tagOf(cookie).tag}`, data);
        return;
      }
      case 'login': {
        const b = step.browser % BROWSERS;
        const cookie = this.browsers[b]!.cookie!;
        const { sid } = this.tagOf(cookie);
        const tag = this.nextTag(b);
        const action: DestroyAction = { kind: 'login', sid: sid!, startAt: this.now() };
        this.destroyActions.push(action);
        const res = await post(`${this.node(step.node).server.url}/login`, cookie, { owner: tag });
        // The whole body: express-session saves a regenerated session once more while the body's last byte waits.
        await res.arrayBuffer();
        action.endAt = this.now();
        const fresh = res.headers.get('set-cookie')?.split(';')[0];
        if (res.status !== 200 || !fresh) return this.note(`${label}: HTTP ${res.status}`);
        this.destroyed(sid!, action.endAt);
        this.sidTag.set(sidOf(fresh), tag);
        this.browsers[b]!.cookie = fresh;
        this.note(`${label}: ${this.sidTag.get(sid!)} -> ${tag}`);
        return;
      }
      case 'logout': {
        const cookie = this.browsers[step.browser % BROWSERS]!.cookie!;
        const { sid, tag } = this.tagOf(cookie);
        const action: DestroyAction = { kind: 'logout', sid: sid!, startAt: this.now() };
        this.destroyActions.push(action);
        const destroysBefore = this.destroysOf(sid!);
        await this.node(step.node).server.logout(cookie);
        action.endAt = this.now();
        this.destroyed(sid!, action.endAt);
        this.note(`${label}: ${tag} logged out (${this.destroysOf(sid!) - destroysBefore} store destroys during the request)`);
        return;
      }
      case 'renew': {
        const b = step.browser % BROWSERS;
        const cookie = this.browsers[b]!.cookie!;
        // The library's own write of the whole record (the cookie's expiry): a writer for property 2's races.
        const renewal = { sid: sidOf(cookie), node: step.node % this.nodes.length, sentAt: this.now(), endAt: undefined as number | undefined };
        this.renewals.push(renewal);
        const res = await fetch(`${this.node(step.node).server.url}/socket.io-sessions/token?renew=1`, { headers: { cookie } });
        await res.arrayBuffer();
        renewal.endAt = this.now();
        const renewed = res.headers.get('set-cookie')?.split(';')[0];
        // The browser stores the re-issued cookie (same session id, fresh expiry).
        if (renewed && sidOf(renewed) === sidOf(cookie) && this.browsers[b]!.cookie === cookie) this.browsers[b]!.cookie = renewed;
        this.note(`${label}: ${this.tagOf(cookie).tag} HTTP ${res.status}${renewed ? ' renewed' : ''}`);
        return;
      }
      case 'refresh': {
        const conn = this.conns[step.conn % this.conns.length]!;
        const slot = conn.slots[step.sock % conn.slots.length]!;
        if (slot.spec.cred === 'cookie' || !slot.socket?.connected) return this.note(`${label}: not a connected ticket socket, skipped`);
        const source = this.browsers[slot.spec.cred % BROWSERS]!.cookie!;
        const ticket = await this.node(conn.node).server.ticket(source);
        const result = await slot.socket.timeout(ANSWER_MS).emitWithAck('sio-sessions:refresh', ticket.token);
        this.note(`${label}: ${JSON.stringify(result)}`);
        return;
      }
      case 'reconnect': {
        const c = step.conn % this.conns.length;
        this.close(c);
        await this.open(c, step.node);
        return;
      }
    }
  }

  // -------------------------------------------------------------------------------------------
  // Observations

  /** The first answered destroy of a session counts: seeing it again later is what property 1 forbids. */
  private destroyed(sid: string, at: number): void {
    if (!this.destroyedAt.has(sid)) this.destroyedAt.set(sid, at);
  }

  private destroysOf(sid: string): number {
    return this.nodes.reduce((sum, node) => sum + (node.trace.destroysBySid.get(sid) ?? 0), 0);
  }

  /** Property 4: every tracked key of an owned record carries the record's owner tag. */
  private checkRecord(where: string, record: Record<string, unknown>): void {
    const owner = record.owner;
    if (typeof owner !== 'string') return; // a session no login made (an HTTP write with a dead cookie creates one)
    const mine = (value: unknown) => typeof value === 'string' && value.startsWith(`${owner}:`);
    for (const key of KEYS) {
      const value = record[key];
      if (value !== undefined && !mine(value)) this.foreign.push(`${where}: session ${owner} holds ${key}=${JSON.stringify(value)}`);
    }
    const log = record[LOG_KEY];
    if (log !== undefined && !(Array.isArray(log) && log.every(mine))) this.foreign.push(`${where}: session ${owner} holds ${LOG_KEY}=${JSON.stringify(log)}`);
  }

  /** Read every session the run knows from the store: destroyed ones must be gone (1), owned ones hold only their own data (4). */
  async checkpoint(label: string): Promise<void> {
    const sids = [...this.sidTag.keys()];
    const records = await this.peek(sids);
    const at = this.now();
    sids.forEach((sid, i) => {
      const record = records[i];
      if (!record) return;
      this.checkRecord(`store ${label}`, record);
      if (this.destroyedAt.has(sid)) this.seenAgain.push({ sid, at });
    });
  }

  /** Writes of the app over HTTP that overlap a destroy of their session: express-session's own save may bring it back (no httpLock). */
  private httpWriteRaced(sid: string): WriteRecord | undefined {
    if (this.variant.lock) return undefined;
    const actions = this.destroyActions.filter((a) => a.sid === sid);
    return this.writes.find(
      (w) => w.via === 'http' && w.sid === sid && actions.some((a) => w.sentAt < (a.endAt ?? Infinity) && a.startAt < endOf(w)),
    );
  }

  /** The judges that need no settling: 1 (seen again past the grace), 3, 4, 5. */
  earlyViolations(): Violation[] {
    const found: Violation[] = [];
    for (const { sid, at } of this.seenAgain) {
      const since = at - this.destroyedAt.get(sid)!;
      if (since > RESURRECT_GRACE_MS && !this.httpWriteRaced(sid)) {
        found.push({ property: 1, message: `session ${this.sidTag.get(sid)} was destroyed at ${this.destroyedAt.get(sid)!.toFixed(0)} ms and is in the store again ${since.toFixed(0)} ms later` });
      }
    }
    const nodes = this.nodes.length;
    const sids = new Set(this.nodes.flatMap((node) => [...node.trace.destroysBySid.keys()]));
    for (const sid of sids) {
      const actions = Math.max(1, this.destroyActions.filter((a) => a.sid === sid).length);
      const count = this.destroysOf(sid);
      if (count > (1 + nodes) * actions) {
        found.push({ property: 3, message: `session ${this.sidTag.get(sid) ?? '(no login)'}: ${count} store destroys for ${actions} destroying request(s) on ${nodes} node(s) (at most ${(1 + nodes) * actions})` });
      }
    }
    for (const message of this.foreign) found.push({ property: 4, message });
    for (const message of this.mismatches) found.push({ property: 5, message });
    return dedupe(found);
  }

  /** Wait until no store write started or ended for QUIET_MS; a message if that takes longer than SETTLE_MAX_MS. */
  async settle(maxMs = SETTLE_MAX_MS): Promise<string | undefined> {
    const start = performance.now();
    for (;;) {
      const inFlight = this.nodes.reduce((sum, node) => sum + node.trace.writesInFlight, 0);
      // Quiet since the last write and since settling began: a save due saveDelay after the last event has had its time.
      const last = Math.max(start, ...this.nodes.map((node) => node.trace.lastWriteAt));
      if (inFlight === 0 && performance.now() - last >= QUIET_MS) return undefined;
      if (performance.now() - start > maxMs) {
        const calls = this.totalCalls();
        return `the store was still being written ${maxMs} ms after the last step (${inFlight} writes in flight; calls so far ${JSON.stringify(calls)})`;
      }
      await delay(10);
    }
  }

  private totalCalls(): Record<StoreOp, number> {
    const total: Record<StoreOp, number> = { get: 0, set: 0, destroy: 0, touch: 0 };
    for (const node of this.nodes) for (const op of Object.keys(total) as StoreOp[]) total[op] += node.trace.calls[op];
    return total;
  }

  /** Property 6: once settled, only revalidation (a get and a touch per open socket per interval) reaches the store. */
  async quietWindow(): Promise<Violation[]> {
    const unsettled = await this.settle();
    if (unsettled) return [{ property: 6, message: unsettled }];
    const sockets = this.nodes.reduce((sum, node) => sum + node.instances.reduce((s, i) => s + node.server.io.of(i.path).sockets.size, 0), 0);
    const before = this.totalCalls();
    const from = performance.now();
    await delay(WINDOW_MS);
    const after = this.totalCalls();
    const calls = this.nodes
      .flatMap((node, n) => node.trace.recent.filter((c) => c.at >= from).map((c) => `${c.op}(${this.sidTag.get(c.sid) ?? '?'})@n${n}+${(c.at - from).toFixed(0)}`))
      .slice(0, 12);
    const d = Object.fromEntries((Object.keys(after) as StoreOp[]).map((op) => [op, after[op] - before[op]])) as Record<StoreOp, number>;
    const budget = 2 * sockets * (Math.ceil(WINDOW_MS / REVALIDATE_MS) + 1) + 2;
    if (d.set > 0 || d.destroy > 0 || d.get + d.touch > budget) {
      return [{ property: 6, message: `in ${WINDOW_MS} ms after settling, with ${sockets} open sockets: ${JSON.stringify(d)} store calls (revalidation allows no set or destroy and at most ${budget} get/touch): ${calls.join(' ')}` }];
    }
    return [];
  }

  /** The judges of the store's final state: 1 (destroyed sessions absent) and 2 (acked per-message writes present). */
  async finalViolations(stage: string): Promise<Violation[]> {
    const sids = [...this.sidTag.keys()];
    const records = await this.peek(sids);
    const found: Violation[] = [];
    sids.forEach((sid, i) => {
      const record = records[i];
      const tag = this.sidTag.get(sid);
      if (record) this.checkRecord(`store ${stage}`, record);
      if (this.destroyedAt.has(sid)) {
        const raced = this.httpWriteRaced(sid);
        if (record && !raced) found.push({ property: 1, message: `${stage}: session ${tag}, destroyed at ${this.destroyedAt.get(sid)!.toFixed(0)} ms, is in the store: ${JSON.stringify(strip(record))}` });
        return;
      }
      for (const key of KEYS) {
        const required = this.writes.filter((w) => w.via === 'socket' && w.perMessage && w.savedAt !== undefined && w.sid === sid && w.key === key && !this.raced(w));
        if (required.length === 0) continue;
        const value = record?.[key];
        const holder = typeof value === 'string' ? this.byValue.get(value) : undefined;
        if (value === undefined) {
          found.push({ property: 2, message: `${stage}: session ${tag}${record ? '' : ' (no record at all)'} has no ${key}; acked there: ${required.map((w) => w.value).join(', ')}` });
        } else if (!holder || holder.sid !== sid || holder.key !== key) {
          // Another session's value (property 4 reports it), or garbage: either way the acked write is gone.
          found.push({ property: 2, message: `${stage}: session ${tag} holds ${key}=${JSON.stringify(value)}, which no write to it made; acked there: ${required.map((w) => w.value).join(', ')}` });
        } else {
          const lost = required.filter((r) => holder.savedAt !== undefined && holder.savedAt < r.sentAt);
          if (lost.length > 0) {
            found.push({ property: 2, message: `${stage}: session ${tag} holds ${key}=${value} (saved at ${holder.savedAt!.toFixed(0)} ms), but ${lost.map((r) => `${r.value} (sent ${r.sentAt.toFixed(0)}, acked ${r.savedAt!.toFixed(0)} ms)`).join(', ')} came later and was acked` });
          }
        }
      }
      // Appends: every acked one is in the list (nothing supersedes an append).
      const log = Array.isArray(record?.[LOG_KEY]) ? (record![LOG_KEY] as unknown[]) : [];
      const lost = this.writes.filter((w) => w.key === LOG_KEY && w.perMessage && w.savedAt !== undefined && w.sid === sid && !log.includes(w.value) && !this.raced(w));
      if (lost.length > 0) {
        found.push({ property: 2, message: `${stage}: session ${tag}${record ? '' : ' (no record at all)'} has ${LOG_KEY}=${JSON.stringify(log)}, without the acked appends ${lost.map((w) => w.value).join(', ')}` });
      }
    });
    return found;
  }

  /**
   * A write that may be lost without a library bug: another write to its session that is not
   * serialised with it overlapped it. With the lock (and httpLock) everything is serialised; without
   * it, the library's writes on one node are (units, whatever the namespace, and cookie renewals:
   * "a session is serialised process-wide"); the app's HTTP writes and other nodes are not.
   */
  private raced(r: WriteRecord): boolean {
    if (this.variant.lock) return false;
    const overlaps = (x: { sentAt: number }, end: number) => x.sentAt < (r.savedAt ?? Infinity) && r.sentAt < end;
    return (
      this.writes.some((x) => x !== r && x.sid === r.sid && !(x.via === 'socket' && x.node === r.node) && overlaps(x, endOf(x))) ||
      this.renewals.some((x) => x.sid === r.sid && x.node !== r.node && overlaps(x, x.endAt ?? Infinity))
    );
  }

  /** Settle, then judge what `judged` asks for (the quiet window and the second stage cost time: skipped when not asked). */
  async judge(judged: (property: PropertyId) => boolean): Promise<Violation[]> {
    const found: Violation[] = [];
    // Not judging 6: a store that does not settle (a destroy loop) is not waited for long.
    const settleMs = judged(6) ? SETTLE_MAX_MS : UNJUDGED_SETTLE_MS;
    if (judged(6)) found.push(...(await this.quietWindow()));
    else await this.settle(settleMs);
    found.push(...(await this.finalViolations('with sockets open')));
    if (judged(1) || judged(2) || judged(4) || judged(6)) {
      this.closeAll();
      const unsettled = await this.settle(settleMs);
      if (unsettled) found.push({ property: 6, message: `after the sockets closed: ${unsettled}` });
      found.push(...(await this.finalViolations('after the sockets closed')));
    }
    found.push(...this.earlyViolations());
    if (this.serverErrors.length > 0) this.note(`serror: ${this.serverErrors.join(' | ')}`);
    this.note(`store calls: ${JSON.stringify(this.totalCalls())}`);
    return dedupe(found).filter((v) => judged(v.property));
  }

  async dispose(): Promise<void> {
    this.closeAll();
    await Promise.allSettled(this.nodes.map((node) => node.close()));
  }
}

/** `promise`, or `fallback` after `ms` (the timer does not outlive the answer). */
function within<T>(promise: Promise<T>, ms: number, fallback: T): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<T>((resolve) => (timer = setTimeout(() => resolve(fallback), ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Until when a write may still land: an unanswered socket write's unit may run after its client gave up. */
function endOf(write: WriteRecord): number {
  return write.savedAt ?? (write.via === 'http' ? write.endAt : undefined) ?? Infinity;
}

function closeNode(server: TestServer, instances: WorldNode['instances']): Promise<void> {
  for (const instance of instances.slice(1)) instance.sio.close();
  return server.close();
}

function strip(record: Record<string, unknown>): Record<string, unknown> {
  const { cookie: _cookie, ...rest } = record;
  return rest;
}

function dedupe(violations: Violation[]): Violation[] {
  const seen = new Set<string>();
  return violations.filter((v) => {
    const key = `${v.property}:${v.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function post(url: string, cookie: string | undefined, body: unknown): Promise<Response> {
  return fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...(cookie ? { cookie } : {}) }, body: JSON.stringify(body) });
}

export interface RunResult {
  violations: Violation[];
  log: string[];
}

export interface RunOptions {
  /** The properties to judge. */
  judged(property: PropertyId): boolean;
  /** End the run at the first check point where this property is already violated (shrinking then costs less). */
  stopEarly(property: PropertyId): boolean;
  redis?: RedisEnv;
}

/** Play `scenario` on fresh nodes and judge it. */
export async function runScenario(variant: Variant, scenario: Scenario, { judged, stopEarly, redis }: RunOptions): Promise<RunResult> {
  const t0 = performance.now();
  const world = await World.start(variant, scenario.latencySeed, redis);
  const phases: string[] = [`start ${(performance.now() - t0).toFixed(0)}`];
  try {
    await world.setup(scenario.conns);
    phases.push(`setup ${(performance.now() - t0).toFixed(0)}`);
    for (const [i, step] of scenario.steps.entries()) {
      await world.step(step);
      await world.checkpoint(`after step ${i}`);
      const early = world.earlyViolations().filter((v) => judged(v.property) && stopEarly(v.property));
      if (early.length > 0) {
        world.log.push(`(stopped after step ${i})`);
        return { violations: early, log: world.log };
      }
    }
    phases.push(`steps ${(performance.now() - t0).toFixed(0)}`);
    const violations = await world.judge(judged);
    phases.push(`judged ${(performance.now() - t0).toFixed(0)}`);
    return { violations, log: world.log };
  } finally {
    await world.dispose();
    world.log.push(`(ms since start: ${phases.join(', ')}, disposed ${(performance.now() - t0).toFixed(0)})`);
  }
}
