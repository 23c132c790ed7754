import type * as Jose from 'jose' with { 'resolution-mode': 'import' };
import type { Identity } from '../identity';
import { AuthError, type BearerAuthenticator } from './authenticator';

/**
 * jose 6 is ESM only. Node ≥ 20.19 (this package's floor) `require`s ES modules natively, but
 * jest's module loader does not, and it intercepts `require('node:module')` too; a require made
 * from the real `node:module` (`process.getBuiltinModule`) works the same under Node and jest.
 * With jose transformed by jest (`transformIgnorePatterns`), this becomes a plain import.
 */
export function loadJose(): typeof Jose {
  return process.getBuiltinModule('node:module').createRequire(__filename)('jose') as typeof Jose;
}

export interface OidcBearerOptions {
  /** The `iss` tokens must carry. */
  issuer: string;
  /** The `aud` tokens must carry (the inbox's client id). */
  audience: string | string[];
  /** The provider's JWKS endpoint (`jwks_uri` of its discovery document). */
  jwksUri: string;
  /**
   * The claim that becomes the approver id (`user:<id>` in policies, compared with requesters).
   * Default `sub`, which providers keep stable; `preferred_username` or `email` read better but
   * only where the provider guarantees they are unique and never reassigned.
   */
  idClaim?: string;
  /** The claim listing the person's groups; a dotted path reaches nested claims (`realm_access.roles`). Default `groups`. */
  groupsClaim?: string;
  /** Signature algorithms accepted. Default: the asymmetric ones providers use. */
  algorithms?: string[];
  /** Seconds of clock skew tolerated on `exp`/`nbf`. Default 30. */
  clockToleranceSec?: number;
}

function claimAt(payload: Record<string, unknown>, path: string): unknown {
  if (path in payload) return payload[path];
  let value: unknown = payload;
  for (const part of path.split('.')) {
    if (typeof value !== 'object' || value === null) return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

function reasonOf(err: unknown): string {
  const code = typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : '';
  const message = err instanceof Error || (typeof err === 'object' && err !== null && 'message' in err) ? String(err.message) : String(err);
  switch (code) {
    case 'ERR_JWT_EXPIRED':
      return 'token expired';
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      return `token claim refused: ${message}`;
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return 'token signature does not verify';
    case 'ERR_JWKS_NO_MATCHING_KEY':
      return 'token is signed with a key the provider does not publish';
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return 'token algorithm not allowed';
    default:
      return code ? `token refused (${code}): ${message}` : `token refused: ${message}`;
  }
}

/**
 * Production sign-in: every request carries `Authorization: Bearer <JWT>` from an OIDC provider
 * (directly or through a proxy such as oauth2-proxy). The token is verified against the
 * provider's published keys (fetched and cached by jose), its issuer, audience and expiry.
 */
export function oidcBearerAuthenticator(options: OidcBearerOptions): BearerAuthenticator {
  const jose = loadJose();
  const jwks = jose.createRemoteJWKSet(new URL(options.jwksUri));
  const idClaim = options.idClaim ?? 'sub';
  const groupsClaim = options.groupsClaim ?? 'groups';
  const verifyOptions: Jose.JWTVerifyOptions = {
    issuer: options.issuer,
    audience: options.audience,
    algorithms: options.algorithms ?? ['RS256', 'RS384', 'RS512', 'PS256', 'ES256', 'ES384', 'EdDSA', 'Ed25519'],
    clockTolerance: options.clockToleranceSec ?? 30,
    requiredClaims: ['exp', idClaim],
  };
  return {
    kind: 'bearer',
    async verify(token: string): Promise<Identity> {
      let payload: Jose.JWTPayload;
      try {
        ({ payload } = await jose.jwtVerify(token, jwks, verifyOptions));
      } catch (err) {
        throw new AuthError(reasonOf(err));
      }
      const id = claimAt(payload, idClaim);
      if (typeof id !== 'string' || id.trim() === '' || /[\s]/.test(id)) throw new AuthError(`token claim ${idClaim} is not a usable user id`);
      const rawGroups = claimAt(payload, groupsClaim);
      const groups = Array.isArray(rawGroups) ? rawGroups.filter((g): g is string => typeof g === 'string') : typeof rawGroups === 'string' ? [rawGroups] : [];
      const display = [payload.preferred_username, payload.name].find((v): v is string => typeof v === 'string' && v !== '');
      return { id, ...(display ? { name: display } : {}), groups };
    },
  };
}
