/**
 * A ticket socket's authorization lasts as long as its ticket. The server tells the client when
 * that is; the client presents a new ticket over the live socket before then (no reconnect); a
 * socket that does not is told its session is invalid and disconnected.
 */
import { ErrorCode, CredentialEvents, type RefreshResult } from '../protocol.js';
import type { BoundSession } from './bound-session.js';
import type { ModeHost } from './mode-host.js';
import type { TicketSealer } from './tickets.js';
import { audienceOf } from './origin.js';

/** Time a refresh may take in flight after the ticket's expiry before the socket is ended. */
const GRACE_MS = 2000;

export function keepTicketAlive(bound: BoundSession, host: ModeHost, sealer: TicketSealer, expiresAt: number): () => void {
  const { socket } = bound;
  const audience = audienceOf(socket.request);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const authorizeUntil = (until: number) => {
    clearTimeout(timer);
    const expiresIn = Math.max(0, until - Date.now());
    timer = setTimeout(() => host.invalidate(bound, 'ticket-expired'), expiresIn + GRACE_MS);
    socket.emit(CredentialEvents.CREDENTIAL, { expiresAt: until, expiresIn });
    return { expiresAt: until, expiresIn };
  };
  authorizeUntil(expiresAt);
  socket.on(CredentialEvents.REFRESH, async (token: unknown, ack: unknown) => {
    if (typeof ack !== 'function') return;
    const opened = await sealer.open(token, audience);
    let result: RefreshResult;
    if ('invalid' in opened) result = { ok: false, code: ErrorCode.SESSION_INVALID, reason: opened.invalid };
    else if (opened.sid !== bound.sid) result = { ok: false, code: ErrorCode.SESSION_INVALID, reason: 'ticket-session-mismatch' };
    else result = { ok: true, ...authorizeUntil(opened.expiresAt) };
    ack(result);
  });
  return () => clearTimeout(timer);
}
