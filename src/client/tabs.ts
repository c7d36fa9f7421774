/**
 * socket.io-sessions/tabs: the tabs of one browser share one connection. The tabs of a browser
 * share one session cookie, so one connection can serve them all: one tab holds it (elected with
 * the Web Locks API), the others reach it over a `BroadcastChannel`, through an object with the
 * socket's everyday surface. Server events reach every tab; an ack, the tab that emitted.
 *
 * When the holder closes, crashes or navigates away, the browser hands the lock to another tab,
 * which connects; emits made meanwhile wait in their tab's outbox and go to the new holder. Every
 * emit is handed to a connection once: a tab keeps an emit until a holder says it sent it ('sent'
 * receipt), and resends what it keeps to the next holder when the old one let go of the lock (it can
 * send nothing more), addressed to that holder only (the holder ignores messages addressed to another
 * tab, so an emit never runs twice); given to a holder that may still wake up (one that went silent),
 * it is not posted again and ends as lost. An emit the old
 * holder had sent, whose ack had not come back, fails like an ack over a lost connection does in
 * socket.io-client ("socket has been disconnected", for `emitWithAck` and `timeout()`).
 *
 * A page that holds the lock but never answers on the channel (stuck, or not ours) cannot starve
 * the others: a tab that hears no holder for {@link SILENT_TICKS} checks (about 2 s) connects by itself.
 * Emits made under a session that ended are never sent under the next one (invariant 10).
 *
 * Where Web Locks or BroadcastChannel are missing, each tab connects by itself.
 *
 * @example
 * ```ts
 * import { connectWithSession } from 'socket.io-sessions';
 * import { sharedTabs } from 'socket.io-sessions/tabs';
 * const socket = connectWithSession({ tabs: sharedTabs() });
 * socket.emit('add-to-cart', 'book', (count) => console.log(count)); // the ack comes back to this tab
 * ```
 */
// From the core entry in the builds (rollup.config.mjs): one copy, the same classes in every tab.
import { controllerOf, OriginNotAllowedError, SessionEmitError, SessionEventEmitter, SessionInvalidError, SessionOptionsError, takeReload } from './index.js';
import type { ConnectWithSessionOptions, InvalidContext, SessionClientEvents, SessionSocket, SessionState, SharedSocket, TabsProvider } from './connect.js';
import { SESSION_ENDED, type EmitNotice } from '../protocol.js';

export interface SharedTabsOptions {
  /**
   * Tabs that pass the same name share a connection (it names the lock and the channel).
   * @default the server's origin, the namespace and `path`, resolved as socket.io-client resolves them
   */
  name?: string;
}

type Listener = (...args: any[]) => unknown;
/** What `tickets()` keeps of its options, as far as a tab looks at them (a function `source` is the app's own credential). */
type TicketOptionsLike = { source?: unknown };
/** An ack callback as socket.io-client marks those that take an error first (`emitWithAck`, `timeout()`). */
type Ack = Listener & { withError?: boolean };

/**
 * The messages between tabs (docs/tabs.md has the table). `to`: only that tab reads it (the
 * others leave it alone); `from`: the tab that sent it. `session` counts the sessions that ended
 * as the sender knew it when it posted the message, so a holder refuses an emit made under one
 * that ended.
 */
