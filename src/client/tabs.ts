/**
 * socket.io-sessions/tabs: the tabs of one browser share one connection. The tabs of a browser
 * share one session cookie, so one connection can serve them all: one tab holds it (elected with
 * the Web Locks API), the others reach it over a `BroadcastChannel`, through an object with the
 * socket's everyday surface. Server events reach every tab; an ack, the tab that emitted.
 *
 * When the holder closes, crashes or navigates away, the browser hands the lock to another tab,
 * which connects; emits made meanwhile wait in their tab's outbox and go to the new holder. Every
 * emit is handed to a connection once: a tab keeps an emit until a holder says it sent it ('sent'
 * receipt), and resends what it keeps to each new holder, addressed to that holder only (the
 * holder ignores messages addressed to another tab, so an emit never runs twice). An emit the old
 * holder had sent, whose ack had not come back, fails like an ack over a lost connection does in
 * socket.io-client ("socket has been disconnected", for `emitWithAck` and `timeout()`).
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
import { OriginNotAllowedError, SessionEventEmitter, SessionInvalidError, SessionOptionsError, takeReload } from './index.js';
import type { ConnectWithSessionOptions, InvalidContext, SessionClientEvents, SessionController, SessionSocket, SessionState, SharedSocket, TabsProvider } from './connect.js';

export interface SharedTabsOptions {
  /**
   * Tabs that pass the same name share a connection (it names the lock and the channel).
   * @default the socket's URL (with its namespace) and `path`: tabs connecting to the same place share
   */
  name?: string;
}

type Listener = (...args: any[]) => unknown;
/** An ack callback as socket.io-client marks those that take an error first (`emitWithAck`, `timeout()`). */
type Ack = Listener & { withError?: boolean };

/**
 * A message between tabs (docs/tabs.md has the table). `to`: only that tab reads it; `f`: the tab
 * that sent it (h, m). From a tab to all: q (who holds the connection?). From the holder to all: h
 * (its state: `c` connected, `i` socket id, `s` SDK state, `r` disconnect reason), e (a server event
 * `e` with arguments `a`), s (an SDK event `e` with payload `x`). From a tab to the holder: m (emit
 * number `n`: event `e`, arguments `a`, `k` wants an ack), r (connect again). From the holder to a
 * tab: d (emit `n` was sent), a (the ack of emit `n`: arguments `a`, or error message `x`).
 */
interface Message {
  t: 'q' | 'h' | 'e' | 's' | 'm' | 'r' | 'd' | 'a';
  f?: number;
  to?: number;
  n?: number;
  e?: string;
  a?: any[];
  k?: boolean;
  x?: any;
  c?: boolean;
  i?: string;
  s?: SessionState;
  r?: string;
}

/** socket.io-client's reserved event names: `emit` refuses them. */
const RESERVED = /^(connect(_error)?|disconnect(ing)?|newListener|removeListener)$/;
/** The key of `onAny` listeners: no event name can be it. */
const ANY = Symbol();

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
  const name = options?.name;
  if (typeof options !== 'object' || typeof (name ?? '') !== 'string') throw new SessionOptionsError('socket.io-sessions: invalid name');
  return { options, open };
}

