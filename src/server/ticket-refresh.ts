/**
 * A ticket socket's authorization lasts as long as its ticket. The server tells the client when
 * that is; the client presents a new ticket over the live socket before then (no reconnect); a
 * socket that does not is told its session is invalid and disconnected.
 */
import { ErrorCode, CredentialEvents, type RefreshResult } from '../protocol.js';
import type { InvalidReason } from '../protocol.js';
import type { TicketSealer } from './tickets.js';
import { log } from './log.js';

/**
 * Time a refresh may take in flight after the ticket's expiry before the socket is ended. The
 * timer is the ticket's lifetime plus this: options.ts keeps `ticketTtl` small enough for Node's timers.
 */
export const GRACE_MS = 2000;

/** The longest wait of one of Node's timers (a longer one fires at once). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** What the ticket authorization needs from its socket. */
export interface TicketHolder {
  readonly sid: string;
  emit(event: string, payload: unknown): void;
  invalidate(reason: InvalidReason): void;
}

export class TicketAuthorization {
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly holder: TicketHolder,
    private readonly sealer: TicketSealer,
    /** The page origin the socket's tickets must be minted for. */
    private readonly audience: string,
    expiresAt: number,
  ) {
    this.until(expiresAt);
  }

  private until(expiresAt: number): { expiresAt: number; expiresIn: number } {
    const expiresIn = Math.max(0, expiresAt - Date.now());
    this.endAt(expiresAt + GRACE_MS);
    this.holder.emit(CredentialEvents.CREDENTIAL, { expiresAt, expiresIn });
    return { expiresAt, expiresIn };
  }

  /**
   * End the socket at `at` (epoch ms). A ticket may live longer than one of Node's timers can wait
   * (about 24.8 days: one minted elsewhere with the same secret): the timer is armed again until then.
   */
  private endAt(at: number): void {
    clearTimeout(this.timer);
    const wait = at - Date.now();
    this.timer = setTimeout(() => (wait > MAX_TIMER_MS ? this.endAt(at) : this.holder.invalidate('ticket-expired')), Math.min(Math.max(0, wait), MAX_TIMER_MS));
  }

  /** `sio-sessions:refresh` from the client: a new ticket of the same session, for the same page origin. */
  refresh(token: unknown, ack: unknown): void {
    if (typeof ack !== 'function') return;
    const opened = this.sealer.open(token, this.audience);
    let result: RefreshResult;
    if ('invalid' in opened) result = { ok: false, code: ErrorCode.SESSION_INVALID, reason: opened.invalid };
    else if (opened.sid !== this.holder.sid) result = { ok: false, code: ErrorCode.SESSION_INVALID, reason: 'ticket-session-mismatch' };
    else result = { ok: true, ...this.until(opened.expiresAt) };
    log.tickets('in-band refresh: %s', result.ok ? 'accepted' : result.reason);
    ack(result);
  }

  stop(): void {
    clearTimeout(this.timer);
  }
}
