/**
 * `connectWithSession(url?, options?)`: a plain socket.io-client Socket that connects with the
 * page's session and keeps it: it reconnects where socket.io-client stops (a retryable refusal,
 * a server-side disconnect), applies one policy to every invalid-session signal, at the
 * handshake or pushed mid-connection, and follows the browser (offline, sleep, back/forward
 * cache). With `tabs: sharedTabs()` (socket.io-sessions/tabs) the tabs of a browser share one.
 */
import type { ManagerOptions, Socket, SocketOptions } from 'socket.io-client';
import { ErrorCode, Events, isSessionErrorData, type EmitNotice, type SessionErrorData } from '../protocol.js';
import { OriginNotAllowedError, SessionInvalidError, SessionOptionsError } from '../errors.js';
import { backoff } from './backoff.js';
import { guardEmits, type EmitGuard } from './emit-guard.js';
import { Emitter as SdkEventEmitter } from './emitter.js';
import { decideInvalid, reconnectDelay, type InvalidAction, type OnInvalid } from './invalid-policy.js';

/** Connection state as the app sees it. Only `transition()` changes it. */
export type SessionState = 'connecting' | 'connected' | 'disconnected' | 'invalid';

/** Passed to `invalid` listeners and to an `onInvalid` function. */
export interface InvalidContext {
  code: typeof ErrorCode.SESSION_INVALID;
  reason: SessionErrorData['reason'];
  /** Refused at the handshake, or told mid-connection (logout, expiry). */
  phase: 'handshake' | 'connected';
  /** What the SDK does next. */
  action: InvalidAction;
  error: SessionInvalidError;
  /** For an `onInvalid` function: try connecting again (e.g. after the app logged in again). */
  reconnect(): void;
}

/** Passed to `unavailable` listeners. */
export interface UnavailableContext {
  code: typeof ErrorCode.SESSION_UNAVAILABLE;
  reason: SessionErrorData['reason'];
  /** Refused at the handshake (retried in `retryIn` ms), the token endpoint failed (retried in `retryIn` ms), or an event was not run mid-connection. */
  phase: 'handshake' | 'credential' | 'connected';
  retryIn?: number;
}

/** Supplies the handshake credential and keeps it fresh. `tickets()` (socket.io-sessions/tickets) is one. */
export interface CredentialProvider {
  /** Called once, before the first attempt: start fetching, listen for expiry, refresh in-band. Returns a disposer. */
  attach(socket: Socket, unavailable: (ctx: UnavailableContext) => void): () => void;
  /** socket.io-client's `auth`, on every attempt: calls back with `base` plus the credential. */
  auth(base: object, cb: (data: object) => void): void;
  /** The server refused the credential: never use it again. */
  discard(): void;
  /** Settles once a credential is at hand (or known to be missing): awaited before reconnecting after an invalid answer. */
  ready(): Promise<unknown>;
  /** The options it was made with, for `connectWithSession`'s option check (`tickets()` keeps them). */
  readonly options?: object;
}

/** SDK events, on `socket.sessions`. */
export interface SessionClientEvents {
  state: (change: { newState: SessionState; oldState: SessionState }) => void;
  invalid: (ctx: InvalidContext) => void;
  unavailable: (ctx: UnavailableContext) => void;
  /** A refusal the SDK cannot fix by retrying: the page's origin is not allowed. */
  fatal: (error: Error) => void;
}

