/**
 * Cross-Site WebSocket Hijacking defence for cookie-authenticated handshakes: a browser
 * always sends Origin on a websocket upgrade and on cross-origin polling requests, so a page
 * of another site cannot ride the user's cookie. A handshake without Origin (a Node client,
 * a same-origin polling GET) carries no ambient browser credential from another site.
 * Origins are compared whole: scheme, host and port.
 */
import type { IncomingMessage } from 'node:http';
import type { ResolvedOptions } from './options.js';
import { describeThrown, SessionHandlerError, type SessionServerError } from '../errors.js';

type Origins = Pick<ResolvedOptions, 'origins'>;

/** Who hears what the app's `origins` function throws (the instance's `serror`). */
export interface OriginReporter {
  report(error: SessionServerError): void;
}

/**
 * The origin a request was addressed to. The scheme is the socket's (TLS or not), except that a
 * request without Origin whose Host is the host of an origin listed in `origins` (array form),
 * and of none with the socket's scheme, is taken to come to that origin: behind a TLS-terminating
 * proxy the server sees http, and the public `https://` origin listed there is the page's
 * (X-Forwarded-* headers are never trusted: any client can send them).
 */
export function ownOrigin(req: IncomingMessage, options?: Origins): string {
  const secure = (req.socket as { encrypted?: boolean } | undefined)?.encrypted === true;
  const plain = `${secure ? 'https' : 'http'}://${req.headers.host ?? 'localhost'}`;
  const listed = options?.origins;
  if (!Array.isArray(listed) || req.headers.origin !== undefined || req.headers.host === undefined) return plain;
  const own = originOf(plain);
  let other: string | undefined;
  for (const entry of listed) {
    const origin = originOf(entry);
    if (origin === undefined) continue;
    if (origin === own) return plain;
    // The Host as that origin's scheme reads it (a default port is dropped), compared with its host.
    const scheme = origin.slice(0, origin.indexOf(':'));
    if (other === undefined && originOf(`${scheme}://${req.headers.host}`) === origin) other = origin;
  }
  return other ?? plain;
}

/** `value` as an origin (`scheme://host[:port]`), or undefined when it is not an http(s) URL. */
function originOf(value: string): string | undefined {
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.origin : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Whether a page of `origin` may use this user's session here. An `origins` function that throws
 * (e.g. `new URL(origin)` on the opaque origin `null`) says no; what it threw is reported.
 */
export function isAllowedOrigin(origin: string, req: IncomingMessage, options: Origins, reporter?: OriginReporter): boolean {
  const { origins } = options;
  if (origins === undefined) {
    const own = req.headers.host === undefined ? undefined : originOf(ownOrigin(req));
    return own !== undefined && originOf(origin) === own;
  }
  if (typeof origins !== 'function') return origins.includes(origin);
  const report = (err: unknown) =>
    reporter?.report(new SessionHandlerError('handler-error', `the "origins" function threw (the origin counts as not allowed): ${describeThrown(err)}`, { cause: err }));
  try {
    const allowed: unknown = origins(origin, req);
    if (typeof (allowed as PromiseLike<unknown> | null)?.then === 'function') {
      // The check must answer at once: a promise is "not allowed", and what it rejects with is reported, never left unhandled.
      Promise.resolve(allowed).catch(report);
      report(new TypeError('the "origins" function returned a promise; it must return true or false at once'));
      return false;
    }
    return allowed === true;
  } catch (err) {
    report(err);
    return false;
  }
}

/** The Origin check of cookie handshakes and the token endpoint: no Origin header (not a browser page) passes. */
export function originAllowed(req: IncomingMessage, options: Origins, reporter?: OriginReporter): boolean {
  const { origin } = req.headers;
  return origin === undefined || isAllowedOrigin(origin, req, options, reporter);
}

/**
 * The page origin a browser request shows it comes from: its `Origin`; else, when it sends
 * `Sec-Fetch-Site`, its own origin (see {@link ownOrigin}) if that says same-origin (or `none`:
 * the user's own navigation) and nothing otherwise; else (an older browser) its `Referer`'s origin.
 * Undefined when it shows none of these (a page that hides its referrer).
 */
export function requesterOrigin(req: IncomingMessage, options?: Origins): string | undefined {
  const { origin, referer } = req.headers;
  if (origin !== undefined) return origin;
  // A browser that sends Sec-Fetch-Site says where the request comes from; only older ones need the Referer.
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined) return site === 'same-origin' || site === 'none' ? ownOrigin(req, options) : undefined;
  return typeof referer === 'string' ? originOf(referer) : undefined;
}

/** The audience a ticket must carry to be used on (or minted by) this request: the page's Origin, else the server's own (see {@link ownOrigin}). */
export function audienceOf(req: IncomingMessage, options?: Origins): string {
  return req.headers.origin ?? ownOrigin(req, options);
}
