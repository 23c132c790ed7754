import type { Context, MiddlewareHandler } from 'hono';
import { secureHeaders } from 'hono/secure-headers';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { STYLE_HASH } from './html';

/**
 * Warden's security headers for its web pages: a CSP that allows the pages' one inline stylesheet
 * and nothing else (no script, no asset from elsewhere, forms post here only, no framing), no MIME
 * sniffing, no referrer to other origins. Hono's other defaults stay off: HSTS is the deployment's
 * to choose (with includeSubDomains it binds the whole domain), and `frame-ancestors 'none'`
 * already forbids framing. `ownAssets`: stylesheets and scripts from this server itself too (the
 * console's), still no inline script.
 */
export function securityHeaders(options: { ownAssets?: boolean } = {}): MiddlewareHandler {
  const own = options.ownAssets ?? false;
  return secureHeaders({
    contentSecurityPolicy: {
      defaultSrc: ["'none'"],
      styleSrc: own ? [`'${STYLE_HASH}'`, "'self'"] : [`'${STYLE_HASH}'`],
      ...(own ? { scriptSrc: ["'self'"] } : {}),
      formAction: ["'self'"],
      frameAncestors: ["'none'"],
      baseUri: ["'none'"],
    },
    referrerPolicy: 'same-origin',
    xContentTypeOptions: true,
    crossOriginResourcePolicy: false,
    crossOriginOpenerPolicy: false,
    originAgentCluster: false,
    strictTransportSecurity: false,
    xDnsPrefetchControl: false,
    xDownloadOptions: false,
    xFrameOptions: false,
    xPermittedCrossDomainPolicies: false,
    xXssProtection: false,
  });
}

/** The headers of every inbox answer, pages, error pages and redirects alike. */
export const pageHeaders: MiddlewareHandler = securityHeaders();

/** An HTML page; nothing the inbox answers is cached (it shows who may decide what, now). */
export function sendPage(c: Context, status: ContentfulStatusCode, body: string, headers: Record<string, string> = {}): Response {
  return c.body(body, status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', ...headers });
}

/** A redirect after a form or to the login page: 303, so the browser follows with a GET. */
export function seeOther(c: Context, location: string): Response {
  c.header('cache-control', 'no-store');
  return c.redirect(location, 303);
}
