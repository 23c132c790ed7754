import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { isIPv6 } from 'node:net';
import { identityKey } from '../../governance/signing/identity-folding';

export interface LoginLimits {
  /**
   * Failed logins for one username from one client address (IPv6: one /64) within `windowMs`
   * before that address may not try that username. Default 5.
   */
  perUserAndAddress?: number;
  /**
   * Failed logins from one client address, whatever the usernames, within `windowMs` before the
   * address may not try any. Default 20: people behind one NAT or proxy share an address.
   */
  perAddress?: number;
  /**
   * Failed logins for one username from browsers that have not signed in as it before, all
   * addresses together, within `windowMs` before such browsers may not try it. Default 50: what
   * caps guessing from many addresses, high enough that a few addresses cannot reach it; the
   * person still gets in from a browser she signed in with before (`perDevice`).
   */
  perUser?: number;
  /** Failed logins in a browser that signed in as that username before (its device cookie) before that browser waits too. Default 5. */
  perDevice?: number;
  /** Default 15 minutes. */
  windowMs?: number;
  /** How many counts (usernames, addresses, pairs, devices) are tracked at most; the oldest are forgotten first. Default 10,000. */
  maxTracked?: number;
}

/**
 * Why a login may not be tried now: `user-address` this username from this address, `address`
 * any username from this address, `user` this username from a browser it never signed in with,
 * `device` this username in this browser.
 */
export type LoginScope = 'user-address' | 'address' | 'user' | 'device';
export type LoginCheck = { allowed: true } | { allowed: false; retryAt: number; scope: LoginScope };

const DEFAULTS = { perUserAndAddress: 5, perAddress: 20, perUser: 50, perDevice: 5, windowMs: 15 * 60_000, maxTracked: 10_000 };

/**
 * Counts failed password logins, in memory, and refuses logins that failed too often within the
 * window (sliding: a failure stops counting `windowMs` after it happened). Check before verifying
 * a password: a refused attempt costs no password check and says nothing about the password.
 *
 * Failures are counted where the guesser is, so that guesses cannot lock the person out: per
 * username and client address, per address, and per username for browsers that never signed in
 * as it. A browser that did (it holds a device token, `issueDevice`, the inbox's `warden_device`
 * cookie, as OWASP's "device cookies" describe) is judged by its own failures only: someone
 * guessing alice's password from anywhere, even from alice's own address, cannot keep alice out
 * of the browser she uses. What stays possible to someone with many addresses: making new
 * browsers wait for alice's account (`perUser`), which is what keeps their guessing limited.
 *
 * Bounded: at most `maxTracked` counts; when full, counts whose failures have all expired go
 * first, then the least recently failed. A restart forgets every count and every device token,
 * like sessions.
 */
export class LoginLimiter {
  private readonly limits: Required<LoginLimits>;
  /** Key → times of its recent failures, oldest first; Map order is least recently failed first. */
  private readonly failures = new Map<string, number[]>();
  private readonly deviceKey = randomBytes(32);

  constructor(
    limits: LoginLimits = {},
    private readonly now: () => number = Date.now,
  ) {
    this.limits = { ...DEFAULTS, ...limits };
    for (const [name, value] of Object.entries(this.limits)) {
      if (!Number.isInteger(value) || value < 1) throw new RangeError(`login limit ${name} must be a whole number of at least 1, not ${value}`);
    }
  }

  /**
   * Whether a login for `username` from `address` may be tried now, and if not, from when.
   * `device`: what `deviceOf` made of the browser's device token for this username, or null.
   */
  check(username: string, address: string, device: string | null): LoginCheck {
    const now = this.now();
    const limits: [LoginScope, string, number][] = device
      ? [['device', device, this.limits.perDevice]]
      : [
          ['user-address', pairKey(username, address), this.limits.perUserAndAddress],
          ['address', addressKey(address), this.limits.perAddress],
          ['user', userKey(username), this.limits.perUser],
        ];
    let refused: LoginCheck = { allowed: true };
    for (const [scope, key, max] of limits) {
      const retryAt = this.retryAt(key, max, now);
      if (retryAt !== null && (refused.allowed || retryAt > refused.retryAt)) refused = { allowed: false, retryAt, scope };
    }
    return refused;
  }

