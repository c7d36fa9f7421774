import type { Socket } from 'socket.io';
import type { InvalidReason } from '../protocol.js';
import type { BoundSession } from './bound-session.js';
import type { ResolvedOptions } from './options.js';

/** What the save modes need from the sessions server: one place that turns outcomes into actions. */
export interface ModeHost {
  readonly options: ResolvedOptions;
  /**
   * Run `task` in the session's queue (one at a time per session on this node). A returned reason
   * invalidates the socket; a store failure is reported and the client told it is unavailable.
   * Resolves to true when the task completed without either.
   */
  runExclusive(bound: BoundSession, task: () => Promise<InvalidReason | undefined>): Promise<boolean>;
  /** Tell the socket its session is invalid (event, `sinvalid`), then disconnect it. Once per socket. */
  invalidate(bound: BoundSession, reason: InvalidReason): void;
  /** Report an error that is not the client's to handle (store failure, throwing handler). */
  report(error: unknown, socket?: Socket): void;
}
