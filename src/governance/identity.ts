/**
 * The form in which identities are compared: Unicode NFKC, invisible and control characters
 * removed, trimmed, case-folded. `Alice`, `"alice "` and `"alice\u200b"` are all `alice`, so
 * four-eyes, eligibility and quorum cannot be dodged by spelling one person two ways.
 */
export function normalizeIdentity(id: string): string {
  return id
    .normalize('NFKC')
    .replace(/[\p{Default_Ignorable_Code_Point}\p{Cc}\p{Cf}]/gu, '')
    .trim()
    .toUpperCase()
    .toLowerCase();
}

/** Whether two identities name the same person once normalised. */
export function sameIdentity(a: string, b: string): boolean {
  return normalizeIdentity(a) === normalizeIdentity(b);
}

/**
 * Whether a person (normalised id and groups) is among a policy's approvers
 * (`user:<id>` or `group:<name>`); ids and group names compare normalised.
 */
export function isEligible(approver: string, groups: readonly string[], approvers: readonly string[]): boolean {
  const id = normalizeIdentity(approver);
  const mine = new Set(groups.map(normalizeIdentity));
  return approvers.some((p) => (p.startsWith('user:') && normalizeIdentity(p.slice(5)) === id) || (p.startsWith('group:') && mine.has(normalizeIdentity(p.slice(6)))));
}
