/**
 * The id of a delegate's run: `warden/<delegate agent>/<delegating run's key>.d<seq>`, where `seq`
 * is the delegation call's place in the delegating run's conversation (unique in that run). Read
 * left to right it names the delegate, then whose task it is.
 */
export function delegateRunId(parentRunId: string, parentAgent: string, agent: string, seq: number): string {
  const prefix = `warden/${parentAgent}/`;
  const key = parentRunId.startsWith(prefix) ? parentRunId.slice(prefix.length) : parentRunId.replace(/\//g, '_');
  return `warden/${agent}/${key}.d${seq}`;
}
