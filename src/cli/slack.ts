import type { Command } from 'commander';
import { out } from './format';
import { serveWithClientAndStore } from './serve';
import { DEFAULT_SLACK_PORT, parseListenPort } from './support/server-settings';
import { defaultIdentitiesFile, readIdentities, slackEnv, startSlack } from './support/slack-start';
import { resolveSigningKey } from './support/signers';

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
