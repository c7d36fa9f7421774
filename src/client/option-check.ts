/**
 * The client's option check: a key that is not an option throws `SessionOptionsError` naming the
 * nearest option (`connectWithSession() has no option "maxReload" (did you mean "maxReloads"?)`),
 * as `sessions()` does on the server; so do a `url` that is no string, an unknown `onInvalid`, and
 * socket.io-client's `retries` (the SDK cannot keep its queue from resending an emit under the next
 * session). It looks at `connectWithSession`'s options (the SDK's and
 * socket.io-client's own), `retry`, `on`, and the options `tickets()` and `sharedTabs()` were made
 * with (they keep them on the provider as `options`), when `connectWithSession` is called.
 *
 * It is not part of the core (3 KB budget): the npm entry wraps the core's `connectWithSession`
 * with it (index.ts), the served script checks in its second part (tickets-umd.ts), the CDN files
 * include it; the `production` export condition and dist/client/index.min.js leave it out.
 */
import { unknownOption } from '../options-check.js';
import { SessionOptionsError } from './core.js';
import type { ConnectWithSessionOptions } from './connect.js';

/**
 * socket.io-client's own options (its `ManagerOptions & SocketOptions`, engine.io's included), which
 * `connectWithSession` passes through. A unit test compares the list with socket.io-client's types.
 */
export const SOCKET_IO_CLIENT_OPTIONS = /* @__PURE__ */ (
  'forceNew multiplex path reconnection reconnectionAttempts reconnectionDelay reconnectionDelayMax randomizationFactor timeout autoConnect parser ' +
  'host hostname secure port query agent upgrade forceBase64 timestampParam timestampRequests transports transportImplementations tryAllTransports ' +
  'rememberUpgrade requestTimeout transportOptions pfx key passphrase cert ca ciphers rejectUnauthorized extraHeaders withCredentials ' +
  'closeOnBeforeunload useNativeTimers autoUnref perMessageDeflate addTrailingSlash protocols auth retries ackTimeout'
).split(' ');

/** The SDK's own options of `connectWithSession`. */
const SDK_OPTIONS = ['credential', 'onInvalid', 'maxReloads', 'reloadWindow', 'retry', 'on', 'tabs', ...SOCKET_IO_CLIENT_OPTIONS];
const RETRY_OPTIONS = ['min', 'max'];
const SDK_EVENTS = ['state', 'invalid', 'unavailable', 'fatal'];
const TICKET_OPTIONS = ['source', 'tokenUrl', 'scriptUrl', 'retry'];
const TABS_OPTIONS = ['name'];

/** Throws unless `options` is an object whose keys are all in `known`. */
function check(options: unknown, known: string[], where: string): void {
  const message =
    typeof options === 'object' && options !== null
      ? unknownOption(options, known, where)
      : `socket.io-sessions: ${where} must be an object ({ ${known.join(', ')} }), got ${String(options)}`;
  if (message) throw new SessionOptionsError(message);
}

/** Throws for a value `name` cannot take (`why`: what goes wrong with it). */
function invalid(name: string, value: unknown, why = ''): never {
  throw new SessionOptionsError(`socket.io-sessions: invalid ${name}: ${String(value)}${why}`);
}

/** Checks the options of a `connectWithSession(url?, options?)` call (either argument may hold them). */
export function checkConnectOptions(url: unknown, options?: ConnectWithSessionOptions): void {
  if (typeof url === 'object' && url !== null) options = url as ConnectWithSessionOptions;
  else if (url !== undefined && typeof url !== 'string') invalid('url', url);
  if (options == null) return;
  check(options, SDK_OPTIONS, 'connectWithSession()');
  const { retry, on, credential, tabs, onInvalid, retries } = options;
  if (onInvalid !== undefined && onInvalid !== 'reload' && onInvalid !== 'none' && typeof onInvalid !== 'function') invalid('onInvalid', onInvalid);
  // socket.io-client keeps such emits in a private queue and sends them again after a reconnect, where the SDK
  // cannot drop them when the session ended (invariant 10).
  if (retries) invalid('retries', retries, ' (its queue would resend an emit answered session-ended under the next session)');
  if (retry !== undefined) check(retry, RETRY_OPTIONS, '"retry" of connectWithSession()');
  if (on !== undefined) {
    check(on, SDK_EVENTS, '"on" of connectWithSession()');
    // (The core skips an unset one; any other value that is no function would throw at each event.)
    for (const [event, listener] of Object.entries(on)) if (listener != null && typeof listener !== 'function') invalid(`on.${event}`, listener);
  }
  const ticketOptions = (credential as { options?: { retry?: unknown } } | undefined)?.options;
  if (ticketOptions !== undefined) {
    check(ticketOptions, TICKET_OPTIONS, 'tickets()');
    if (ticketOptions.retry !== undefined) check(ticketOptions.retry, RETRY_OPTIONS, '"retry" of tickets()');
  }
  const tabsOptions = (tabs as { options?: unknown } | undefined)?.options;
  if (tabsOptions !== undefined) check(tabsOptions, TABS_OPTIONS, 'sharedTabs()');
}

/** `connectWithSession` that checks its options first. */
export function withOptionCheck<Connect extends (url?: any, options?: any) => unknown>(connect: Connect): Connect {
  return ((url?: unknown, options?: ConnectWithSessionOptions) => {
    checkConnectOptions(url, options);
    return connect(url, options);
  }) as Connect;
}