export type TabMessage =
  /** A tab → all: "who holds the connection?" (on joining, and as a liveness probe). */
  | { type: 'hello' }
  /** The holder → all: its state (the answer to `hello`, and the announcement of a new holder); `ended`: the session ended, no connection since. */
  | { type: 'holder'; from: number; locked: boolean; session: number; connected: boolean; state: SessionState; id?: string; reason?: string; ended?: boolean }
  /** The holder → all: a server event. */
  | { type: 'event'; event: string; args: unknown[] }
  /** The holder → all: an SDK event (`invalid`, `unavailable`, `fatal`). */
  | { type: 'sdk'; event: keyof SessionClientEvents; payload: any }
  /** A tab → the holder: its emit number `n`; `ack`: it wants an ack; `until`: when it times out in its tab (ms since the epoch: after that it is not sent). */
  | { type: 'emit'; to: number; from: number; n: number; session: number; event: string; args: unknown[]; ack: boolean; until?: number }
  /** A tab → the holder: connect again (`connect()`, or `ctx.reconnect()` of an invalid session). */
  | { type: 'reconnect'; to: number }
  /** The holder → a tab: emit `n` was handed to the connection. */
  | { type: 'sent'; to: number; n: number }
  /** The holder → a tab: emit `n` ended: its ack's arguments, an error message, or a notice (invariant 7). */
  | { type: 'ack'; to: number; n: number; args?: unknown[]; error?: string; notice?: EmitNotice };

type Of<T extends TabMessage['type']> = Extract<TabMessage, { type: T }>;
type EmitMessage = Of<'emit'>;
/** An emit in its tab's outbox: addressed and stamped with the session when it is posted to a holder. */
type Outgoing = Omit<EmitMessage, 'to' | 'session'>;
type Reply = Pick<Of<'ack'>, 'args' | 'error' | 'notice'>;

/** The shape of each field, whatever the message's type (what `kind()` says of it). */
const SHAPE: Record<string, unknown> = { from: 0, session: 0, connected: false, state: '', event: '', args: [], payload: {}, notice: {} };
/**
 * The fields each type must have (besides `to`, which the types sent to one tab must have: a tab
 * reads those only when addressed to it).
 */
const REQUIRED: Record<TabMessage['type'], string> = {
  hello: '',
  holder: 'from session connected state',
  event: 'args',
  sdk: 'event payload',
  emit: 'from n event args',
  reconnect: '',
  sent: '',
  ack: '',
};

const kind = (value: unknown) => (Array.isArray(value) ? 'array' : value === null ? 'null' : typeof value);

/**
 * Whether `data`, as read from the channel, is a {@link TabMessage}: a known type, with its fields,
 * each of its shape. Anything else (another script's, a wrong shape) is left alone.
 */
function isTabMessage(data: any): data is TabMessage {
  return (
    kind(data) === 'object' &&
    Object.hasOwn(REQUIRED, data.type) &&
    REQUIRED[data.type as TabMessage['type']].split(' ').every((name) => !name || name in data) &&
    Object.keys(SHAPE).every((name) => data[name] === undefined || kind(data[name]) === kind(SHAPE[name]))
  );
}

/** socket.io-client's reserved event names: `emit` refuses them. */
const RESERVED = /^(connect(_error)?|disconnect(ing)?|newListener|removeListener)$/;
/** The SDK events a holder relays. */
const RELAYED = ['invalid', 'unavailable', 'fatal'] as const;
/** The key of `onAny` listeners: no event name can be it. */
const ANY = Symbol();
/** How often a tab without the connection checks that a holder answers (ms). */
const CHECK_EVERY = 700;
/**
 * A tab that heard no holder for this many checks in a row (it asked at the one before) connects
 * by itself (issue 15, case 10). Counted in checks, not ms: a throttled background tab checks late, but
 * its question is answered at once, so a live holder is never taken for dead.
 */
const SILENT_TICKS = 3;

/**
 * The lock and channel name for a connection: the server's origin, the namespace and the engine.io
 * path as socket.io-client resolves `url` and `path` (so `'/'`, `undefined` and the page's own
 * origin name one connection), with the page's protocol and host where `url` leaves them out; then
 * `auth` and `query` (as JSON) when given: tabs that connect with other ones do not share.
 */
function connectionName(url: string | undefined, { path = '/socket.io', auth, query }: ConnectWithSessionOptions): string {
  const { origin, pathname } = new URL(url || '/', location.href);
  return `socket.io-sessions ${origin}${pathname} ${path}${auth || query ? ' ' + JSON.stringify([auth, query]) : ''}`;
}

