/**
 * The token endpoint: hands the page a short-lived sealed ticket for the session its cookie
 * names, for sockets that cannot carry the cookie themselves. CORS is answered for allowed
 * origins only, so another site's page can never read a ticket minted with the user's cookie.
 * With `?renew=1` it also re-issues the session cookie with a fresh expiry (see RENEW_COOKIE).
 * Works as Express/Connect middleware and as a plain `http` request listener.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { SessionErrorData, Ticket } from '../../protocol.js';
import { SessionUnavailableError, type SessionError } from '../../errors.js';

export interface TokenEndpointOptions {
  /** The path it answers at; other paths go to `next`. @default '/socket.io-sessions/token' */
  path?: string;
}

/** What the endpoint needs from the sessions server. */
export interface TicketIssuer {
  /** Undefined when the request's origin may have a ticket; else the 403's body (naming the `origins` option). */
  originRefusal(req: IncomingMessage): SessionErrorData | undefined;
  /**
   * A ticket for the request's session and, when `renew` (and the request shows it comes from an
   * allowed origin), a `Set-Cookie` renewing its cookie. Throws a SessionError (invalid or unavailable).
   */
  issue(req: IncomingMessage, renew: boolean): Promise<{ ticket: Ticket; setCookie?: string }>;
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store', ...headers });
  res.end(JSON.stringify(body));
}

export function tokenEndpoint(issuer: TicketIssuer, path: string) {
  return (req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void): void => {
    const [reqPath, query = ''] = (req.url ?? '').split('?');
    if (reqPath !== path) {
      if (next) return next();
      return send(res, 404, { error: 'not found' });
    }
    const origin = req.headers.origin;
    const refusal = origin === undefined ? undefined : issuer.originRefusal(req);
    if (refusal) return send(res, 403, refusal);
    const cors: Record<string, string> = origin === undefined ? {} : { 'Access-Control-Allow-Origin': origin, 'Access-Control-Allow-Credentials': 'true', Vary: 'Origin, Cookie' };
    if (req.method === 'OPTIONS') {
      res.writeHead(204, { ...cors, 'Access-Control-Allow-Methods': 'GET, POST', 'Access-Control-Max-Age': '600' });
      return void res.end();
    }
    if (req.method !== 'GET' && req.method !== 'POST') return send(res, 405, { error: 'method not allowed' }, { Allow: 'GET, POST, OPTIONS' });
    // `?renew=1`: the socket kept the session alive longer than the browser's cookie; re-issue it.
    const renew = new URLSearchParams(query).get('renew') === '1';
    issuer.issue(req, renew).then(
      ({ ticket, setCookie }) => send(res, 200, ticket, setCookie ? { ...cors, 'Set-Cookie': setCookie } : cors),
      (err: SessionError) => {
        if (err instanceof SessionUnavailableError) send(res, 503, err.data, { ...cors, 'Retry-After': String(Math.ceil((err.data.retryAfter ?? 1000) / 1000)) });
        else if (err && 'data' in err) send(res, 401, err.data, cors);
        else if (next) next(err);
        else send(res, 500, { error: 'internal error' });
      },
    );
  };
}
