import { existsSync, readFileSync } from 'node:fs';
import { InvalidArgumentError, type Command } from 'commander';
import type { Authenticator } from '../approvals/auth/authenticator';
import { oidcBearerAuthenticator } from '../approvals/auth/oidc';
import { isLoopbackHost } from '../approvals/listen';
import { DEFAULT_CODEC_DECODE_GROUPS, DEFAULT_CODEC_ENCODE_GROUPS } from '../codec/endpoint';
import { payloadCodecFromEnv } from './context';
import { CliError, UsageError } from './cli-errors';
import { out } from './format';
import { serveWithClientAndStore } from './serve';
import { devUsersFile, listenInbox, usersAuthenticator } from './support/inbox-start';
import { DEFAULT_INBOX_PORT, parseListenPort, serverLogger } from './support/server-settings';
import { resolveSigningKey } from './support/signers';

interface InboxOptions {
  port: number;
  host: string;
  users?: string;
  oidcIssuer?: string;
  oidcAudience?: string;
  oidcJwks?: string;
  oidcGroupsClaim?: string;
  key?: string;
  publicOrigin?: string;
  tlsCert?: string;
  tlsKey?: string;
  insecureHttp?: boolean;
  codecUiOrigin?: string;
  codecDecodeGroups?: string[];
  codecEncodeGroups?: string[];
  operators?: string[];
  policyAdmins?: string[];
  temporalUi?: string;
}

/** Who may use a console control, comma-separated as policies name approvers (`group:operators,user:alice`). */
function parsePrincipals(value: string): string[] {
  const names = value.split(',').map((n) => n.trim()).filter((n) => n !== '');
  const bad = names.find((n) => !/^(user|group):[^\s:]+$/.test(n));
  if (bad !== undefined) throw new InvalidArgumentError(`"${bad}" names nobody: use group:<name> or user:<id>, separated by commas`);
  return names;
}

/** A comma-separated list of group names; empty (`""`) is no group at all. */
function parseGroups(value: string): string[] {
  const groups = value.split(',').map((g) => g.trim()).filter((g) => g !== '');
  const bad = groups.find((g) => /\s/.test(g));
  if (bad !== undefined) throw new InvalidArgumentError(`"${bad}" is not a group name (no spaces; separate groups with commas)`);
  return groups;
}

/**
 * HTTPS from `--tls-cert`/`--tls-key`, or plain HTTP where that is safe or asked for. Checked
 * before anything connects, so a wrong command fails at once and names the flags that fix it.
 */
