/** Per-connection tests of changes made after a socket left (test/integration/per-connection.test.ts, test/fixtures/late-change-exit.ts). */
import type { Socket } from 'socket.io';
import { connectClient, once, type TestServer } from './servers.js';

/**
 * A `slow` handler that waits until the test calls `release()`, then runs `change` on the session
 * (after an await, as an async handler going on after its socket left); `done` once it ended.
 */
export function lateChanges(server: TestServer, change: (session: Socket['session']) => Promise<void>) {
  const sockets: Socket[] = [];
  let started!: () => void;
  const running = new Promise<void>((resolve) => (started = resolve));
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let finished!: () => void;
  const done = new Promise<void>((resolve) => (finished = resolve));
  server.sio.on('sconnection', (socket) => {
    sockets.push(socket);
    socket.on('slow', async () => {
      const { session } = socket; // (held across the await, as a handler's closure holds it)
      started();
      await gate;
      await change(session);
      finished();
    });
  });
  /** `client` (connected) starts the handler and leaves while it waits; resolves once the server saw it leave and its save ran. */
  const leaveMidHandler = async (client: ReturnType<typeof connectClient>) => {
    client.emit('slow');
    await running;
    const left = once(sockets.at(-1)!, 'disconnect');
    client.disconnect();
    await left;
    await server.sio.flush();
  };
  return { release, done, leaveMidHandler };
}

