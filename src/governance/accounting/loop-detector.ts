import type { LoopSettings } from '../policy/policy-schema';

/** The recent calls the detector remembers: `tool:argsDigest`, oldest first. Plain JSON. */
export interface LoopState {
  recent: string[];
}

export const emptyLoopState = (): LoopState => ({ recent: [] });

export interface LoopObservation {
  state: LoopState;
  /** How many times this exact call appears in the window, this one included. */
  repeats: number;
  tripped: boolean;
}

/**
 * Records a call and says whether it trips the breaker: the same tool with the same canonical
 * arguments `maxRepeats` times within the last `window` calls. Pure: returns the new state.
 */
export function observeCall(state: LoopState, settings: LoopSettings, tool: string, argsDigest: string): LoopObservation {
  const key = `${tool}:${argsDigest}`;
  const recent = [...state.recent, key].slice(-settings.window);
  const repeats = recent.filter((k) => k === key).length;
  return { state: { recent }, repeats, tripped: repeats >= settings.maxRepeats };
}