/** `TabsProvider.open`, called on the provider: `this.options` are the options of `sharedTabs()`. */
function open(
  this: { options: SharedTabsOptions },
  url: string | undefined,
  options: ConnectWithSessionOptions,
  connect: (url: string | undefined, options: ConnectWithSessionOptions) => SessionSocket<any, any>,
): SharedSocket<any, any> {
  const { on, autoConnect = true, onInvalid, maxReloads = 3, reloadWindow = 60_000 } = options;
  const locks = globalThis.navigator?.locks;
  if (!locks || !globalThis.BroadcastChannel) return Object.assign(connect(url, { ...options, tabs: undefined }), { leader: true });

  const key = this.options.name ?? `socket.io-sessions ${url} ${options.path}`;
  const me = Math.random();
  const events = new SessionEventEmitter();
  const sdk = new SessionEventEmitter();
  let channel: BroadcastChannel | undefined;
  /** Aborted when this tab leaves: it stops waiting for the lock, or lets go of it. */
  let leaving: AbortController;
  /** This tab's own connection, while it holds the connection for all tabs. */
  let real: SessionSocket<any, any> | undefined;
  /** The tab that holds the connection, as far as this tab knows. */
  let leader: number | undefined;
  let connected = false;
  let id: string | undefined;
  let state: SessionState = 'disconnected';
  let seq = 0;
  /** This tab's emits that no holder has sent yet. */
  const outbox = new Map<number, Message>();
  /** This tab's emits waiting for an ack: called with an error message, or the ack's arguments. */
  const acks = new Map<number, (error: string | undefined, args: any[]) => void>();
  /** As the holder: other tabs' emits waiting for the connection. */
  let waiting: Message[] = [];
  let resume = false;

  const post = (message: Message) => channel?.postMessage(message);
  const dispatch = (event: string, args: any[]) => {
    events.emit(ANY, event, ...args);
    events.emit(event, ...args);
  };
  const deliver = (n: number, error?: string, args: any[] = []) => {
    const ack = acks.get(n);
    acks.delete(n);
    ack?.(error, args);
  };

  /** The connection's state as this tab shows it: the holder's, or this tab's own when it joins or leaves. */
  const apply = ({ c, i, s, r = 'transport close' }: Pick<Message, 'c' | 'i' | 's' | 'r'>) => {
    const oldState = state;
    id = i;
    state = s!;
    if (s !== oldState) sdk.emit('state', { newState: s, oldState });
    if (c !== connected) events.emit((connected = c!) ? 'connect' : 'disconnect', r);
  };
  const sync = (c = connected, s = state, r?: string) => {
    const message: Message = { t: 'h', f: me, c, i: real?.id, s, r };
    apply(message);
    post(message);
  };

  /** A message for a tab: this one (read at once) or another (posted). */
  const tell = (tab: number, message: Message) => (tab === me ? handlers[message.t](message) : post({ ...message, to: tab }));

  /** A new holder: emits the old one sent lost their acks with its connection; the rest go to the new one. */
  const follow = (holder: number) => {
    if (holder === leader) return;
    if (leader) for (const [n] of acks) if (!outbox.has(n)) deliver(n, 'socket has been disconnected');
    leader = holder;
    outbox.forEach((message) => tell(holder, message));
  };

  /** As the holder, connected: hand an emit (this tab's or another's) to the connection, once. */
  const run = ({ f, n, e, a, k }: Message) => {
    tell(f!, { t: 'd', n });
    const ack: Ack = (error: Error | null, ...args: any[]) => tell(f!, { t: 'a', n, x: error?.message, a: args });
    ack.withError = true;
    if (k) a!.push(ack);
    real!.emit(e!, ...a!);
  };
  const pump = () => real?.connected && waiting.splice(0).forEach(run);

  /** This tab got the lock: it holds the connection now. */
  const lead = () => {
    apply({ c: false, s: state });
    const relay = (event: keyof SessionClientEvents) => (payload: any) => {
      sdk.emit(event, payload);
      post({ t: 's', e: event, x: { ...payload, reconnect: 0 } });
    };
    real = connect(url, {
      ...options,
      tabs: undefined,
      autoConnect: true,
      on: {
        state: ({ newState }) => sync(connected, newState),
        invalid: relay('invalid'),
        unavailable: relay('unavailable'),
        fatal: relay('fatal'),
      },
    });
    real.on('connect', () => (sync(true), pump()));
    real.on('disconnect', (reason) => sync(false, state, reason));
    real.on('connect_error', (error: Error) => events.emit('connect_error', error));
    real.onAny((event: string, ...args: any[]) => {
      dispatch(event, args);
      // A server event that asks for an ack is answered by this tab's listeners: functions do not travel.
      post({ t: 'e', e: event, a: args.filter((a) => typeof a !== 'function') });
    });
    follow(me);
  };

  /** An SDK event the holder had: the same in this tab, but reloads stay within this tab's own guard. */
  const told = ({ e: event, x }: Message) => {
    if (event !== 'invalid') return sdk.emit(event!, event === 'fatal' ? new OriginNotAllowedError() : x);
    const action = x.action === 'reload' && !takeReload(maxReloads, reloadWindow) ? 'stop' : x.action;
    const ctx: InvalidContext = { ...x, action, error: new SessionInvalidError(x.reason), reconnect: connectTab };
    sdk.emit(event, ctx);
    if (action === 'reload') location.reload();
    else if (action === 'handler') (onInvalid as (ctx: InvalidContext) => void)(ctx);
  };

  const handlers: Record<Message['t'], (message: Message) => unknown> = {
    q: () => real && sync(),
    // Another tab claims to hold the connection while this one does: it cannot (one lock), so say who does.
    h: (message) => (real ? sync() : (follow(message.f!), apply(message))),
    e: (message) => dispatch(message.e!, message.a!),
    s: told,
    m: (message) => real && (waiting.push(message), pump()),
    r: () => real?.connect(),
    d: (message) => outbox.delete(message.n!),
    a: (message) => deliver(message.n!, message.x, message.a),
  };

  const join = () => {
    if (channel) return;
    channel = new BroadcastChannel(key);
    // Acks (a) and receipts (d) only when addressed to this tab (the only types before 'e'); what is
    // not a message of ours (another script on the channel, another version of this SDK) is left alone.
    channel.onmessage = ({ data }: MessageEvent<Message>) => (data?.to || (data?.t > 'd' && me)) === me && handlers[data.t]?.(data);
    const stop = (leaving = new AbortController()).signal;
    locks
      .request(key, { signal: stop }, () => stop.aborted || new Promise((resolve) => ((stop.onabort = resolve), lead())))
      .catch(() => {}); // aborted: this tab left before it got the lock
    apply({ c: false, s: 'connecting' });
    post({ t: 'q' });
  };

  /** This tab stops taking part: it lets go of the connection (another tab takes over) or of its place in the queue. */
  const leave = () => {
    if (!channel) return;
    channel.close();
    channel = undefined;
    leaving.abort();
    if (real) {
      // Quietly: the other tabs hear from the next holder, not "io client disconnect" from this one.
      real.sessions.dispose();
      real.off();
      real.offAny();
      real.disconnect();
      real = undefined;
    }
    waiting = [];
    leader = undefined;
    apply({ c: false, s: 'disconnected', r: 'io client disconnect' });
  };

  /** Every emit of this tab: into the outbox, then to the connection (this tab holds it) or to the holder. */
  const send = (event: string, args: any[], ms?: number) => {
    if (RESERVED.test(event)) throw Error(`"${event}" is a reserved event name`);
    const n = ++seq;
    const callback: Ack | undefined = typeof args.at(-1) === 'function' ? args.pop() : undefined;
    if (callback) {
      const withError = ms !== undefined || callback.withError;
      acks.set(n, (error, a) => {
        if (withError) callback(error ? Error(error) : null, ...a);
        else if (!error) callback(...a);
      });
      // As socket.io-client: a timed-out emit that no holder took yet is not sent at all.
      if (ms !== undefined) setTimeout(() => (outbox.delete(n), deliver(n, 'operation has timed out')), ms);
    }
    const message: Message = { t: 'm', f: me, n, e: event, a: args, k: !!callback };
    outbox.set(n, message);
    if (leader) tell(leader, message);
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
  const subscribe = (method: 'on' | 'once') => (event: keyof SessionClientEvents, listener: Listener) => (sdk[method](event, listener), () => sdk.off(event, listener));
  /** `emit` and `emitWithAck`, with a timeout or without. */
  const timed = (ms?: number) => ({
    emit: chain((event: string, ...args: any[]) => send(event, args, ms)),
    emitWithAck: (event: string, ...args: any[]) => withAck(event, args, ms),
  });
  const connectTab = chain(() => (channel ? tell(leader!, { t: 'r' }) : join()));
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
    sessions: {
      get state() {
        return state;
      },
      on: subscribe('on'),
      once: subscribe('once'),
      /** In a shared tab the SDK is the tab's link to the connection: this also leaves, as `disconnect()` does. */
      dispose() {
        leave();
        events.removeAllListeners();
        sdk.removeAllListeners();
        page.abort();
      },
    } as SessionController,
    ...timed(),
    timeout: timed,
    send: chain((...args: any[]) => send('message', args)),
    on: chain((event: string, listener: Listener) => events.on(event, listener)),
    once: chain((event: string, listener: Listener) => events.once(event, listener)),
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

  for (const event in on) sdk.on(event, on[event as keyof SessionClientEvents]!);
  // A page that goes away lets go of the connection at once (the next tab takes over without
  // waiting for the page to be destroyed); a page restored from the back/forward cache joins again.
  addEventListener('pagehide', () => channel && ((resume = true), leave()), page);
  addEventListener('pageshow', () => resume && ((resume = false), join()), page);
  if (autoConnect) join();
  return socket as unknown as SharedSocket<any, any>;
}

export type { SharedSocket, TabsProvider } from './connect.js';
