import { createHash } from 'node:crypto';
import { isIPv6 } from 'node:net';
import { normalizeIdentity } from '../../governance/identity';

export interface LoginLimits {
  /** Failed logins for one username within `windowMs` before its logins are refused. Default 5. */
  perUser?: number;
  /**
   * Failed logins from one client address within `windowMs` before its logins are refused.
   * Default 20: higher than per user, because people behind one NAT or proxy share an address.
   */
  perAddress?: number;
  /** Default 15 minutes. */
  windowMs?: number;
  /** How many usernames and addresses are tracked at most; the oldest are forgotten first. Default 10,000. */
  maxTracked?: number;
}

export type LoginCheck = { allowed: true } | { allowed: false; retryAt: number; scope: 'user' | 'address' };

const DEFAULTS = { perUser: 5, perAddress: 20, windowMs: 15 * 60_000, maxTracked: 10_000 };

/**
 * Counts failed password logins per username and per client address, in memory, and refuses
 * logins once either has failed too often within the window (sliding: a failure stops counting
 * `windowMs` after it happened). Check before verifying a password: a refused attempt must cost
 * no password check and say nothing about whether the password was right.
 *
 * Bounded: at most `maxTracked` keys; when full, keys whose failures have all expired go first,
 * then the least recently failed. A restart forgets every count, like sessions.
 */
export class LoginLimiter {
  private readonly limits: Required<LoginLimits>;
  /** Key → times of its recent failures, oldest first; Map order is least recently failed first. */
  private readonly failures = new Map<string, number[]>();

  constructor(
    limits: LoginLimits = {},
    private readonly now: () => number = Date.now,
  ) {
    this.limits = { ...DEFAULTS, ...limits };
    for (const [name, value] of Object.entries(this.limits)) {
      if (!Number.isInteger(value) || value < 1) throw new RangeError(`login limit ${name} must be a whole number of at least 1, not ${value}`);
    }
  }

  /** Whether a login for `username` from `address` may be tried now, and if not, from when. */
  check(username: string, address: string): LoginCheck {
    const now = this.now();
    const user = this.retryAt(userKey(username), this.limits.perUser, now);
    const addr = this.retryAt(addressKey(address), this.limits.perAddress, now);
    if (user === null && addr === null) return { allowed: true };
    if (addr !== null && (user === null || addr > user)) return { allowed: false, retryAt: addr, scope: 'address' };
    return { allowed: false, retryAt: user ?? now, scope: 'user' };
  }

  /** Records a wrong username or password; returns the username's failures within the window. */
  recordFailure(username: string, address: string): number {
    const now = this.now();
    this.add(addressKey(address), this.limits.perAddress, now);
    return this.add(userKey(username), this.limits.perUser, now);
  }

  /** A successful login clears its username's count (not its address's: one right password must not reopen a spraying address). */
  recordSuccess(username: string): void {
    this.failures.delete(userKey(username));
  }

  /** How many usernames and addresses are tracked now. */
  get size(): number {
    return this.failures.size;
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
 * Usernames compare as identities do, so `Alice` and `alice ` share one count. Kept as digests:
 * a fixed size whatever was typed, and no refused username (often a password typed in the wrong
 * field) sits in memory in clear.
 */
function userKey(username: string): string {
  return `user:${createHash('sha256').update(normalizeIdentity(username)).digest('base64url')}`;
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