/** Options of {@link connectWithSession}: every socket.io-client option, plus these. */
export interface ConnectWithSessionOptions extends Partial<ManagerOptions & SocketOptions> {
  /**
   * Where the handshake credential comes from. Without one, the session cookie (same origin, or
   * any origin the cookie reaches). For tickets (another origin without cookies, Node clients,
   * the served script's embedded ticket) pass `tickets()` from `socket.io-sessions/tickets`:
   * kept separate so cookie-only apps do not ship it.
   */
  credential?: CredentialProvider;
  /**
   * What to do when the session is still invalid after one fresh reconnect.
   * `'reload'` reloads the page (a new page load usually brings a new session cookie),
   * `'none'` stops, a function takes over (call `ctx.reconnect()` to try again).
   * @default 'reload'
   */
  onInvalid?: OnInvalid<InvalidContext>;
  /**
   * At most this many reloads per `reloadWindow` per tab; then the SDK stops (state `invalid`).
   * @default 3
   */
  maxReloads?: number;
  /**
   * @default 60000
   */
  reloadWindow?: number;
  /**
   * Backoff (full jitter) between retries after `SESSION_UNAVAILABLE` or a server-side disconnect, in ms.
   * @default { min: 1000, max: 30000 }
   */
  retry?: { min?: number; max?: number };
  /** Listeners registered before the first connection attempt, so none is missed. */
  on?: { [E in keyof SessionClientEvents]?: SessionClientEvents[E] };
  /**
   * Share one connection among the tabs of this browser: `sharedTabs()` from `socket.io-sessions/tabs`.
   * `connectWithSession` then returns a {@link SharedSocket}.
   */
  tabs?: TabsProvider;
}

/** `socket.sessions`: the SDK's state and events. `on()` returns a disposer. */
export interface SessionController {
  readonly state: SessionState;
  on<E extends keyof SessionClientEvents>(event: E, listener: SessionClientEvents[E]): () => void;
  /** Like `on`, for the next event only. */
  once<E extends keyof SessionClientEvents>(event: E, listener: SessionClientEvents[E]): () => void;
  /** Remove the SDK's listeners and timers; the socket itself is left as it is. */
  dispose(): void;
}

/** An event map as socket.io-client takes it (its `EventsMap`, which it does not export). */
export type EventsMap = Record<string, any>;
export type DefaultEventsMap = Record<string, (...args: any[]) => void>;

/** The socket returned by {@link connectWithSession}: socket.io-client's own, typed with your event maps. */
export type SessionSocket<ListenEvents extends EventsMap = DefaultEventsMap, EmitEvents extends EventsMap = ListenEvents> = Socket<ListenEvents, EmitEvents> & {
  readonly sessions: SessionController;
};

/**
 * What a tab gets with `tabs: sharedTabs()`: the part of the socket an app uses, the same in every
 * tab, whichever tab holds the connection. Server events reach every tab; an ack, the tab that emitted.
 */
export type SharedSocket<ListenEvents extends EventsMap = DefaultEventsMap, EmitEvents extends EventsMap = ListenEvents> = Pick<
  SessionSocket<ListenEvents, EmitEvents>,
  'id' | 'connected' | 'disconnected' | 'sessions' | 'emit' | 'emitWithAck' | 'timeout' | 'send' | 'on' | 'once' | 'off' | 'onAny' | 'offAny' | 'connect' | 'open' | 'disconnect' | 'close'
> & {
  /** Whether this tab holds the connection (true in a tab that has its own, e.g. where the browser lacks Web Locks). */
  readonly leader: boolean;
};

/** Makes the tabs of a browser share one connection: `sharedTabs()` (socket.io-sessions/tabs) is one. */
export interface TabsProvider {
  /**
   * Called by `connectWithSession` with its (checked) arguments. `connect` opens this tab's own
   * connection (the same options without `tabs`), for the tab that holds the connection.
   */
  open(url: string | undefined, options: ConnectWithSessionOptions, connect: (url: string | undefined, options: ConnectWithSessionOptions) => SessionSocket<any, any>): SharedSocket<any, any>;
  /** The options it was made with, for `connectWithSession`'s option check (`sharedTabs()` keeps them). */
  readonly options?: object;
}

/** The SDK's event emitter, as far as the opt-in entries use it. */
export interface SdkEmitter {
  on(event: PropertyKey, listener: (...args: any[]) => unknown): this;
  once(event: PropertyKey, listener: (...args: any[]) => unknown): this;
  /** Without a listener: every listener of the event. */
  off(event: PropertyKey, listener?: (...args: any[]) => unknown): this;
  emit(event: PropertyKey, ...args: any[]): boolean;
  removeAllListeners(event?: PropertyKey): this;
}

