import type { Socket } from 'socket.io';
import type { InvalidReason } from '../protocol.js';
import type { ResolvedOptions } from './options.js';
import type { StoreHub } from './store.js';
import type { TicketSealer } from './tickets.js';
import type { Wheel } from './wheel.js';
import type { SessionRuntime } from './runtime/index.js';
import type { Advice } from './advice.js';
import type { SessionServerError } from '../errors.js';

/** What the parts of one `sessions()` instance share: its options, the store hub, its events. */
export interface ServerContext {
  readonly options: ResolvedOptions;
  readonly hub: StoreHub;
  /** Present when tickets are possible (a secret was given). */
  readonly sealer: TicketSealer | undefined;
  /** `serror` (console.error when nobody listens): not the client's to fix. */
  report(error: SessionServerError, socket?: Socket): void;
  /** `sinvalid`. */
  invalid(socket: Socket, reason: InvalidReason): void;
  /** Set-up mistakes named with their fix: the refused client's hint, a server line once per cause. */
  readonly advice: Advice;
  /** Revalidates the sessions of its sockets every `revalidateInterval` (absent when that is 0). */
  readonly wheel: Wheel<SessionRuntime> | undefined;
  /** A socket of the instance started (+1) or stopped (-1): after `close()`, the last one to stop gives back the store. */
  tracked(delta: 1 | -1): void;
}
