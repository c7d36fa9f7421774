/** The app and moves of the recovery tests (test/integration/recovery*.test.ts). */
import type { Server, Socket } from 'socket.io';
import type { Socket as ClientSocket } from 'socket.io-client';
import type { SessionServer } from '../../src/server/index.js';
import { connected, once } from './servers.js';

/** The app: `sconnection` joins `user:<name>` and registers a writing handler. */
export function recoveryApp(sio: SessionServer) {
  const seen: Array<{ id: string; recovered: boolean }> = [];
  sio.on('sconnection', (socket: Socket) => {
    seen.push({ id: socket.id, recovered: socket.recovered });
    void socket.join(`user:${socket.session.user as string}`);
    socket.on('write', (value: unknown, ack: (user: unknown) => void) => {
      (socket.session as unknown as Record<string, unknown>).written = value;
      ack(socket.session.user);
    });
  });
  return seen;
}

/** Connect, get one broadcast (so the client has an offset), then drop the transport: the server keeps the socket's state. */
export async function connectAndDrop(io: Server, client: ClientSocket): Promise<string> {
  await connected(client);
  return dropWithOffset(io, client);
}

/** A connected client gets one broadcast of `event` to user:alice (an offset to recover from), then its transport drops ("transport close", a recoverable reason); resolves once the server saw it too. */
export async function dropWithOffset(io: Server, client: ClientSocket, event = 'news'): Promise<string> {
  const news = once(client, event);
  io.to('user:alice').emit(event, 'first');
  await news;
  const id = client.id!;
  const dropped = Promise.all([once(client, 'disconnect'), once(io.of('/').sockets.get(id)!, 'disconnect')]);
  client.io.engine.close();
  await dropped;
  return id;
}
