import { existsSync } from 'node:fs';
import path from 'node:path';
import type { DecisionSigner } from '../../approvals/signing-keys';
import { createSlackApp, type SlackApp } from '../../approvals/slack/app';
import { loadSlackIdentities, type SlackIdentityMap } from '../../approvals/slack/identities';
import type { WardenClient } from '../../client';
import type { RunStore } from '../../store';
import { wardenHome } from '../context';
import { CliError, describeError } from '../cli-errors';
import { serverLogger } from './server-settings';

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