/** The SDK's emitter: exported so that the opt-in entries (socket.io-sessions/tabs) do not ship one of their own. */
export const SessionEventEmitter = SdkEventEmitter as new () => SdkEmitter;

/** socket.io-client's `io()`: the npm export, or the global of `/socket.io/socket.io.js`. */
export type Lookup = (uri?: string, opts?: Partial<ManagerOptions & SocketOptions>) => Socket;

type Emitter = { on(event: string, listener: (...args: any[]) => void): unknown; off(event: string, listener: (...args: any[]) => void): unknown };
/** Disposers, drained by `dispose()` (socket.io-client's `subs`). */
type Subs = Array<() => void>;

// globalThis: Node has no `navigator` (before 21) nor `location`.
const offline = () => globalThis.navigator?.onLine === false;

/**
 * A count that would do harm (a negative retry delay is a busy loop) throws at once; the message names the
 * option and the value given. What only TypeScript or the option check catches (a `url` that is no string,
 * an unknown `onInvalid`: option-check.ts) is left out of the core for its size budget.
 */
function invalidOption(name: string, value: unknown): never {
  throw new SessionOptionsError(`socket.io-sessions: invalid ${name}: ${String(value)}`);
}

/** A count or duration option: a finite number >= 0. */
function count(value: unknown, name: string): number | undefined;
function count(value: unknown, name: string, fallback: number): number;
function count(value: unknown, name: string, fallback?: number): number | undefined {
  if (value === undefined) return fallback;
  return typeof value === 'number' && value >= 0 && value < Infinity ? value : invalidOption(name, value);
}

/** The SDK's own options, their counts checked, with their defaults; `io` is what goes to socket.io-client. */
interface Options {
  _onInvalid: OnInvalid<InvalidContext>;
  /** Unset: takeReload's defaults (src/client/invalid-policy.ts), which the tabs entry uses too. */
  _maxReloads?: number;
  _reloadWindow?: number;
  _retryMin: number;
  _retryMax: number;
  _on: ConnectWithSessionOptions['on'];
  _credential?: CredentialProvider;
  _tabs?: TabsProvider;
  _io: Partial<ManagerOptions & SocketOptions>;
}

function readOptions(options: ConnectWithSessionOptions = {}): Options {
  const { onInvalid = 'reload', maxReloads, reloadWindow, retry, on, credential, tabs, ...io } = options;
  const min = count(retry?.min, 'retry.min', 1000);
  return {
    _onInvalid: onInvalid,
    _maxReloads: count(maxReloads, 'maxReloads'),
    _reloadWindow: count(reloadWindow, 'reloadWindow'),
    _retryMin: min,
    _retryMax: Math.max(min, count(retry?.max, 'retry.max', 30_000)),
    _on: on,
    _credential: credential,
    _tabs: tabs,
    _io: io,
  };
}

/**
 * One socket's SDK: what the functions below share. The states, and what moves the SDK between
 * them (only {@link transition} changes `state`):
 *
 * | from → to                 | when                                                                        |
 * | ------------------------- | --------------------------------------------------------------------------- |
 * | any → connecting          | an attempt starts or is scheduled: {@link connectNow}, {@link connectIn}, a dropped connection |
 * | connecting → connected    | socket.io-client's `connect`                                                |
 * | connecting → disconnected | socket.io-client gives up (a transport error, `reconnection: false`, `reconnect_failed`) with no SDK retry pending; the page's origin is refused |
 * | any → invalid             | the invalid policy ends in a reload, the app's `onInvalid` or a stop        |
 * | any → disconnected        | the app's `disconnect()`                                                    |
 */
