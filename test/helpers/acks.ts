/**
 * Invariant 7 as the client sees it: what each emit got (its ack's arguments, or the notice among
 * them), and the ACK packets on the wire per ack id (socket.io-client drops a second ACK for one id
 * silently, so a duplicate is only seen there).
 */
import assert from 'node:assert/strict';
import type { Socket as ClientSocket } from 'socket.io-client';
import { noticeOf, type EmitNotice } from '../../src/protocol.js';

/** ACK packets per ack id received by `client`. */
export function wire(client: ClientSocket): { acks: Map<number, number>; duplicates(): number[] } {
  const acks = new Map<number, number>();
  client.io.on('packet', (packet: { type: number; id?: number }) => {
    if (packet.type === 3 && packet.id !== undefined) acks.set(packet.id, (acks.get(packet.id) ?? 0) + 1);
  });
  return { acks, duplicates: () => [...acks].filter(([, n]) => n > 1).map(([id]) => id) };
}

/** What one emit got: the ack's arguments (a notice is one of them). */
export interface Answer {
  args?: unknown[];
  notice?: EmitNotice;
  /** Epoch ms it came. */
  at?: number;
}

export function emit(client: ClientSocket, event: string, ...args: unknown[]): Answer {
  const answer: Answer = {};
  client.emit(event, ...args, (...got: unknown[]) => {
    assert.equal(answer.args, undefined, `'${event}' answered twice`);
    answer.args = got;
    answer.notice = noticeOf(got);
    answer.at = Date.now();
  });
  return answer;
}

