/**
 * A person as a channel authenticated them: `id` is what policies name as `user:<id>` (and what
 * four-eyes compares with a run's requester), `groups` are matched against `group:<name>`.
 */
export interface Identity {
  id: string;
  /** For display only; never used for a decision. */
  name?: string;
  groups: string[];
}
