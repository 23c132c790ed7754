import { readFileSync } from 'node:fs';
import path from 'node:path';
import { CompiledPolicy, parseFleetPolicyText, parsePolicyText, type FleetPolicy, type Policy } from '../../governance';
import { loadShadowPolicy } from '../../activities/shadow-policy';
import { CliError } from '../cli-errors';
import { withClient, withStore } from '../context';
import { optionalSigner } from './signers';

// What \`warden policy\` does with policy files, shared by its commands.

/** Reads a policy file and validates it with the same function the worker uses; errors name the file, line and column. */
export function readPolicyFile(file: string): Policy {
  return readPolicyText(file).policy;
}

export function readPolicyText(file: string): { policy: Policy; text: string } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new CliError(`cannot read policy file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return { policy: parsePolicyText(text, file), text };
}

/** Reads and validates the fleet file (quotas and rate limits across agents); a problem names the path, line and column. */
export function readFleetFile(file: string): FleetPolicy {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new CliError(`cannot read fleet file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return parseFleetPolicyText(text, file);
}

/**
 * Validates a policy file (and the shadow it names), stores it as its agent's applied policy and
 * tells the agent's running runs to take it up. What `policy apply` and `policy promote-shadow` do.
 */
export async function applyPolicyFile(file: string, by: string): Promise<{ version: string; agent: string; sent: number }> {
  // Validated before anything is stored or sent: a bad file reaches no run.
  const policy = readPolicyFile(file);
  const shadow = loadShadowPolicy(policy, path.resolve(file));
  if (shadow && 'error' in shadow) throw new CliError(`${file}: shadow: ${shadow.error}`);
  const version = new CompiledPolicy(policy).version;
  const sent = await withClient(async (client) => {
    await withStore((store) => store.setAppliedPolicy(policy.agent, { policy, version, source: path.resolve(file) }));
    const runs = await client.listRuns({ agent: policy.agent });
    // Signed with the CLI key when there is one: workers count applyPolicy only from a key with the policy-admin role.
    const signer = optionalSigner();
    const results = await Promise.allSettled(runs.map((r) => client.applyPolicy(r.runId, { by, ...(signer ? { signer, channel: 'cli' } : {}) })));
    return results.filter((r) => r.status === 'fulfilled').length;
  });
  return { version, agent: policy.agent, sent };
}

