import net from 'node:net';
import { DevServerError } from './dev-server-errors';

/**
 * Ports the OS reports free on `host`, all distinct. All sockets stay open until every port is
 * known, so two asks cannot return the same port; another process may still take one before the
 * caller binds it, which is the accepted race of this technique.
 */
export async function freePorts(count: number, host = '127.0.0.1'): Promise<number[]> {
  const servers: net.Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < count; i++) {
      const server = net.createServer();
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, host, () => resolve());
      });
      const address = server.address();
      if (address === null || typeof address === 'string') throw new DevServerError(`cannot read the port bound on ${host}`);
      ports.push(address.port);
    }
    return ports;
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}
