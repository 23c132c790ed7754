import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import type { DecisionSigner } from '../approvals/keys';
import { createSlackApp, type SlackApp } from '../approvals/slack/app';
import { loadSlackIdentities, type SlackIdentityMap } from '../approvals/slack/identities';
import type { WardenClient } from '../client';
import type { RunStore } from '../store';
import { resolveSigningKey } from './approvals';
import { serveWithClientAndStore } from './serve';
import { wardenHome } from './context';
import { CliError, describeError } from './errors';
import { out } from './format';
import { parseListenPort, serverLogger } from './inbox';

/** The Slack app's port in HTTP mode when none is asked for (and, for `warden dev`, when it is free). */
export const DEFAULT_SLACK_PORT = 3000;

/** What the Slack app reads from the environment: the secrets Slack issues are never flags (shell history). */
export interface SlackEnv {
  signingSecret: string;
  botToken: string;
  appToken?: string;
  apiUrl?: string;
}

/** Where each variable's value is found in the Slack app's settings page. */
const SLACK_SETTING = {
  SLACK_SIGNING_SECRET: 'Basic Information → Signing Secret',
  SLACK_BOT_TOKEN: 'OAuth & Permissions → Bot User OAuth Token, xoxb-…',
  SLACK_APP_TOKEN: 'Basic Information → App-Level Tokens, xapp-… with connections:write',
} as const;

/** The Slack settings, or a one-line error naming every variable that is missing. */
export function slackEnv(socketMode: boolean, env: NodeJS.ProcessEnv = process.env): SlackEnv {
  const needed = socketMode ? (['SLACK_BOT_TOKEN', 'SLACK_APP_TOKEN'] as const) : (['SLACK_SIGNING_SECRET', 'SLACK_BOT_TOKEN'] as const);
  const missing = needed.filter((name) => !env[name]);
  if (missing.length > 0) {
    const where = missing.map((name) => `${name}: ${SLACK_SETTING[name]}`).join('; ');
    throw new CliError(`${missing.join(' and ')} ${missing.length > 1 ? 'are' : 'is'} not set; copy ${missing.length > 1 ? 'them' : 'it'} from your Slack app's settings (${where})`);
  }
  if (env.SLACK_API_URL && !URL.canParse(env.SLACK_API_URL)) throw new CliError(`SLACK_API_URL ${env.SLACK_API_URL} is not a URL`);
  return { signingSecret: env.SLACK_SIGNING_SECRET ?? '', botToken: env.SLACK_BOT_TOKEN ?? '', appToken: env.SLACK_APP_TOKEN || undefined, apiUrl: env.SLACK_API_URL || undefined };
}

/** `<home>/slack-identities.json`: Slack user id → Warden user and groups. */
export function defaultIdentitiesFile(): string {
  return path.join(wardenHome(), 'slack-identities.json');
}

/** Reads the identities file; a missing or broken file is a one-line error that says what to write. */
export function readIdentities(file: string): SlackIdentityMap {
  if (!existsSync(file)) {
    throw new CliError(`no Slack identities file ${file}: map Slack user ids to Warden users in it (format: examples/slack-identities.example.json), or pass --identities FILE`);
  }
  try {
    return loadSlackIdentities(file);
  } catch (err) {
    throw new CliError(err instanceof Error ? err.message : String(err));
  }
}

export interface StartSlackOptions {
  env: SlackEnv;
  client: WardenClient;
  store: RunStore;
  signer: DecisionSigner;
  identities: SlackIdentityMap;
  socketMode: boolean;
  host?: string;
  port?: number;
  logLevel: string;
}

/** Starts the Slack app; Slack refusing the token, or being out of reach, is one line that says which. */
export async function startSlack(options: StartSlackOptions): Promise<SlackApp> {
  try {
    return await createSlackApp({
      signingSecret: options.env.signingSecret,
      botToken: options.env.botToken,
      appToken: options.env.appToken,
      socketMode: options.socketMode,
      slackApiUrl: options.env.apiUrl,
      client: options.client,
      store: options.store,
      signer: options.signer,
      identities: options.identities,
      host: options.host,
      port: options.port,
      logger: serverLogger('warden-slack', options.logLevel),
    });
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code === 'EADDRINUSE') throw new CliError(`port ${options.port ?? 0} is in use; pick another with --port`);
    const api = options.env.apiUrl ?? 'https://slack.com/api/';
    throw new CliError(`the Slack app did not start (Slack at ${api}): ${describeError(err)}; check SLACK_BOT_TOKEN${options.socketMode ? ' and SLACK_APP_TOKEN' : ''}`);
  }
}

interface SlackOptions {
  port: number;
  host: string;
  identities?: string;
  socketMode?: boolean;
  key?: string;
}

export function registerSlack(program: Command): void {
  program
    .command('slack')
    .description('Run the Slack app: Approve/Reject buttons on approval messages become signed decisions (env SLACK_SIGNING_SECRET, SLACK_BOT_TOKEN)')
    .option('--port <n>', 'HTTP mode: port for Slack\'s requests, behind your HTTPS proxy (0: any free port)', parseListenPort, DEFAULT_SLACK_PORT)
    .option('--host <address>', 'HTTP mode: address to listen on', '127.0.0.1')
    .option('--identities <file>', 'Slack user id → Warden user and groups (default: .warden/slack-identities.json)')
    .option('--socket-mode', 'connect out to Slack instead of taking requests (needs SLACK_APP_TOKEN, no public URL)')
    .option('--key <file>', 'the Slack signing key (default: $WARDEN_SLACK_SIGNING_KEY, else .warden/keys/slack.json)')
    .action(async (opts: SlackOptions) => {
      const socketMode = opts.socketMode ?? false;
      const env = slackEnv(socketMode);
      const identitiesFile = opts.identities ?? defaultIdentitiesFile();
      const identities = readIdentities(identitiesFile);
      const { signer, file: keyFile } = resolveSigningKey(opts.key, 'slack');
      const { server: app, settings, storePath } = await serveWithClientAndStore('stopping the Slack app', ({ client, store }) =>
        startSlack({ env, client, store, signer, identities, socketMode, host: opts.host, port: opts.port, logLevel: 'info' }),
      );
      out(app.url ? `Slack app: Request URL ${app.url}` : 'Slack app: connected to Slack in Socket Mode');
      if (app.url) out("  set it, through your HTTPS proxy, as the Interactivity Request URL of your Slack app");
      out(`  identities  ${identities.size} Slack user(s) mapped in ${identitiesFile}; anyone else's click decides nothing`);
      out(`  Temporal    ${settings.address} (namespace ${settings.namespace}); run store ${storePath}`);
      out(`  signing     key ${signer.keyId} from ${keyFile}: workers must trust it (WARDEN_TRUSTED_KEYS)`);
      out("  messages    workers post approval requests to the policy's approval.notify.slack.channel when they have SLACK_BOT_TOKEN");
      out('Ctrl-C stops it.');
    });
}