/** What socket.io-client sends of a value where a structured clone differs: an object's `toJSON()` (a clone loses its class). */
const json = (value: any): any =>
  typeof value?.toJSON === 'function'
    ? value.toJSON()
    : Array.isArray(value)
      ? value.map(json)
      : value?.constructor === Object
        ? Object.fromEntries(Object.entries(value).map(([key, each]) => [key, json(each)]))
        : value;

/** How an emit ends whose holder went away, or that a tab leaving still waited for: as in socket.io-client when its connection drops. */
const LOST: Reply = { error: 'socket has been disconnected' };

/**
 * Share one connection among this browser's tabs. Throws `SessionOptionsError` on bad options.
 *
 * @example
 * ```ts
 * const chat = connectWithSession('/chat', { tabs: sharedTabs() });
 * chat.on('message', (text) => show(text)); // in every tab
 * ```
 */
export function sharedTabs(options: SharedTabsOptions = {}): TabsProvider {
  if (typeof options !== 'object' || typeof (options?.name ?? '') !== 'string') throw new SessionOptionsError('socket.io-sessions: invalid name');
  return { options, open };
}

/** `TabsProvider.open`, called on the provider: `this.options` are the options of `sharedTabs()`. */
function open(
  this: { options: SharedTabsOptions },
  url: string | undefined,
  options: ConnectWithSessionOptions,
  connect: (url: string | undefined, options: ConnectWithSessionOptions) => SessionSocket<any, any>,
): SharedSocket<any, any> {
  const { on, autoConnect = true, onInvalid, maxReloads, reloadWindow, ackTimeout, auth, credential } = options;
  const { name } = this.options;
  const locks = globalThis.navigator?.locks;
  // Which user a credential of the app's own connects as (an `auth` function, a custom provider, `tickets({ source })` with a
  // function) is not known here: such tabs share only under a name the app gives (invariant 10).
  const { source } = (credential?.options ?? {}) as TicketOptionsLike;
  const own = typeof auth === 'function' || (credential && (!credential.options || typeof source === 'function'));
  if (!locks || !globalThis.BroadcastChannel || !globalThis.structuredClone || (own && name === undefined)) return Object.assign(connect(url, { ...options, tabs: undefined }), { leader: true });

  const key = name ?? connectionName(url, options);
  const me = Math.random();
  const events = new SessionEventEmitter();
  const sdk = new SessionEventEmitter();
  let channel: BroadcastChannel | undefined;
  /** Aborted when this tab leaves: it stops waiting for the lock, or lets go of it. */
  let leaving: AbortController;
  /** Checks, while this tab does not hold the connection, that a holder answers. */
  let watchdog: ReturnType<typeof setInterval> | undefined;
  /** This tab's own connection, while it holds the connection for all tabs. */
  let real: SessionSocket<any, any> | undefined;
  /** Whether this tab holds the lock (a tab that connected because no holder answered does not). */
  let locked = false;
  /** The tab that holds the connection, as far as this tab knows... */
  let leader: number | undefined;
  /** ...and whether it holds the lock (a tab that took over from a silent holder does not: that one may wake up). */
  let held = false;
  /** Checks since this tab last heard a holder. */
  let silent = 0;
  /** The sessions that ended, as the holder counts them (a follower takes the holder's count). Every tab hears of each (the holder relays `invalid`). */
  let session = 0;
  let connected = false;
  let id: string | undefined;
  let state: SessionState = 'disconnected';
  let seq = 0;
  /** The session ended, and no connection since: this tab's emits end at once (`session-ended`), as with the core's emit guard. */
  let ended = false;
  /** This tab's emits that no holder has sent yet. */
  const outbox = new Map<number, Outgoing>();
  /** This tab's emits waiting for their end: the ack's arguments, an error or a notice. */
  const acks = new Map<number, (reply: Reply) => void>();
  /** As the holder: other tabs' emits waiting for the connection. */
  let waiting: EmitMessage[] = [];
  let resume = false;

  const post = (message: TabMessage) => channel?.postMessage(message);
  /** A message for a tab: this one (read at once) or another (posted). */
  const tell = (message: Of<'emit' | 'sent' | 'ack' | 'reconnect'>) => (message.to === me ? handle(message) : post(message));
  /** A server event, in this tab's listeners. */
  const dispatch = ({ event, args }: Pick<Of<'event'>, 'event' | 'args'>) => {
    events.emit(ANY, event, ...args);
    events.emit(event, ...args);
  };
  /** Emit `n` of this tab ended: its callback, if it has one, hears how, once. */
  const settle = (n: number, reply: Reply) => {
    const ack = acks.get(n);
    outbox.delete(n);
    acks.delete(n);
    ack?.(reply);
  };

  /** The connection's state as this tab shows it: the holder's, or this tab's own when it joins or leaves. */
  const show = ({ connected: c, id: i, state: s, reason = 'transport close', ended: e = ended }: Pick<Of<'holder'>, 'connected' | 'id' | 'state' | 'reason' | 'ended'>) => {
    const oldState = state;
    id = i;
    state = s;
    // The session ended, as the holder says (a tab that joins after a logout learns it here), until a connection.
    ended = !c && e;
    if (s !== oldState) sdk.emit('state', { newState: s, oldState });
    if (c !== connected) events.emit((connected = c) ? 'connect' : 'disconnect', reason);
  };
  /** As the holder: show a new state here and tell every tab (also the answer to `hello`). */
  const announce = (c = connected, s = state, reason?: string) => {
    const message: Of<'holder'> = { type: 'holder', from: me, locked, session, connected: c, id: real?.id, state: s, reason, ended };
    show(message);
    post(message);
  };
  /** Every {@link CHECK_EVERY} ms without the connection: ask who holds it after a quiet check, take over after {@link SILENT_TICKS}. */
  const watch = () => real || (++silent < SILENT_TICKS ? silent > 1 && post({ type: 'hello' }) : lead());

  /**
   * This tab stops following its holder: emits the holder sent lost their acks with its connection. Those it has
   * no receipt for are posted to no other holder (an emit is handed to a connection once) unless `gone`: the
   * holder can send none of them (it let go of the lock, or it is this tab, which dropped them), or none was posted.
   */
  const lose = (gone?: boolean) => {
    gone ||= !leader || leader === me;
    for (const [n] of acks) if (!gone || !outbox.has(n)) settle(n, LOST);
    if (!gone) outbox.clear();
  };
  /** A new holder (`firm`: it holds the lock): emits the old one sent lost their acks with its connection; what it cannot have sent goes to the new one. */
  const follow = (holder: number, firm: boolean) => {
    if (holder !== leader) {
      lose(held && firm);
      leader = holder;
      outbox.forEach(toHolder);
    }
    held = firm;
  };
  /** Post an emit to the holder. An outbox only holds emits made since the last session ended: they are of the current one. */
  const toHolder = (message: Outgoing) => tell({ ...message, to: leader!, session });
  /** A holder's state. A holder yields to a claim that outranks its own (the lock first, then the larger id), else answers it. */
  const heardHolder = (message: Of<'holder'>) => {
    if (real && (locked || !(message.locked || message.from > me))) return announce();
    if (real) letGo();
    silent = 0;
    // The holder's count: the one its take() compares with (a tab that was away may have counted more).
    session = message.session;
    follow(message.from, message.locked);
    show(message);
  };

  /** The session ended: what this tab (and, as the holder, every tab) buffered under it is dropped with `session-ended`; new emits end so until a connection. */
  const sessionEnded = () => {
    session++;
    ended = true;
    outbox.forEach(refuse());
    waiting.splice(0).forEach(refuse());
  };
  /** An emit that is not sent gets `notice` (a session that ended: `session-ended`), in the tab that made it (this one: at once). */
  const refuse =
    (notice = SESSION_ENDED) =>
    ({ from, n }: Outgoing) =>
      tell({ type: 'ack', to: from, n, notice });
  /**
   * As the holder: an emit (this tab's or another's) waits for the connection, unless made under a session that ended:
   * one counted otherwise than here (from before the last end, or from a tab that counted ends this tab did not see),
   * or made while the session is ended here (no connection since).
   */
  const take = (message: EmitMessage) => {
    if (message.session !== session || ended) return refuse()(message);
    if (RESERVED.test(message.event)) return;
    waiting.push(message);
    pump();
  };
  const pump = () => real?.connected && waiting.splice(0).forEach(run);
  /** As the holder, connected: hand an emit to the connection, once; its end goes back to the tab that made it. */
  const run = ({ from, n, event, args, ack, until }: EmitMessage) => {
    // Timed out in its tab meanwhile: not sent, as socket.io-client drops a timed-out packet it still buffers.
    if (until! < Date.now()) return;
    tell({ type: 'sent', to: from, n });
    const reply: Ack = (error: any, ...result: any[]) => {
      // The core SDK's emit guard turns a notice into a SessionEmitError: the notice travels, the tab rebuilds the error.
      const notice: EmitNotice | undefined = error?.notice;
      tell({ type: 'ack', to: from, n, ...(notice ? { notice } : error ? { error: error.message } : { args: result }) });
    };
    reply.withError = true;
    // What socket.io-client throws at (a BigInt, say) ends that emit in its tab, not the others of the batch.
    try {
      real!.emit(event, ...(ack ? [...args, reply] : args));
    } catch (error) {
      reply(error);
    }
  };

  /** This tab holds the connection now: it got the lock, or no holder answered in time. */
  const lead = () => {
    real = connect(url, {
      ...options,
      tabs: undefined,
      // Each tab times its own emits out (send()): the holder's ackTimeout does not apply to the others'.
      ackTimeout: undefined,
      autoConnect: true,
      on: {
        state: ({ newState }) => announce(connected, newState),
        invalid: (ctx) => (sessionEnded(), relay('invalid', ctx), announce()),
        // A refused handshake fails what waits for it, as the core's emit guard does: the store may stay away longer than an ack should wait.
        unavailable: (ctx) => (ctx.phase === 'handshake' && waiting.splice(0).forEach(refuse({ code: ctx.code, reason: ctx.reason as EmitNotice['reason'], retryAfter: ctx.retryIn })), relay('unavailable', ctx)),
        fatal: (error) => relay('fatal', error),
      },
    });
    real.on('connect', () => (announce(true), pump()));
    real.on('disconnect', (reason) => announce(false, state, reason));
    real.on('connect_error', (error: Error) => events.emit('connect_error', error));
    real.onAny((event: string, ...args: any[]) => {
      dispatch({ event, args });
      // A server event that asks for an ack is answered by this tab's listeners: functions do not travel.
      post({ type: 'event', event, args: args.filter((a) => typeof a !== 'function') });
    });
    follow(me, locked);
    // Not connected until this connection is: every tab sees `disconnect`, then `connect` (the app's join-on-connect runs again).
    announce(false);
  };
  /** An SDK event of this tab's connection: here, and (without its functions) in every tab. */
  const relay = (event: (typeof RELAYED)[number], payload: any) => {
    sdk.emit(event, payload);
    post({ type: 'sdk', event, payload: { ...payload, reconnect: 0 } });
  };
  /** This tab stops holding the connection, quietly: the other tabs hear from the next holder, not "io client disconnect". */
  const letGo = () => {
    if (!real) return;
    real.sessions.dispose();
    real.off();
    real.offAny();
    real.disconnect();
    real = undefined;
    waiting = [];
  };

  /**
   * An SDK event the holder had: the same in this tab. Once the holder gives up reconnecting, this tab applies its
   * own invalid policy (its `onInvalid`, its reload guard); a listener that calls `disconnect()` or `dispose()` stops it.
   */
  const told = ({ event, payload }: Of<'sdk'>) => {
    if (event !== 'invalid') return sdk.emit(event, event === 'fatal' ? new OriginNotAllowedError() : payload);
    sessionEnded();
    const was = channel;
    const action =
      payload.action === 'reconnect' ? 'reconnect' : typeof onInvalid === 'function' ? 'handler' : onInvalid !== 'none' && takeReload(maxReloads, reloadWindow) ? 'reload' : 'stop';
    const ctx: InvalidContext = { ...payload, action, error: new SessionInvalidError(payload.reason), reconnect: connectTab };
    sdk.emit(event, ctx);
    if (channel !== was) return;
    if (action === 'reload') location.reload();
    else if (action === 'handler') (onInvalid as (ctx: InvalidContext) => void)(ctx);
  };

  type Handlers<T extends TabMessage['type']> = { [K in T]: (message: Of<K>) => unknown };
  /** The messages every tab reads. */
  const forAll: Handlers<'hello' | 'holder' | 'event' | 'sdk'> = {
    hello: () => real && announce(),
    holder: heardHolder,
    event: dispatch,
    sdk: told,
  };
  /** The messages a tab reads only when they are addressed to it (`to`), so no tab takes another's emit, receipt or ack. */
  const forMe: Handlers<'emit' | 'reconnect' | 'sent' | 'ack'> = {
    emit: (message) => real && take(message),
    // (Not an attempt already under way: its transport opening or open, a second connect() would send a second CONNECT.)
    reconnect: () => real && ((real.active && real.io.engine.readyState !== 'closed') || real.connect()),
    sent: ({ n }) => outbox.delete(n),
    ack: (message) => settle(message.n, message),
  };
  const handle = (message: TabMessage & { to?: number }) => ((message.to === me ? forMe : forAll) as Record<string, (message: any) => unknown>)[message.type]?.(message);
  /** What arrives on the channel: a message of ours, for every tab or addressed to this one; the rest is left alone. */
  const read = ({ data }: MessageEvent) => isTabMessage(data) && handle(data);

  const join = () => {
    if (channel) return;
    channel = new BroadcastChannel(key);
    channel.onmessage = read;
    const stop = (leaving = new AbortController()).signal;
    locks
      .request(key, { signal: stop }, () => stop.aborted || new Promise((resolve) => ((stop.onabort = resolve), (locked = true), real ? announce() : lead())))
      .catch(() => {}); // aborted: this tab left before it got the lock
    show({ connected: false, state: 'connecting' });
    post({ type: 'hello' });
    silent = 0;
    watchdog = setInterval(watch, CHECK_EVERY);
  };

  /** This tab stops taking part: it lets go of the connection (another tab takes over) or of its place in the queue. */
  const leave = () => {
    if (!channel) return;
    channel.close();
    channel = undefined;
    clearInterval(watchdog);
    leaving.abort();
    letGo();
    // Emits of this tab the holder sent, or may still send, end now, as on a plain socket's disconnect().
    lose();
    locked = false;
    leader = undefined;
    show({ connected: false, state: 'disconnected', reason: 'io client disconnect' });
  };

  /**
   * Every emit of this tab: into the outbox, then to the connection (this tab holds it) or to the holder. `ms`:
   * `timeout(ms)`, else the `ackTimeout` option. Arguments that cannot travel between tabs throw here (DataCloneError).
   */
  const send = (event: string, args: any[], ms = ackTimeout) => {
    if (RESERVED.test(event)) throw Error(`"${event}" is a reserved event name`);
    const callback: Ack | undefined = typeof args.at(-1) === 'function' ? args.pop() : undefined;
    const copy = structuredClone(json(args));
    // What socket.io-client's emit throws at (a BigInt, a cycle) throws here, in every tab (binary is sent aside).
    JSON.stringify(args, (_, value) => (ArrayBuffer.isView(value) ? 0 : value));
    // The holder's own emits go as they are, as on a plain socket; another tab's, as cloned.
    if (!real) args = copy;
    const n = ++seq;
    if (callback) {
      const withError = ms !== undefined || callback.withError;
      acks.set(n, ({ args = [], error, notice }) => {
        // A notice is a SessionEmitError, the callback's only argument, error-first or not: as on the core SDK's socket.
        if (notice) callback(new SessionEmitError(notice, event));
        else if (withError) callback(error ? Error(error) : null, ...args);
        else if (!error) callback(...args);
      });
    }
    // The session ended (no connection since): not sent; an ack gets `session-ended` on a later task, as with the core's emit guard.
    if (ended) return void setTimeout(settle, 0, n, { notice: SESSION_ENDED });
    // As socket.io-client: a timed-out emit that no holder took yet is not sent at all.
    const until = callback && ms !== undefined ? Date.now() + ms : undefined;
    if (until) setTimeout(() => settle(n, { error: 'operation has timed out' }), ms);
    const message: Outgoing = { type: 'emit', from: me, n, event, args, ack: !!callback, until };
    outbox.set(n, message);
    if (leader) toHolder(message);
  };
  const withAck = (event: string, args: any[], ms?: number) =>
    new Promise((resolve, reject) => {
      const ack: Ack = (error: Error | null, value: unknown) => (error ? reject(error) : resolve(value));
      ack.withError = true;
      send(event, [...args, ack], ms);
    });

  const page = new AbortController();
  const chain =
    <A extends any[]>(f: (...args: A) => unknown) =>
    (...args: A) => (f(...args), socket);
  /** `emit` and `emitWithAck`, with a timeout or without. */
  const timed = (ms?: number) => ({
    emit: chain((event: string, ...args: any[]) => send(event, args, ms)),
    emitWithAck: (event: string, ...args: any[]) => withAck(event, args, ms),
  });
  const connectTab = chain(() => (channel ? tell({ type: 'reconnect', to: leader! }) : join()));
  const disconnectTab = chain(leave);

  const socket = {
    get id() {
      return id;
    },
    get connected() {
      return connected;
    },
    get disconnected() {
      return !connected;
    },
    get leader() {
      return !!real;
    },
    // In a shared tab the SDK is the tab's link to the connection: dispose() also leaves, as `disconnect()` does.
    sessions: controllerOf(sdk, () => state, [leave, () => events.removeAllListeners(), () => page.abort()]),
    ...timed(),
    timeout: timed,
    send: chain((...args: any[]) => send('message', args)),
    on: chain(events.on.bind(events)),
    once: chain(events.once.bind(events)),
    off: chain((event?: string, listener?: Listener) => (event === undefined ? events.removeAllListeners() : events.off(event, listener))),
    onAny: chain((listener: Listener) => events.on(ANY, listener)),
    offAny: chain((listener?: Listener) => events.off(ANY, listener)),
    /** Join (again); when this tab already takes part, have the holder connect again (e.g. after an invalid session). */
    connect: connectTab,
    open: connectTab,
    /** This tab only: it leaves; the others keep the connection (another tab takes it over if this one held it). */
    disconnect: disconnectTab,
    close: disconnectTab,
  };

  for (const event in on) on[event as keyof SessionClientEvents] && sdk.on(event, on[event as keyof SessionClientEvents]!); // (an unset one skipped, as without tabs)
  // A page that goes away lets go of the connection at once (the next tab takes over without
  // waiting for the page to be destroyed); a page restored from the back/forward cache joins again.
  addEventListener('pagehide', () => channel && ((resume = true), leave()), page);
  addEventListener('pageshow', () => resume && ((resume = false), join()), page);
  if (autoConnect) join();
  return socket as unknown as SharedSocket<any, any>;
}

export type { SharedSocket, TabsProvider } from './connect.js';