interface Link extends Options {
  _socket: Socket;
  _events: SdkEmitter;
  _guard: EmitGuard;
  /** socket.io-client's own `disconnect()`, for the SDK's own closes (the app's is wrapped: {@link wrapDisconnect}). */
  _close: () => unknown;
  _state: SessionState;
  /** The pending (re)connect: a retry's backoff, the pause after an invalid answer, or the offline wait. */
  _timer?: ReturnType<typeof setTimeout>;
  /** Retries since the last connection: the backoff's step. */
  _step: number;
  /** Invalid answers in a row since the last connection... */
  _streak: number;
  /** ...and whether the first of them was pushed to a connected socket (logout, login, expiry); set at the first (unset before any). */
  _fromConnected?: boolean;
}

/**
 * The one place the state changes. While a retry of the SDK's is pending (state 'connecting'), a give-up of
 * socket.io-client's (the app's own connect() meanwhile failed, with its reconnection off or its attempts used
 * up) leaves the state 'connecting': that retry still comes. (The app's disconnect() cancels the retry first.)
 */
function transition(link: Link, newState: SessionState) {
  const oldState = link._state;
  if (newState === oldState || (newState === 'disconnected' && link._timer)) return;
  link._state = newState;
  link._events.emit('state', { newState, oldState });
}

function cancelRetry(link: Link) {
  link._timer = clearTimeout(link._timer) as undefined;
}

/**
 * An attempt now. Offline, one cannot succeed: wait for `online` (and look again every 9 s in case the event is missed).
 * Started before the `state` listeners hear of it: one that calls `disconnect()` closes it.
 */
function connectNow(link: Link) {
  if (offline()) connectIn(link, 9000); // (which cancels a pending retry, as below)
  // An attempt already under way (an active socket whose transport is opening or open: socket.io-client opened it
  // at once on a Manager another socket made, or the app's connect()) is left to go on: a second connect() would send
  // the server a second CONNECT. An active one whose transport closed (socket.io-client gave up) is connected again.
  else cancelRetry(link), (link._socket.active && link._socket.io.engine.readyState !== 'closed') || link._socket.connect(), transition(link, 'connecting');
}

/**
 * An attempt in `delay` ms. `renewFirst`, after an invalid answer: the new credential is fetched before the
 * transport opens (a handshake held back by it would meet engine.io's websocket upgrade, which can stall it);
 * none if the app stopped the SDK meanwhile. The timer is set before the `state` listeners hear of it: the
 * app's `disconnect()` or `dispose()` there clears it.
 */
function connectIn(link: Link, delay: number, renewFirst?: boolean) {
  const { _credential: credential } = link;
  cancelRetry(link);
  link._timer = setTimeout(renewFirst && credential ? () => credential.ready().then(() => link._state === 'connecting' && connectNow(link)) : connectNow, delay, link);
  transition(link, 'connecting');
  return delay;
}

/** Retry policy for a retryable refusal or a server-side disconnect: backoff with full jitter, not before `minDelay`. */
function retryLater(link: Link, minDelay = 0) {
  return connectIn(link, Math.max(minDelay, backoff(link._step++, link._retryMin, link._retryMax)));
}

/** Every invalid-session signal, at the handshake or pushed mid-connection: nothing emitted under it goes on; then the policy. */
function handleInvalid(link: Link, data: SessionErrorData, phase: InvalidContext['phase']) {
  if (++link._streak === 1) link._fromConnected = phase === 'connected';
  cancelRetry(link);
  link._guard.end();
  link._credential?.discard();
  link._close(); // (a socket already closed, at a refused handshake: no-op)
  const action = decideInvalid<InvalidContext>(link);
  const ctx: InvalidContext = {
    code: ErrorCode.SESSION_INVALID,
    reason: data.reason,
    phase,
    action,
    error: new SessionInvalidError(data.reason),
    reconnect: () => connectNow(link),
  };
  const state = link._state;
  link._events.emit('invalid', ctx);
  // A listener called the app's disconnect() or dispose() (or ctx.reconnect()): the SDK does nothing more here.
  if (state !== link._state) return;
  if (action === 'reconnect') return void connectIn(link, reconnectDelay(link._streak, link._fromConnected!), true);
  transition(link, 'invalid');
  if (action === 'reload') location.reload();
  else if (action === 'handler') (link._onInvalid as (c: InvalidContext) => void)(ctx);
}

