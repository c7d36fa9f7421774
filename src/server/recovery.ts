/**
 * socket.io's `connectionStateRecovery` with `skipMiddlewares: true` connects a recovered socket
 * (a new Socket object with the old id, rooms and `data`, but none of the old listeners) without
 * running namespace middlewares, so no handshake bound it. Its session is resolved at `connection`
 * from its handshake's credential, and the packets it sends meanwhile are held until it is bound
 * (or answered with a notice when it is refused), so no handler ever runs without its session.
 */
import type { Socket } from 'socket.io';
import { ErrorCode, Events, NOTICE_FIELD, SESSION_ENDED, type EmitNotice } from '../protocol.js';
import { SessionError } from '../errors.js';
import { log } from './log.js';
import { noticePacket, QUEUE_FULL_RETRY_MS } from './runtime/events.js';

type Packet = unknown[];
type Next = (err?: Error) => void;

/**
 * Holds a recovered socket's packets (a socket middleware) until {@link PacketHold.release} or {@link PacketHold.refuse}.
 * A held event with an ack gets SESSION_ENDED when its socket is refused: its session is not there.
 */
export class PacketHold {
  private held: Array<[Packet, Next]> | undefined = [];
  private open = false;

  /** `limit`: packets held at most (`maxPendingEvents`); one more is answered queue-full at once, not kept. */
  constructor(socket: Socket, limit: number) {
    socket.use((packet, next) => {
      if (this.held && this.held.length >= limit) noticePacket(packet, 'queue-full', { retryAfter: QUEUE_FULL_RETRY_MS });
      else if (this.held) this.held.push([packet, next]);
      else if (this.open) next();
      // refused: dropped (the socket is being disconnected)
    });
  }

  /**
   * Bound: the held packets go on in order, each through `filter` (the binding's packet middleware,
   * which socket.io had not yet seen when they arrived); later ones pass straight on.
   */
  release(filter: (packet: Packet, next: Next) => void): void {
    const held = this.take();
    this.open = true;
    for (const [packet, next] of held) filter(packet, next);
  }

  /** Refused: every held event that asked for an ack gets one notice instead (invariant 7). */
  refuse(notice: EmitNotice = SESSION_ENDED): void {
    for (const [packet] of this.take()) {
      const ack = packet[packet.length - 1];
      if (typeof ack === 'function') ack({ [NOTICE_FIELD]: notice });
    }
  }

  private take(): Array<[Packet, Next]> {
    const held = this.held ?? [];
    this.held = undefined;
    return held;
  }
}

/**
 * A recovered socket whose credential no longer gives a session: its held events are answered,
 * the client is told (`invalid`, or `unavailable` so the SDK retries later), then the socket is
 * disconnected, which makes it leave its restored rooms.
 */
export function refuseRecovered(socket: Socket, hold: PacketHold, err: unknown): void {
  const data = err instanceof SessionError ? err.data : undefined;
  const unavailable = data?.code === ErrorCode.SESSION_UNAVAILABLE;
  hold.refuse(unavailable ? { code: ErrorCode.SESSION_UNAVAILABLE, reason: data!.reason as EmitNotice['reason'], retryAfter: data!.retryAfter } : SESSION_ENDED);
  log.handshake('recovered socket %s refused: %s', socket.id, (err as Error)?.message);
  if (!socket.connected) return;
  if (data?.code === ErrorCode.SESSION_INVALID) tellAndDisconnect(socket, Events.INVALID, data);
  else if (unavailable) tellAndDisconnect(socket, Events.UNAVAILABLE, data);
  else socket.disconnect();
}

/**
 * The last word before a server-side disconnect. With connectionStateRecovery, `socket.emit` goes
 * through the adapter, which a cluster adapter (redis-streams) delivers only after a Redis round
 * trip, after the disconnect: a `local` broadcast to the socket's own room is delivered at once.
 */
export function tellAndDisconnect(socket: Socket, event: string, payload: unknown): void {
  socket.nsp.local.to(socket.id).emit(event, payload);
  socket.disconnect();
}
