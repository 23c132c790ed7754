import path from 'node:path';
import type { Command } from 'commander';
import { loadFleetPolicy, loadPolicies } from '../agents';
import { emptyAuditHead, nextAuditEvent, parsePolicy, type AuditEvent, type Policy } from '../governance';
import type { RunStore } from '../store';
import { counterOfTenant, describeCount, limitOf, quotaStanding, type NamedQuota, type QuotaStanding } from '../client/quota-standing';
import { CliError, describeError, UsageError } from './cli-errors';
import { currentUser, withStore } from './context';
import { out, outJson, printable, table } from './format';
import { authorizeCliOperator } from './support/operator-authority';
import { checkPoliciesDir, defaultPoliciesPath } from './support/project-paths';

/** The run-store trail a quota's resets are recorded in (hash-chained, like a run's): `quota/<name>`. */
export function quotaTrailId(name: string): string {
  return `quota/${name}`;
}

/**
 * The quotas the workers enforce: each agent's own (its applied policy if there is one, else its
 * policy file), by fleet-wide name (`<agent>/<id>`), then the fleet file's (`fleet/<id>`).
 */
async function knownQuotas(store: RunStore, dir: string): Promise<NamedQuota[]> {
  checkPoliciesDir(dir);
  const byAgent = new Map<string, { policy: Policy; source: string }>();
  let fleet: ReturnType<typeof loadFleetPolicy>;
  try {
    for (const p of loadPolicies(path.resolve(dir))) byAgent.set(p.policy.agent, { policy: p.policy, source: p.source });
    fleet = loadFleetPolicy(path.resolve(dir));
  } catch (err) {
    throw new CliError(describeError(err));
  }
  for (const a of await store.listAppliedPolicies()) {
    try {
      byAgent.set(a.agent, { policy: parsePolicy(a.policy, `applied policy of ${a.agent}`, { dropMovedFields: true }), source: `applied ${a.version}` });
    } catch (err) {
      throw new CliError(describeError(err));
    }
  }
  const quotas: NamedQuota[] = [];
  for (const [agent, { policy, source }] of [...byAgent].sort(([a], [b]) => a.localeCompare(b))) {
    for (const q of policy.quotas ?? []) quotas.push({ name: `${agent}/${q.id}`, definition: q, source });
  }
  for (const q of fleet?.fleet.quotas ?? []) quotas.push({ name: `fleet/${q.id}`, definition: q, source: fleet?.source ?? 'the fleet file' });
  return quotas;
}

/** The quota `id` names: its full name (`refund-agent/refunds-per-day`), or an id that one quota alone has. */
function findQuota(quotas: readonly NamedQuota[], id: string, dir: string): NamedQuota {
  const exact = quotas.find((q) => q.name === id);
  if (exact) return exact;
  const byId = quotas.filter((q) => q.name.slice(q.name.indexOf('/') + 1) === id);
  if (byId.length === 1 && byId[0]) return byId[0];
  if (byId.length > 1) throw new UsageError(`quota id ${id} is ambiguous: say which, ${byId.map((q) => q.name).join(' or ')}`);
  const names = quotas.map((q) => q.name);
  throw new CliError(`no quota ${id} in the policies of ${dir}, its fleet file or the applied policies (${names.length > 0 ? `quotas: ${names.join(', ')}` : 'no policy defines a quota'})`);
}

const fmt = (n: number) => String(Math.round(n * 1e6) / 1e6);
const scopeText = (s: Record<string, string>) => Object.entries(s).map(([k, v]) => `${k}=${v}`).join(',') || '(all)';

function totalOf(s: QuotaStanding): { used: number; reserved: number } {
  return s.counters.reduce((t, c) => ({ used: t.used + c.used, reserved: t.reserved + c.reserved }), { used: 0, reserved: 0 });
}

/** Reads a quota trail back, checking nothing was altered; the resets recorded in it. */
async function resetsOf(store: RunStore, name: string): Promise<AuditEvent[]> {
  return (await store.readAudit(quotaTrailId(name))).filter((e) => e.type === 'quota_reset');
}

/**
 * Appends one event to a quota's trail: after its head, hash-chained. Two operators resetting at
 * once could compute the same next event; the store keeps the first of a seq, so the write is
 * read back and retried after the new head.
 */
