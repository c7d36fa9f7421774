/**
 * A TCP proxy on loopback that delays every chunk by `oneWayMs` in each direction, so a round
 * trip costs at least 2 x oneWayMs as on a real network, where an overlapped request can hide
 * behind another one (on bare loopback a "round trip" is CPU time, which nothing can overlap).
 */
import { createServer, connect, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

export async function latencyProxy(targetPort: number, oneWayMs: number): Promise<{ port: number; close(): void }> {
  const open = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1');
    for (const s of [client, upstream]) {
      open.add(s);
      s.once('close', () => open.delete(s));
    }
    const pipe = (from: Socket, to: Socket) => {
      from.on('data', (chunk) => setTimeout(() => to.writable && to.write(chunk), oneWayMs));
      from.on('end', () => setTimeout(() => to.end(), oneWayMs));
      from.on('error', () => to.destroy());
    };
    pipe(client, upstream);
    pipe(upstream, client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close() {
      server.close();
      for (const s of open) s.destroy(); // keep-alive connections would hold the process open
    },
  };
}
