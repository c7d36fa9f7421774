/**
 * Cross-Site WebSocket Hijacking defence for cookie-authenticated handshakes: a browser
 * always sends Origin on a websocket upgrade and on cross-origin polling requests, so a page
 * of another site cannot ride the user's cookie. A handshake without Origin (a Node client,
 * a same-origin polling GET) carries no ambient browser credential from another site.
 * Origins are compared whole: scheme, host and port.
 */
import type { IncomingMessage } from 'node:http';
import type { ResolvedOptions } from './options.js';

type Origins = Pick<ResolvedOptions, 'origins'>;

/** The origin a request was addressed to (scheme from the TLS socket; put a TLS-terminating proxy's origin in `origins`). */
export function ownOrigin(req: IncomingMessage): string {
  const secure = (req.socket as { encrypted?: boolean } | undefined)?.encrypted === true;
  return `${secure ? 'https' : 'http'}://${req.headers.host ?? 'localhost'}`;
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

/** Whether a page of `origin` may use this user's session here. */
export function isAllowedOrigin(origin: string, req: IncomingMessage, { origins }: Origins): boolean {
  if (origins === undefined) {
    const own = req.headers.host === undefined ? undefined : originOf(ownOrigin(req));
    return own !== undefined && originOf(origin) === own;
  }
  if (typeof origins === 'function') return origins(origin, req) === true;
  return origins.includes(origin);
}

/** The Origin check of cookie handshakes and the token endpoint: no Origin header (not a browser page) passes. */
export function originAllowed(req: IncomingMessage, options: Origins): boolean {
  const { origin } = req.headers;
  return origin === undefined || isAllowedOrigin(origin, req, options);
}

/**
 * The page origin a browser request shows it comes from: its `Origin`; else, when it sends
 * `Sec-Fetch-Site`, its own origin if that says same-origin (or `none`: the user's own navigation)
 * and nothing otherwise; else (an older browser) its `Referer`'s origin. Undefined when it shows
 * none of these (a page that hides its referrer).
 */
export function requesterOrigin(req: IncomingMessage): string | undefined {
  const { origin, referer } = req.headers;
  if (origin !== undefined) return origin;
  // A browser that sends Sec-Fetch-Site says where the request comes from; only older ones need the Referer.
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined) return site === 'same-origin' || site === 'none' ? ownOrigin(req) : undefined;
  return typeof referer === 'string' ? originOf(referer) : undefined;
}

/** The audience a ticket must carry to be used on (or minted by) this request: the page's Origin, else the server's own. */
export function audienceOf(req: IncomingMessage): string {
  return req.headers.origin ?? ownOrigin(req);
}
