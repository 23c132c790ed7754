import type { Server } from 'node:http';
import { isIPv4, isIPv6, type AddressInfo } from 'node:net';
import { Server as TlsServer } from 'node:tls';

/**
 * Starts an HTTP or HTTPS server on `host` (loopback by default) and returns its base URL, e.g.
 * `http://127.0.0.1:8787`, or `https://…` for a `node:https` server.
 */
export async function listen(server: Server | TlsServer, host = '127.0.0.1', port = 0): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const scheme = server instanceof TlsServer ? 'https' : 'http';
  return `${scheme}://${host.includes(':') ? `[${host}]` : host}:${address.port}`;
}

/**
 * Whether a listen address is reachable from this machine only: 127.0.0.0/8, ::1 (also as
 * `::ffff:127.x.x.x`) or `localhost`. Anything else, `0.0.0.0` and `::` included, serves the network.
 * A hostname other than `localhost` counts as not loopback: what it resolves to can change.
 */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (h === 'localhost' || h === 'localhost.') return true;
  if (isIPv4(h)) return h.startsWith('127.');
  if (!isIPv6(h)) return false;
  const mapped = /^(?:0{0,4}:){0,5}:?ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h)?.[1];
  if (mapped) return isIPv4(mapped) && mapped.startsWith('127.');
  // Every spelling of ::1 (0:0:0:0:0:0:0:1, ::0:1) expands to seven zero groups and a one.
  return expandIPv6(h) === '0000:0000:0000:0000:0000:0000:0000:0001';
}

function expandIPv6(address: string): string {
  const [head = '', tail] = address.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const missing = tail === undefined ? 0 : 8 - left.length - right.length;
  return [...left, ...Array<string>(missing).fill('0'), ...right].map((g) => g.padStart(4, '0')).join(':');
}