function transportFrom(opts: InboxOptions): { tls?: { cert: Buffer; key: Buffer }; insecureHttp: boolean } {
  const insecureHttp = opts.insecureHttp === true;
  if ((opts.tlsCert === undefined) !== (opts.tlsKey === undefined)) throw new UsageError('--tls-cert and --tls-key go together: give both, or neither');
  if (opts.tlsCert !== undefined && opts.tlsKey !== undefined) {
    if (insecureHttp) throw new UsageError('--insecure-http serves plain HTTP and --tls-cert/--tls-key serve HTTPS: give one');
    const read = (file: string, flag: string) => {
      try {
        return readFileSync(file);
      } catch (err) {
        throw new CliError(`cannot read ${flag} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
    };
    return { tls: { cert: read(opts.tlsCert, '--tls-cert'), key: read(opts.tlsKey, '--tls-key') }, insecureHttp };
  }
  if (!isLoopbackHost(opts.host) && !insecureHttp) {
    throw new UsageError(
      `--host ${opts.host} is not a loopback address: the inbox will not send passwords and session cookies over plain HTTP there. ` +
        'Pass --tls-cert FILE and --tls-key FILE, or keep --host 127.0.0.1 behind an HTTPS proxy, or add --insecure-http if a TLS-terminating proxy reaches it over a network you trust',
    );
  }
  return { insecureHttp };
}

/** How people sign in, from the flags: a users file, or bearer tokens of an OIDC provider. */
function signInFrom(opts: InboxOptions): { auth: Authenticator; description: string } {
  const oidc = { '--oidc-issuer': opts.oidcIssuer, '--oidc-audience': opts.oidcAudience, '--oidc-jwks': opts.oidcJwks };
  const oidcGiven = Object.values(oidc).some((v) => v !== undefined) || opts.oidcGroupsClaim !== undefined;
  if (opts.users && oidcGiven) throw new UsageError('--users and --oidc-* are two ways to sign people in: give one');
  if (oidcGiven) {
    const missing = Object.entries(oidc)
      .filter(([, v]) => !v)
      .map(([flag]) => flag);
    if (missing.length > 0) throw new UsageError(`OIDC sign-in needs ${missing.join(', ')} as well`);
    const jwksUri = opts.oidcJwks ?? '';
    if (!URL.canParse(jwksUri)) throw new UsageError(`--oidc-jwks ${jwksUri} is not a URL`);
    const auth = oidcBearerAuthenticator({ issuer: opts.oidcIssuer ?? '', audience: opts.oidcAudience ?? '', jwksUri, groupsClaim: opts.oidcGroupsClaim });
    return { auth, description: `OIDC bearer tokens from ${opts.oidcIssuer ?? ''} (audience ${opts.oidcAudience ?? ''}, groups from claim ${opts.oidcGroupsClaim ?? 'groups'})` };
  }
  const file = opts.users ?? devUsersFile();
  if (!opts.users && !existsSync(file)) {
    throw new UsageError(`no sign-in configured: pass --users FILE (format: examples/users.example.yaml) or --oidc-issuer, --oidc-audience and --oidc-jwks; 'warden dev' creates ${file}`);
  }
  const { auth, count } = usersAuthenticator(file);
  return { auth, description: `${count} user(s) of ${file}, with passwords` };
}

export function registerInbox(program: Command): void {
  program
    .command('inbox')
    .description('Serve the web inbox: people sign in, see pending approvals, and approve or reject them (signed with the web key)')
    .option('--port <n>', `port to listen on (0: any free port)`, parseListenPort, DEFAULT_INBOX_PORT)
    .option('--host <address>', 'address to listen on; any but loopback needs --tls-cert/--tls-key (or --insecure-http behind a TLS proxy)', '127.0.0.1')
    .option('--users <file>', 'sign in with the users of this file (YAML; default: .warden/users.yaml, made by warden dev)')
    .option('--oidc-issuer <url>', 'sign in with bearer tokens from this OIDC issuer (with --oidc-audience and --oidc-jwks)')
    .option('--oidc-audience <aud>', 'the audience tokens must carry (the inbox client id)')
    .option('--oidc-jwks <url>', "the provider's JWKS endpoint")
    .option('--oidc-groups-claim <claim>', 'the token claim that lists groups (default: groups)')
    .option('--key <file>', 'the web signing key (default: $WARDEN_WEB_SIGNING_KEY, else .warden/keys/web.json)')
    .option('--public-origin <url>', 'the origin browsers use when a proxy is in front (https://warden.example.com)')
    .option('--tls-cert <file>', 'serve HTTPS with this certificate (PEM; with --tls-key)')
    .option('--tls-key <file>', 'the private key of --tls-cert (PEM)')
    .option('--insecure-http', 'serve plain HTTP on a non-loopback --host anyway (only behind a TLS-terminating proxy on a trusted network)')
    .option('--codec-ui-origin <origin>', "serve the payload codec endpoint (<inbox>/codec) to the Temporal UI at this origin, for signed-in people (keys: $WARDEN_PAYLOAD_KEYS)")
    .option('--codec-decode-groups <groups>', `groups whose members may decode payloads there, comma-separated (default: ${DEFAULT_CODEC_DECODE_GROUPS.join(',')})`, parseGroups)
    .option('--operators <names>', 'who may pause, resume, cancel and roll back runs and use kill switches in the console, e.g. group:operators,user:alice (default: group:operators)', parsePrincipals)
    .option('--policy-admins <names>', 'who may apply a policy in the console (default: group:policy-admins)', parsePrincipals)
    .option('--temporal-ui <url>', "the Temporal UI's address: the console links each run to it")
    .option('--codec-encode-groups <groups>', `groups whose members may encode there, as the UI does for the signals it sends (default: ${DEFAULT_CODEC_ENCODE_GROUPS.join(',')}; "" for nobody)`, parseGroups)
    .action(async (opts: InboxOptions) => {
      const { tls, insecureHttp } = transportFrom(opts);
      const { auth, description } = signInFrom(opts);
      const { signer, file: keyFile } = resolveSigningKey(opts.key, 'web');
      if (opts.publicOrigin !== undefined && !URL.canParse(opts.publicOrigin)) throw new UsageError(`--public-origin ${opts.publicOrigin} is not a URL`);
      if (opts.codecUiOrigin !== undefined && !URL.canParse(opts.codecUiOrigin)) throw new UsageError(`--codec-ui-origin ${opts.codecUiOrigin} is not a URL`);
      const payloadCodec = opts.codecUiOrigin !== undefined ? payloadCodecFromEnv() : undefined;
      if (opts.codecUiOrigin !== undefined && !payloadCodec) throw new UsageError('--codec-ui-origin needs the payload keys: set WARDEN_PAYLOAD_KEYS to the key file the workers use');
      if (opts.temporalUi !== undefined && !URL.canParse(opts.temporalUi)) throw new UsageError(`--temporal-ui ${opts.temporalUi} is not a URL`);
      if (opts.codecUiOrigin === undefined && (opts.codecDecodeGroups ?? opts.codecEncodeGroups) !== undefined) throw new UsageError('--codec-decode-groups and --codec-encode-groups go with --codec-ui-origin');
      const decodeGroups = opts.codecDecodeGroups ?? DEFAULT_CODEC_DECODE_GROUPS;
      const encodeGroups = opts.codecEncodeGroups ?? DEFAULT_CODEC_ENCODE_GROUPS;
      const { server: inbox, settings, storePath } = await serveWithClientAndStore('stopping the web inbox', ({ client, store }) =>
        listenInbox({
          client,
          store,
          signer,
          auth,
          host: opts.host,
          port: opts.port,
          publicOrigin: opts.publicOrigin ? new URL(opts.publicOrigin).origin : undefined,
          tls,
          insecureHttp,
          ...(payloadCodec && opts.codecUiOrigin ? { codec: { codec: payloadCodec, uiOrigin: new URL(opts.codecUiOrigin).origin, decodeGroups, encodeGroups } } : {}),
          console: { ...(opts.operators ? { operators: opts.operators } : {}), ...(opts.policyAdmins ? { policyAdmins: opts.policyAdmins } : {}), ...(opts.temporalUi ? { temporalUiUrl: opts.temporalUi } : {}) },
          logger: serverLogger('warden-inbox', 'info'),
        }),
      );
      out(`web inbox: ${inbox.url}`);
      out(`  Temporal    ${settings.address} (namespace ${settings.namespace}); run store ${storePath}`);
      out(`  sign-in     ${description}`);
      out(`  console     ${inbox.url}/console: operators ${(opts.operators ?? ['group:operators']).join(', ')}; policy admins ${(opts.policyAdmins ?? ['group:policy-admins']).join(', ')}`);
      out(`  signing     key ${signer.keyId} from ${keyFile}: workers must trust it (WARDEN_TRUSTED_KEYS)`);
      if (payloadCodec) {
        out(`  codec       ${inbox.url}/codec for the Temporal UI at ${opts.codecUiOrigin ?? ''}: decode for group(s) ${decodeGroups.join(', ') || '(none)'}, encode for ${encodeGroups.join(', ') || '(none)'}`);
      }
      if (!tls && !isLoopbackHost(opts.host)) {
        process.stderr.write(`WARNING: --insecure-http: the inbox serves ${opts.host} over plain HTTP; passwords and session cookies cross the network in clear unless a TLS proxy is in front (pass it --public-origin)\n`);
      }
      out('Ctrl-C stops it.');
    });
}
