import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Identity } from '../identity';

export interface Session {
  id: string;
  identity: Identity;
  /** Every form of the session carries it; a POST without it is refused. */
  csrf: string;
  expiresAt: number;
}

/** Server-side sessions: the cookie holds only a random id; a restart signs everyone out. */
export class SessionStore {
  private readonly sessions = new Map<string, Session>();

  constructor(private readonly ttlMs: number) {}

  create(identity: Identity): Session {
    this.sweep();
    const session = { id: randomBytes(32).toString('base64url'), identity, csrf: randomBytes(32).toString('base64url'), expiresAt: Date.now() + this.ttlMs };
    this.sessions.set(session.id, session);
    return session;
  }

  get(id: string | undefined): Session | null {
    if (!id) return null;
    const session = this.sessions.get(id);
    if (!session) return null;
    if (session.expiresAt <= Date.now()) {
      this.sessions.delete(id);
      return null;
    }
    return session;
  }

  delete(id: string): void {
    this.sessions.delete(id);
  }

  private sweep(): void {
    const now = Date.now();
    for (const [id, s] of this.sessions) if (s.expiresAt <= now) this.sessions.delete(id);
  }
}

/** Compares two secrets without leaking where they differ. */
export function sameSecret(a: string | undefined, b: string): boolean {
  if (typeof a !== 'string') return false;
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