/** A refused handshake also answers what was emitted for it: the store may stay away longer than any ack should wait. */
function handleUnavailable(link: Link, data: SessionErrorData, phase: UnavailableContext['phase']) {
  let retryIn: number | undefined;
  if (phase === 'handshake') {
    link._guard.fail(data as EmitNotice); // the refusal is the notice: its code, reason and retryAfter
    retryIn = retryLater(link, data.retryAfter);
  }
  link._events.emit('unavailable', { code: ErrorCode.SESSION_UNAVAILABLE, reason: data.reason, phase, retryIn });
}

/**
 * A refused handshake: the server's answer says which. A transport error: 'connecting' while socket.io-client will
 * retry (the socket active, its reconnection on), else 'disconnected' (the app turned its reconnection off).
 */
function handleRefusal(link: Link, { data }: Error & { data?: unknown }) {
  if (!isSessionErrorData(data)) return transition(link, link._socket.active && link._socket.io.reconnection() ? 'connecting' : 'disconnected');
  if (data.code === ErrorCode.SESSION_INVALID) handleInvalid(link, data, 'handshake');
  else if (data.code === ErrorCode.SESSION_UNAVAILABLE) handleUnavailable(link, data, 'handshake');
  else {
    // (A retry of the SDK's still pending cannot help either: cancelled, so the state says it.)
    cancelRetry(link), transition(link, 'disconnected');
    link._events.emit('fatal', new OriginNotAllowedError());
  }
}

/** A dropped connection. 'io client disconnect': the app's disconnect() (see {@link wrapDisconnect}) or the SDK's own close. */
function handleDisconnect(link: Link, reason: string) {
  // (In state 'invalid' the SDK closed the socket itself: its only disconnect is that one.)
  if (reason === 'io client disconnect') return;
  // socket.io-client does not come back after a server-side disconnect, a session SDK should; after a transport loss it does.
  if (reason === 'io server disconnect') retryLater(link);
  // A transport loss: socket.io-client reconnects, unless the app turned its reconnection off (as in handleRefusal).
  else transition(link, link._socket.active && link._socket.io.reconnection() ? 'connecting' : 'disconnected');
}

function listen(subs: Subs, target: Emitter, event: string, listener: (...args: any[]) => void) {
  target.on(event, listener);
  subs.push(() => target.off(event, listener));
}

/** socket.io-client's events, and the server's pushed session events, move the SDK. */
function followSocket(link: Link, subs: Subs) {
  const socket = link._socket as unknown as Emitter;
  listen(subs, socket, 'connect', () => {
    cancelRetry(link); // connected by another way (the app's connect() during the backoff): the retry is moot
    link._streak = link._step = 0;
    link._guard.resume();
    transition(link, 'connected');
  });
  listen(subs, socket, 'connect_error', (error: Error) => handleRefusal(link, error));
  listen(subs, socket, Events.INVALID, (data: unknown) => isSessionErrorData(data) && handleInvalid(link, data, 'connected'));
  listen(subs, socket, Events.UNAVAILABLE, (data: unknown) => isSessionErrorData(data) && handleUnavailable(link, data, 'connected'));
  listen(subs, socket, 'disconnect', (reason: string) => handleDisconnect(link, reason));
  // socket.io-client's own reconnection keeps trying while offline (4 attempts in 15 s): stop it and wait for `online`.
  const manager = link._socket.io as unknown as Emitter;
  listen(subs, manager, 'reconnect_attempt', () => offline() && (link._close(), connectNow(link)));
  // socket.io-client gave up (`reconnectionAttempts`): so does the SDK (its socket stays active, so only while it is).
  listen(subs, manager, 'reconnect_failed', () => link._socket.active && transition(link, 'disconnected'));
}

