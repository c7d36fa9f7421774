/**
 * Per-connection mode (the default): the session loaded at connect is the one handlers use;
 * a change is saved at most `saveDelay` ms after the event that made it (so a crash loses at
 * most that window), and once more at disconnect. A socket that changed nothing writes nothing.
 */
import type { BoundSession } from './bound-session.js';
import type { ModeHost } from './mode-host.js';

/** Returns `changed()`, to call after anything that may have changed the session, and `stop()`. */
export function savePerConnection(bound: BoundSession, host: ModeHost) {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const save = () => {
    timer = undefined;
    void host.runExclusive(bound, () => bound.saveChanges());
  };
  // Not reset by later events: under steady traffic a change still lands within saveDelay.
  const changed = () => {
    timer ??= setTimeout(save, host.options.saveDelay);
  };
  bound.socket.use((_packet, next) => {
    next();
    changed();
  });
  return {
    changed,
    stop() {
      clearTimeout(timer);
      timer = undefined;
    },
  };
}