  /**
   * Records a wrong username or password; returns the failures of this username from this client
   * (this address, or this device) within the window.
   */
  recordFailure(username: string, address: string, device: string | null): number {
    const now = this.now();
    if (device) return this.add(device, this.limits.perDevice, now);
    this.add(addressKey(address), this.limits.perAddress, now);
    this.add(userKey(username), this.limits.perUser, now);
    return this.add(pairKey(username, address), this.limits.perUserAndAddress, now);
  }

  /**
   * A successful login clears the count of this username from this client: the device's when the
   * browser holds one, else the username's at this address. Never the address's (one right
   * password must not reopen a spraying address) nor the username's (a guesser elsewhere would
   * start over), and a device's success leaves its address's count alone (someone else there may
   * be the one guessing).
   */
  recordSuccess(username: string, address: string, device: string | null): void {
    this.failures.delete(device ?? pairKey(username, address));
  }

  /** A device token for a browser that has just signed in as `username`: random, keyed to this limiter, bound to the username. */
  issueDevice(username: string): string {
    const nonce = randomBytes(16).toString('base64url');
    return `${nonce}.${this.deviceMac(username, nonce)}`;
  }

  /** The device a token stands for when this limiter issued it for `username` (compared as identities), else null. */
  deviceOf(token: string | undefined, username: string): string | null {
    const [nonce, mac, ...rest] = (token ?? '').split('.');
    if (!nonce || !mac || rest.length > 0) return null;
    const expected = Buffer.from(this.deviceMac(username, nonce));
    const given = Buffer.from(mac);
    return given.length === expected.length && timingSafeEqual(given, expected) ? `device:${nonce}` : null;
  }

  /** How many counts are tracked now. */
  get size(): number {
    return this.failures.size;
  }

  private deviceMac(username: string, nonce: string): string {
    return createHmac('sha256', this.deviceKey).update(`device\0${identityKey(username)}\0${nonce}`).digest('base64url');
  }

  private recent(key: string, now: number): number[] {
    const times = (this.failures.get(key) ?? []).filter((t) => t > now - this.limits.windowMs);
    if (times.length === 0) this.failures.delete(key);
    return times;
  }

  /** When the key may try again, or null if it may now. */
  private retryAt(key: string, max: number, now: number): number | null {
    const times = this.recent(key, now);
    if (times.length < max) return null;
    // The attempt that brings the count under the limit again is when the oldest counted failure expires.
    const oldest = times[times.length - max] ?? now;
    return oldest + this.limits.windowMs;
  }

  private add(key: string, max: number, now: number): number {
    // Only the newest `max` failures matter for the decision: keeping no more bounds each key.
    const times = [...this.recent(key, now), now].slice(-max);
    this.failures.delete(key);
    this.failures.set(key, times);
    this.evict(now);
    return times.length;
  }

  private evict(now: number): void {
    if (this.failures.size <= this.limits.maxTracked) return;
    for (const key of [...this.failures.keys()]) this.recent(key, now);
    for (const key of this.failures.keys()) {
      if (this.failures.size <= this.limits.maxTracked) break;
      this.failures.delete(key);
    }
  }
}

/**
 * Usernames compare as identities do, look-alikes included (`identityKey`), so `Alice`, `alice `
 * and `аlice` with a Cyrillic а share one count. Kept as digests: a fixed size whatever was
 * typed, and no refused username (often a password typed in the wrong field) sits in memory in clear.
 */
function userDigest(username: string): string {
  return createHash('sha256').update(identityKey(username)).digest('base64url');
}

function userKey(username: string): string {
  return `user:${userDigest(username)}`;
}

function pairKey(username: string, address: string): string {
  return `pair:${userDigest(username)}@${addressKey(address)}`;
}

/**
 * IPv6 clients are counted per /64: one host usually holds a whole /64, so counting single
 * addresses would give it billions of fresh counts. IPv4-mapped addresses count as IPv4.
 */
function addressKey(address: string): string {
  const a = address.toLowerCase().replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/, '');
  if (!isIPv6(a)) return `addr:${a}`;
  const [head = '', tail] = a.split('%')[0]?.split('::') ?? [];
  const left = head ? head.split(':') : [];
  const right = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const groups = [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right];
  return `addr:${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}