/**
 * The app's disconnect() (close() calls it): the SDK stops too, also while the socket is still connecting or
 * waits for a retry, when socket.io-client emits no `disconnect` (the state would stay 'connecting', and a retry
 * would connect again a socket the app closed). dispose() gives socket.io-client's own back.
 */
function wrapDisconnect(link: Link, subs: Subs) {
  const socket = link._socket as { disconnect(): unknown };
  socket.disconnect = () => (cancelRetry(link), transition(link, 'disconnected'), link._close());
  // dispose(): the SDK stops where it is, in state 'disconnected' (told to no listener; see handleInvalid, connectIn).
  subs.push(() => (cancelRetry(link), (link._state = 'disconnected'), delete (socket as { disconnect?: unknown }).disconnect));
}

/**
 * Browser lifecycle: when the network comes back, a hidden tab is shown or timers stood still (sleep), a
 * pending retry goes now and a transport whose heartbeat ran out meanwhile is closed now (socket.io-client
 * reconnects), instead of waiting out the backoff or the heartbeat timer. Back/forward cache: an active
 * connection is closed when the page is cached (an open one keeps it out of the cache, or sits idle on
 * the server), and connects again when the page is restored.
 */
function followBrowser(link: Link, subs: Subs) {
  const { _socket: socket } = link;
  // The engine's heartbeat, seen through socket.io-client's public `ping` event: expired when no ping came for
  // two ping periods (the server has given up on this transport; timers that stood still missed it). The period:
  // the time since the last ping (or the open), socket.io's default pingInterval until the first ping measures it.
  let last = Date.now();
  let period = 25_000;
  listen(subs, socket.io as unknown as Emitter, 'open', () => (last = Date.now()));
  listen(subs, socket.io as unknown as Emitter, 'ping', () => (period = -last + (last = Date.now())));
  // Connected: closed if its heartbeat ran out. Else a retry waiting, the SDK's or socket.io-client's own
  // reconnection waiting out its backoff (the socket still active, its transport closed; an attempt under way
  // has an open or opening one): closed, and connected in 250 ms (unless offline again by then). Never a
  // connected socket, also when an SDK retry is still pending (the app called connect() meanwhile).
  const check = () =>
    socket.connected
      ? Date.now() - last > 2 * period && socket.io.engine.close()
      : (link._timer || (link._state === 'connecting' && socket.io.engine.readyState === 'closed')) && (link._close(), connectIn(link, 250));
  const dom = (type: string, listener: (event: any) => unknown, target: EventTarget = window) => {
    target.addEventListener(type, listener);
    subs.push(() => target.removeEventListener(type, listener));
  };
  dom('online', check);
  dom('visibilitychange', () => document.hidden || check(), document);
  let parked: unknown; // (truthy: the socket, closed when the page was cached)
  dom('pagehide', (event: PageTransitionEvent) => (parked = event.persisted && link._state < 'd' && socket.disconnect())); // < 'd': connecting or connected
  dom('pageshow', () => parked && ((parked = false), connectNow(link)));
  // A tick that comes far too late means the machine slept or the tab was frozen.
  let tick = Date.now();
  const ticker = setInterval(() => tick < (tick = Date.now()) - 9000 && check(), 3000); // a gap of over 9 s since the last tick
  subs.push(() => clearInterval(ticker));
}

/**
 * `socket.sessions`: the SDK's state and events; `dispose` drains `subs`, then drops the listeners.
 * Exported for the opt-in tabs entry, whose shared socket has the same controller.
 */
export function controllerOf(events: SdkEmitter, state: () => SessionState, subs: Subs): SessionController {
  const subscribe = (method: 'on' | 'once') => (event: keyof SessionClientEvents, listener: (...args: any[]) => void) => {
    events[method](event, listener);
    return () => void events.off(event, listener);
  };
  return {
    get state() {
      return state();
    },
    on: subscribe('on'),
    once: subscribe('once'),
    dispose() {
      subs.splice(0).forEach((off) => off());
      events.removeAllListeners();
    },
  };
}

