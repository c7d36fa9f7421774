/**
 * socket.io-sessions/tickets: session tickets for `connectWithSession`, for when the session
 * cookie cannot travel (a socket server on another origin with third-party cookies blocked, Node
 * clients, workers). Every (re)connect gets a valid ticket; the live socket presents a new one
 * before the current one runs out (in-band, no reconnect); failures of the source are retried
 * with backoff while the socket carries on.
 *
 * @example
 * ```ts
 * import { connectWithSession } from 'socket.io-sessions';
 * import { tickets } from 'socket.io-sessions/tickets';
 * const socket = connectWithSession('https://rt.example.com', {
 *   credential: tickets({ tokenUrl: '/socket.io-sessions/token' }),  // fetched at once, with cookies
 * });
 * ```
 */
import type { Socket } from 'socket.io-client';
import { ErrorCode, CredentialEvents, TICKET_AUTH_FIELD, type CredentialExpiry, type RefreshResult } from '../protocol.js';
import { backoff } from './backoff.js';
import { createCredentials, defaultScriptUrl, type CredentialSource } from './credentials.js';
import type { CredentialProvider, UnavailableContext } from './connect.js';

export interface TicketOptions {
  /**
   * `'embedded'`: the ticket the served `/socket.io/socket.io-sessions.js` (or a
   * `<meta name="socket.io-sessions-ticket" content="<ticket JSON>">`) put in the page;
   * `'fetch'`: `tokenUrl`; a function returning a token or `{ token, expiresIn }`;
   * `'cookie'`: no ticket. `'auto'` takes the embedded ticket while fresh, else `tokenUrl` when
   * given, else the cookie. A stale embedded ticket (a cached page or script, another session) is
   * replaced from `tokenUrl`, or by re-requesting the served script with a cache-busting parameter.
   * @default 'auto'
   */
  source?: CredentialSource;
  /**
   * The token endpoint (`sio.tokenHandler()` on the server), fetched with credentials. Also asked
   * (`?renew=1`) to re-issue the session cookie when the server says the socket outlived it (else
   * the served script is); for that alone, with cookies: `tickets({ source: 'cookie', tokenUrl })`.
   */
  tokenUrl?: string;
  /** The served script. @default the `src` of the served add-on's script tag, when it loaded this code */
  scriptUrl?: string;
  /**
   * Backoff (full jitter) between tries of a failing source (network, 5xx), in ms.
   * @default { min: 1000, max: 30000 }
   */
  retry?: { min?: number; max?: number };
}

/**
 * Every page of this origin that loads the tickets part says so here: its response may have set
 * another session cookie. BroadcastChannel is per origin, so no other site can post to it.
 */
const PAGE_LOADS = 'socket.io-sessions page loads';
/** After a page load, the ticket socket checks its session once this burst of loads is over. */
const FOLLOW_MS = 500;
const pageLoads = () => (typeof document == 'object' && typeof BroadcastChannel == 'function' ? new BroadcastChannel(PAGE_LOADS) : undefined);

/**
 * Another tab's page load may have changed the browser's cookie: `check` (a renewal: a fresh ticket
 * names the cookie's session, and the server answers ticket-session-mismatch if it is not the
 * socket's) once per burst of loads, when connected. Returns a disposer.
 */
function followPageLoads(socket: Socket, check: () => unknown): () => void {
  // Opened once attached, so it never hears this page's own announcement (made before), and closed when detached.
  const loads = pageLoads();
  if (!loads) return () => {};
  let due: ReturnType<typeof setTimeout> | 0 | undefined;
  const follow = () => due === 0 && socket.connected && ((due = undefined), check());
  loads.onmessage = () => (due ??= setTimeout(() => ((due = 0), follow()), FOLLOW_MS));
  // A handshake sent before the page load may have carried the old cookie: check once connected.
  socket.on('connect', follow);
  return () => {
    clearTimeout(due || undefined);
    loads.close();
    socket.off('connect', follow);
  };
}