async function recordOnTrail(store: RunStore, trail: string, data: Record<string, unknown>): Promise<AuditEvent> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const events = await store.readAudit(trail);
    const last = events[events.length - 1];
    const head = last ? { seq: last.seq, hash: last.hash } : emptyAuditHead();
    const event = nextAuditEvent(head, 'quota_reset', data, new Date().toISOString());
    await store.appendAudit(trail, [event]);
    const stored = (await store.readAudit(trail)).find((e) => e.seq === event.seq);
    if (stored?.hash === event.hash) return event;
  }
  throw new CliError(`could not record the reset on ${trail}: other writers kept taking its next place`);
}

const policiesOption = (command: Command) => command.option('--policies <dir>', 'directory of policy files the workers read', defaultPoliciesPath());

export function registerQuota(program: Command): void {
  const quota = program.command('quota').description("Fleet quotas: where each stands in its window (used, reserved, limit, top consumers), and an operator's reset");

  policiesOption(quota.command('list').description('Every quota the policies define, with its window, limit and what is used and reserved now').option('--json', 'print JSON')).action(
    async (opts: { policies: string; json?: boolean }) => {
      const now = Date.now();
      const standings = await withStore(async (store) => {
        const quotas = await knownQuotas(store, opts.policies);
        return Promise.all(quotas.map((q) => quotaStanding(store, q, now)));
      });
      if (opts.json) return outJson(standings.map((s) => ({ ...s, ...totalOf(s) })));
      if (standings.length === 0) return out(`no quotas: no policy in ${opts.policies} (or applied) defines one`);
      const rows = standings.map((s) => {
        const t = totalOf(s);
        return [s.name, s.count, s.window.label, s.scope.join(',') || '-', s.limit === null ? '-' : fmt(s.limit), fmt(t.used), fmt(t.reserved), String(s.counters.length)];
      });
      table(['QUOTA', 'COUNTS', 'WINDOW', 'SCOPE', 'LIMIT', 'USED', 'RESERVED', 'COUNTERS'], rows).forEach((l) => out(l));
    },
  );

  policiesOption(
    quota
      .command('show')
      .description("One quota: its thresholds, each counter's used, reserved and limit in the current window, the top consumers, and its resets")
      .argument('<id>', 'the quota: its name (refund-agent/refunds-per-day) or, when only one quota has it, its id')
      .option('--tenant <id>', "only this tenant's counter (the quota must be scoped by tenant)")
      .option('--json', 'print JSON'),
  ).action(async (id: string, opts: { policies: string; tenant?: string; json?: boolean }) => {
    const { standing, resets } = await withStore(async (store) => {
      const q = findQuota(await knownQuotas(store, opts.policies), id, opts.policies);
      if (opts.tenant !== undefined && !q.definition.scope.includes('tenant')) throw new UsageError(`quota ${q.name} is not scoped by tenant (scope: ${q.definition.scope.join(', ') || 'none'}): --tenant does not apply`);
      const tenant = opts.tenant === undefined ? {} : { tenant: opts.tenant };
      return { standing: await quotaStanding(store, q, Date.now(), { ...tenant, top: 10 }), resets: await resetsOf(store, q.name) };
    });
    if (opts.json) return outJson({ ...standing, ...totalOf(standing), tenant: opts.tenant ?? null, resets: resets.map((e) => ({ at: e.at, ...e.data })) });
    out(`${standing.name}${standing.description ? `: ${printable(standing.description)}` : ''}`);
    out(`  counts ${standing.count}, per ${standing.scope.join(', ') || 'the whole quota'}, ${standing.window.label}: now ${standing.window.since} → ${standing.window.until}`);
    out(`  limit ${standing.limit === null ? 'none (no deny threshold)' : fmt(standing.limit)}; thresholds: ${standing.thresholds.map((t) => `above ${fmt(t.above)} ${t.action}`).join(', ')}`);
    if (standing.source) out(`  from ${standing.source}`);
    out('');
    if (standing.counters.length === 0) out(`  nothing booked in this window${opts.tenant === undefined ? '' : ` for tenant ${printable(opts.tenant)}`}`);
    else {
      const rows = standing.counters.map((c) => [printable(scopeText(c.scope)), fmt(c.used), fmt(c.reserved), standing.limit === null ? '-' : fmt(standing.limit), standing.limit === null ? '-' : fmt(Math.max(0, standing.limit - c.used - c.reserved))]);
      table(['COUNTER', 'USED', 'RESERVED', 'LIMIT', 'LEFT'], rows).forEach((l) => out(`  ${l}`));
    }
    if (standing.top.length > 0) {
      out('');
      out('  top consumers:');
      table(['RUN', 'TENANT', 'AMOUNT'], standing.top.map((c) => [printable(c.runId), printable(c.tenant ?? '-'), fmt(c.amount)])).forEach((l) => out(`    ${l}`));
    }
    if (resets.length > 0) {
      const last = resets[resets.length - 1];
      const text = (v: unknown) => (typeof v === 'string' ? printable(v) : '');
      out('');
      out(`  reset ${resets.length} time(s); last ${last?.at ?? ''} by ${text(last?.data.by)}${typeof last?.data.reason === 'string' ? `: ${text(last.data.reason)}` : ''}`);
    }
  });

  policiesOption(
    quota
      .command('reset')
      .description("Set a quota's counters back to zero (all of them, or one tenant's): an operator command, signed with the CLI key and checked against the trusted-keys file (operator role), recorded in the run store")
      .argument('<id>', 'the quota: its name (refund-agent/refunds-per-day) or, when only one quota has it, its id')
      .option('--tenant <id>', "only this tenant's counter (the quota must be scoped by tenant)")
      .option('--reason <text>', 'why, recorded with the reset')
      .option('--by <id>', 'the operator, whom the CLI key must be trusted to assert with the operator role (default $USER, else your account name)')
      .option('--key <file>', 'the CLI signing key (default $WARDEN_SIGNING_KEY, else the one warden dev made)')
      .option('--trusted <file>', 'the trusted-keys file the workers use (default $WARDEN_TRUSTED_KEYS, else the one warden dev wrote)'),
  ).action(async (id: string, opts: { policies: string; tenant?: string; reason?: string; by?: string; key?: string; trusted?: string }) => {
    const by = opts.by ?? currentUser();
    const done = await withStore(async (store) => {
      const q = findQuota(await knownQuotas(store, opts.policies), id, opts.policies);
      if (opts.tenant !== undefined && !q.definition.scope.includes('tenant')) throw new UsageError(`quota ${q.name} is not scoped by tenant (scope: ${q.definition.scope.join(', ') || 'none'}): --tenant does not apply`);
      const target = `quota:${q.name}${opts.tenant === undefined ? '' : `|tenant=${opts.tenant}`}`;
      // Checked before anything is read or changed: without the role, nothing happens.
      const auth = authorizeCliOperator('quotaReset', target, by, { key: opts.key, trusted: opts.trusted, doing: `resetting quota ${q.name}` });
      const before = await quotaStanding(store, q, Date.now(), opts.tenant === undefined ? {} : { tenant: opts.tenant });
      let changed = 0;
      if (opts.tenant === undefined) changed = await store.resetQuota({ quota: q.name });
      else {
        const counters = [...new Set((await store.listQuotaReservations({ quota: q.name, states: ['held', 'committed'] })).map((r) => r.counter))].filter((c) => counterOfTenant(c, opts.tenant ?? ''));
        for (const counter of counters) changed += await store.resetQuota({ quota: q.name, counter });
      }
      const totals = totalOf(before);
      const event = await recordOnTrail(store, quotaTrailId(q.name), {
        quota: q.name,
        tenant: opts.tenant ?? null,
        by: auth.identity.id,
        keyId: auth.identity.keyId,
        reason: opts.reason ?? null,
        reservations: changed,
        window: before.window.key,
        usedBefore: totals.used,
        reservedBefore: totals.reserved,
        signature: auth.signature,
      });
      return { q, changed, totals, event, identity: auth.identity };
    });
    const who = opts.tenant === undefined ? '' : ` for tenant ${printable(opts.tenant)}`;
    out(`reset ${done.q.name}${who}: ${done.changed} reservation(s) set to zero (${describeCount(done.q.definition.count)} used ${fmt(done.totals.used)}, reserved ${fmt(done.totals.reserved)} in window ${done.event.data.window as string}, limit ${limitOf(done.q.definition) ?? 'none'})`);
    out(`  by ${printable(done.identity.id)} (key ${done.identity.keyId}, operator role), recorded in the run store as ${quotaTrailId(done.q.name)} #${done.event.seq}`);
  });
}
