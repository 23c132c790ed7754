import { governCall, shadowDiffOf, type CompiledPolicy, type CallProposal, type GovernContext, type GovernResult, type GovernState, type ShadowDiff } from '../governance/workflow-safe';
import { compiledPolicy } from './policy-cache';
import type { ShadowSource, ShadowStatus } from './run-types';

/**
 * A run's shadow policy: every call the enforced policy judges is judged by the shadow too, with
 * `governCall` from the same state, and the result is thrown away except for the comparison. So a
 * shadow cannot change what runs, what is counted, or what people are asked; it only adds
 * `policy_shadow_diff` events and counters. Its source comes only from the worker (`prepareRun`,
 * `currentPolicy`), like the enforced policy.
 */
export class ShadowDecider {
  private constructor(
    private readonly source: ShadowSource | undefined,
    private readonly compiled: CompiledPolicy | null,
    private readonly error: string | null,
    private calls: number,
    private diffs: number,
  ) {}

  /** No shadow. */
  static none(): ShadowDecider {
    return new ShadowDecider(undefined, null, null, 0, 0);
  }

  /** A shadow from what the worker loaded, knowing the agent's tools like the enforced policy does. */
  static from(source: ShadowSource | undefined, toolNames: readonly string[], counts = { calls: 0, diffs: 0 }): ShadowDecider {
    if (!source) return ShadowDecider.none();
    if ('error' in source) return new ShadowDecider(source, null, source.error, counts.calls, counts.diffs);
    try {
      // Shared with every run of the worker thread that has the same shadow, like the enforced policy.
      return new ShadowDecider(source, compiledPolicy(source.policy, toolNames), null, counts.calls, counts.diffs);
    } catch (err) {
      return new ShadowDecider(source, null, err instanceof Error ? err.message : String(err), counts.calls, counts.diffs);
    }
  }

  /** The shadow after the worker's policy was taken up again: the counters go on while it is the same version. */
  takeUp(source: ShadowSource | undefined, toolNames: readonly string[]): ShadowDecider {
    const next = ShadowDecider.from(source, toolNames);
    if (next.compiled && this.compiled && next.compiled.version === this.compiled.version) return ShadowDecider.from(source, toolNames, { calls: this.calls, diffs: this.diffs });
    return next;
  }

  /**
   * Judges the call the enforced policy just judged (`enforced`, from `state`) and returns the
   * disagreement to audit, or null. Never throws: a shadow must not be able to end a run.
   */
  judge(state: GovernState, call: CallProposal, ctx: GovernContext, enforced: GovernResult): ShadowDiff | null {
    if (!this.compiled) return null;
    let shadow: GovernResult;
    try {
      shadow = governCall(state, call, { ...ctx, policy: this.compiled });
    } catch {
      return null;
    }
    if (!enforced.decision && !shadow.decision && !enforced.end && !shadow.end) return null;
    this.calls += 1;
    const diff = shadowDiffOf(call, enforced, ctx.policy.version, shadow, this.compiled.version);
    if (diff) this.diffs += 1;
    return diff;
  }

  /** Fields for `run_started`: which shadow the run decides with, or why it has none. Empty without one. */
  startFields(): Record<string, unknown> {
    if (!this.source) return {};
    if (this.compiled) return { shadowPolicyVersion: this.compiled.version, shadowSource: this.source.source };
    return { shadowSource: this.source.source, shadowError: this.error };
  }

  carry(): { source: ShadowSource; calls: number; diffs: number } | undefined {
    return this.source && { source: this.source, calls: this.calls, diffs: this.diffs };
  }

  view(): ShadowStatus | null {
    if (!this.source) return null;
    return {
      source: this.source.source,
      ...(this.compiled ? { version: this.compiled.version } : { error: this.error ?? 'not loaded' }),
      calls: this.calls,
      diffs: this.diffs,
    };
  }
}