/** Ticket credentials for `connectWithSession(url, { credential: tickets(options) })`. One per socket. */
export function tickets(options: TicketOptions = {}): CredentialProvider {
  const { source = 'auto', tokenUrl, scriptUrl, retry } = options;
  const min = retry?.min ?? 1000;
  const max = Math.max(min, retry?.max ?? 30_000);
  let report: (ctx: UnavailableContext) => void = () => {};
  // No payload: a page load tells the other tabs nothing but that it happened (the message is
  // delivered to the channels open now, even though this one closes at once).
  const announce = pageLoads();
  announce?.postMessage(0);
  announce?.close();
  const credentials = createCredentials({
    source,
    tokenUrl,
    scriptUrl,
    wait(step) {
      const retryIn = backoff(step, min, max);
      report({ code: ErrorCode.SESSION_UNAVAILABLE, reason: 'store-error', phase: 'credential', retryIn });
      return new Promise((resolve) => setTimeout(resolve, retryIn));
    },
  });
  /** socket.io-client's calls of `auth` so far: only the newest is answered (see `auth`). */
  let asked = 0;
  return {
    options, // for connectWithSession's option check
    auth(base, cb) {
      // socket.io-client asks at each transport it opens, and sends a CONNECT on the current transport when answered:
      // a call made for a transport that dropped while the ticket was awaited answering too would send a second one
      // (two server sockets for one page). Only the newest call is answered.
      const call = ++asked;
      credentials.get().then(
        (held) => call === asked && cb(held ? { ...base, [TICKET_AUTH_FIELD]: held.token } : base),
        // No session: an empty ticket, never the cookie (a page of another origin would be refused as
        // ORIGIN_NOT_ALLOWED); the server's answer (invalid, 'no-session-id') starts the invalid-session policy.
        () => call === asked && cb({ ...base, [TICKET_AUTH_FIELD]: '' }),
      );
    },
    discard: credentials.discard,
    ready: () => credentials.get().catch(() => undefined),
    attach(socket: Socket, unavailable) {
      report = unavailable;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const refresh = async () => {
        const held = await credentials.renew().catch(() => undefined);
        if (!held || !socket.connected) return;
        const result: RefreshResult | undefined = await socket.timeout(10_000).emitWithAck(CredentialEvents.REFRESH, held.token).catch(() => undefined);
        if (!result || result.ok) return;
        // The page's session changed (a login, or another tab's): reconnect with its ticket now, as after a login.
        if (result.reason === 'ticket-session-mismatch') return void socket.disconnect().connect();
        // Refused: the server ends the socket when the old ticket runs out, and the policy takes over.
        credentials.discard();
      };
      const onCredential = ({ expiresIn }: CredentialExpiry) => {
        credentials.expiresIn(expiresIn);
        clearTimeout(timer);
        const renewIn = credentials.renewIn();
        if (renewIn !== undefined) timer = setTimeout(refresh, renewIn);
      };
      // A closed socket has nothing to refresh; the next connect brings a new expiry.
      const onDisconnect = () => clearTimeout(timer);
      // The socket kept the session alive past the browser's cookie: have the endpoint re-issue it.
      const onRenewCookie = () => {
        const url = tokenUrl ?? scriptUrl ?? defaultScriptUrl;
        if (url) fetch(`${url}${url.includes('?') ? '&' : '?'}renew=1`, { credentials: 'include', cache: 'no-store' }).catch(() => undefined);
      };
      socket.on(CredentialEvents.CREDENTIAL, onCredential);
      socket.on(CredentialEvents.RENEW_COOKIE, onRenewCookie);
      socket.on('disconnect', onDisconnect);
      const unfollow = followPageLoads(socket, refresh);
      // Start now, overlapped with the transport handshake; `auth` awaits the same promise.
      credentials.get().catch(() => undefined);
      return () => {
        clearTimeout(timer);
        unfollow();
        socket.off(CredentialEvents.CREDENTIAL, onCredential);
        socket.off(CredentialEvents.RENEW_COOKIE, onRenewCookie);
        socket.off('disconnect', onDisconnect);
      };
    },
  };
}

export type { CredentialSource, CredentialResult } from './credentials.js';
