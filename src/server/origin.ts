/**
 * Cross-Site WebSocket Hijacking defence for cookie-authenticated handshakes: a browser
 * always sends Origin on a websocket upgrade and on cross-origin polling requests, so a page
 * of another site cannot ride the user's cookie. A handshake without Origin (a Node client,
 * a same-origin polling GET) carries no ambient browser credential from another site.
 */
import type { IncomingMessage } from 'node:http';
import type { ResolvedOptions } from './options.js';

/** The Origin names this server itself: same scheme (from the TLS socket), host and port. */
function sameOrigin(origin: string, req: IncomingMessage): boolean {
  if (!req.headers.host) return false;
  try {
    return new URL(origin).origin === new URL(ownOrigin(req)).origin;
  } catch {
    return false;
  }
}

export function originAllowed(req: IncomingMessage, options: Pick<ResolvedOptions, 'origins'>): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  const { origins } = options;
  if (origins === undefined) return sameOrigin(origin, req);
  if (typeof origins === 'function') return origins(origin, req) === true;
  return origins.includes(origin);
}

/** The origin a request was addressed to (scheme from the TLS socket; put a TLS-terminating proxy's origin in `origins`). */
export function ownOrigin(req: IncomingMessage): string {
  const secure = (req.socket as { encrypted?: boolean } | undefined)?.encrypted === true;
  return `${secure ? 'https' : 'http'}://${req.headers.host ?? 'localhost'}`;
}

/** The audience a ticket must carry to be used on (or minted by) this request: the page's Origin, else the server's own. */
export function audienceOf(req: IncomingMessage): string {
  return req.headers.origin ?? ownOrigin(req);
}
