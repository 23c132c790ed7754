import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Starts an HTTP server on `host` (loopback by default) and returns its base URL, e.g. `http://127.0.0.1:8787`. */
export async function listen(server: Server, host = '127.0.0.1', port = 0): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  return `http://${host.includes(':') ? `[${host}]` : host}:${address.port}`;
}