/**
 * socket.io-client's socket, not connected yet. `auth` runs on every (re)connect: each attempt gets a valid credential.
 * With `extraHeaders` (a Node client's cookie) its own Manager (`multiplex: false`) unless the app says otherwise:
 * socket.io-client would reuse the Manager it cached for the URL, made with another user's headers.
 */
function openSocket(lookup: Lookup, url: string | undefined, { _io: io, _credential: credential }: Options): Socket {
  const userAuth = io.auth;
  const auth = credential ? (cb: (data: object) => void) => credential.auth(typeof userAuth === 'object' ? userAuth : {}, cb) : userAuth;
  // Cookies must travel on cross-origin polling requests too.
  return lookup(url, { withCredentials: true, multiplex: !io.extraHeaders, ...io, auth, autoConnect: false } as Partial<ManagerOptions & SocketOptions>);
}

/**
 * The SDK on `socket`: every part above, each pushing its undoing to `subs`, drained by `dispose()`
 * (socket.io-client's `subs`): the retry timer, the emit wraps, the listeners, the disconnect wrap, the credential's.
 */
function attach(socket: Socket, options: Options): SessionController {
  const subs: Subs = [];
  const events = new SessionEventEmitter();
  const guard = guardEmits(socket, options._io.ackTimeout !== undefined, subs);
  const link: Link = { ...options, _socket: socket, _events: events, _guard: guard, _close: socket.disconnect.bind(socket), _state: 'disconnected', _step: 0, _streak: 0 };
  followSocket(link, subs);
  wrapDisconnect(link, subs);
  if (typeof document === 'object') followBrowser(link, subs);
  const controller = controllerOf(events, () => link._state, subs);
  for (const [event, listener] of Object.entries(options._on ?? {})) {
    if (listener) controller.on(event as keyof SessionClientEvents, listener as never); // (a listener that is no function: the option check's)
  }
  (socket as { sessions?: SessionController }).sessions = controller;
  if (options._credential) subs.push(options._credential.attach(socket, (ctx) => events.emit('unavailable', ctx)));
  if (options._io.autoConnect !== false) connectNow(link);
  return controller;
}

/** Builds `connectWithSession` on a socket.io-client lookup function (`io` from the package or the global one). */
export function createConnectWithSession(lookup: Lookup) {
  function connectWithSession<ListenEvents extends EventsMap = DefaultEventsMap, EmitEvents extends EventsMap = ListenEvents>(
    url: string | undefined,
    options: ConnectWithSessionOptions & { tabs: TabsProvider },
  ): SharedSocket<ListenEvents, EmitEvents>;
  function connectWithSession<ListenEvents extends EventsMap = DefaultEventsMap, EmitEvents extends EventsMap = ListenEvents>(
    options: ConnectWithSessionOptions & { tabs: TabsProvider },
  ): SharedSocket<ListenEvents, EmitEvents>;
  function connectWithSession<ListenEvents extends EventsMap = DefaultEventsMap, EmitEvents extends EventsMap = ListenEvents>(
    url?: string | ConnectWithSessionOptions,
    options?: ConnectWithSessionOptions,
  ): SessionSocket<ListenEvents, EmitEvents>;
  function connectWithSession<ListenEvents extends EventsMap = DefaultEventsMap, EmitEvents extends EventsMap = ListenEvents>(
    url?: string | ConnectWithSessionOptions,
    options?: ConnectWithSessionOptions,
  ): SessionSocket<ListenEvents, EmitEvents> | SharedSocket<ListenEvents, EmitEvents> {
    if (url && typeof url === 'object') [url, options] = [undefined, url];
    const checked = readOptions(options);
    if (checked._tabs) return checked._tabs.open(url, options!, connectWithSession);
    const socket = openSocket(lookup, url, checked);
    attach(socket, checked);
    return socket as SessionSocket<ListenEvents, EmitEvents>;
  }
  return connectWithSession;
}
