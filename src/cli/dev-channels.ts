import { existsSync } from 'node:fs';
import { DecisionSigner, loadSigningKey } from '../approvals/signing-keys';
import type { InboxServer } from '../approvals/inbox/server';
import type { SlackApp } from '../approvals/slack/app';
import type { SlackIdentityMap } from '../approvals/slack/identities';
import type { WardenClient } from '../client';
import { freePorts } from '../dev-server';
import { describeError } from './cli-errors';
import { ensureDevUsers, type DevUsers } from './dev-users';
import { choosePort, startLocalStack, type LocalStack, type LocalStackOptions } from './local-stack';
import { listenInbox, usersAuthenticator } from './support/inbox-start';
import { DEFAULT_INBOX_PORT, DEFAULT_SLACK_PORT, serverLogger } from './support/server-settings';
import { defaultIdentitiesFile, readIdentities, slackEnv, startSlack } from './support/slack-start';

/**
 * Who may use the dev UI's codec: operators, and the demo's approvers (alice in finance, bob in
 * finance-leads), who also encode so that the UI's pause works for them; carol (support) may not.
 * A production inbox lets only operators encode (`warden inbox --codec-encode-groups`).
 */
const DEV_CODEC_GROUPS: readonly string[] = ['operators', 'finance', 'finance-leads'];

/** The people's channels `warden dev` and `warden demo` run next to their worker. */
export interface DevChannels {
  inbox: InboxServer;
  users: DevUsers;
  /** Running when SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET are set and Slack answered. */
  slack: SlackApp | null;
  /** What to print about them, aligned with `describeStack`. */
  lines: string[];
  /** Where a finance approver signs in, for instructions: "log in as alice, password in …". */
  signInHint: string;
  close(): Promise<void>;
}

/**
 * Starts the web inbox on loopback (8787 if free) with the development users (`ensureDevUsers`),
 * signing with the stack's web key; and the Slack app when its secrets are in the environment
 * (the stack's worker posts the approval messages on its own: it reads SLACK_BOT_TOKEN too).
 * Slack is optional here: if it does not start, a warning says why and the rest runs on.
 */
export async function startDevChannels(stack: LocalStack, client: WardenClient, options: { inboxPort?: number } = {}): Promise<DevChannels> {
  const users = await ensureDevUsers(stack.home);
  const port = (await choosePort(options.inboxPort, DEFAULT_INBOX_PORT, '--inbox-port')) ?? 0;
  const quiet = 'warn';
  const inbox = await listenInbox(
    {
      client,
      store: stack.store,
      signer: new DecisionSigner(loadSigningKey(stack.keyFile('web'))),
      auth: usersAuthenticator(users.usersFile).auth,
      port,
      logger: serverLogger('warden-inbox', quiet),
      // The dev UI decodes payloads through the inbox, as the person signed in to it.
      ...(stack.server.uiUrl ? { codec: { codec: stack.payloadCodec, uiOrigin: new URL(stack.server.uiUrl).origin, decodeGroups: DEV_CODEC_GROUPS, encodeGroups: DEV_CODEC_GROUPS } } : {}),
      // The console links each run to the dev server's UI.
      ...(stack.server.uiUrl ? { console: { temporalUiUrl: stack.server.uiUrl } } : {}),
    },
    '--inbox-port',
  );

  const signInHint = users.passwordsFile ? `log in as alice, password in ${users.passwordsFile}` : `log in as a finance approver of ${users.usersFile}`;
  const lines = [`  inbox       ${inbox.url} (${signInHint})`];
  if (users.created) {
    lines.push(`  dev users   created ${users.usersFile}; passwords, shown once (kept in ${users.passwordsFile ?? ''}, mode 0600):`);
    const width = Math.max(...users.created.map((u) => u.id.length));
    const groupWidth = Math.max(...users.created.map((u) => u.groups.join(',').length));
    for (const u of users.created) lines.push(`                ${u.id.padEnd(width)}  ${u.groups.join(',').padEnd(groupWidth)}  ${u.password}`);
  }

  let slack: SlackApp | null = null;
  if (process.env.SLACK_BOT_TOKEN && process.env.SLACK_SIGNING_SECRET) {
    const socketMode = Boolean(process.env.SLACK_APP_TOKEN);
    const identitiesFile = defaultIdentitiesFile();
    try {
      const identities: SlackIdentityMap = existsSync(identitiesFile) ? readIdentities(identitiesFile) : new Map();
      slack = await startSlack({
        env: slackEnv(socketMode),
        client,
        store: stack.store,
        signer: new DecisionSigner(loadSigningKey(stack.keyFile('slack'))),
        identities,
        socketMode,
        port: socketMode ? undefined : ((await choosePort(undefined, DEFAULT_SLACK_PORT)) ?? 0),
        logLevel: quiet,
      });
      lines.push(`  slack       ${slack.url ? `${slack.url} (point the Slack app's Interactivity Request URL at it, through a tunnel)` : 'connected in Socket Mode'}; the worker posts approval requests`);
      if (identities.size === 0) lines.push(`              no ${identitiesFile}: clicks decide nothing until Slack ids are mapped (format: examples/slack-identities.example.json)`);
      else lines.push(`              ${identities.size} Slack user(s) mapped in ${identitiesFile}`);
    } catch (err) {
      process.stderr.write(`warning: the Slack app did not start: ${describeError(err)}\n`);
    }
  } else {
    lines.push('  slack       off (set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET to post approvals to Slack and decide there)');
  }

  const running = slack;
  let closing: Promise<void> | null = null;
  return {
    inbox,
    users,
    slack,
    lines,
    signInHint,
    close: () =>
      (closing ??= (async () => {
        await inbox.close().catch(() => undefined);
        await running?.close().catch(() => undefined);
      })()),
  };
}

/**
 * The stack and what runs beside it: a client, the web inbox and (with Slack's secrets in the
 * environment) the Slack app. `shutdown` stops the people's channels before the worker and server.
 */
export async function startDevEnvironment(opts: LocalStackOptions & { inboxPort?: number }): Promise<{ stack: LocalStack; client: WardenClient; channels: DevChannels; shutdown(): Promise<void> }> {
  // Chosen before the server starts: the dev UI is told the inbox's codec endpoint at start.
  const inboxPort = (await choosePort(opts.inboxPort, DEFAULT_INBOX_PORT, '--inbox-port')) ?? (await freePorts(1))[0];
  const stack = await startLocalStack({ ...opts, ...(inboxPort ? { uiCodecEndpoint: `http://127.0.0.1:${inboxPort}/codec` } : {}) });
  let client: WardenClient | undefined;
  try {
    client = await stack.connectClient();
    const channels = await startDevChannels(stack, client, { inboxPort });
    const open = client;
    let stopping: Promise<void> | null = null;
    return {
      stack,
      client: open,
      channels,
      shutdown: () =>
        (stopping ??= (async () => {
          await channels.close();
          await open.close().catch(() => undefined);
          await stack.shutdown();
        })()),
    };
  } catch (err) {
    await client?.close().catch(() => undefined);
    await stack.shutdown();
    throw err;
  }
}
