import unhomoglyph from 'unhomoglyph';

/**
 * The form in which identities are shown, recorded and granted: Unicode NFKC, invisible and
 * control characters removed, trimmed, case-folded. `Alice`, `"alice "` and `"alice\u200b"` are
 * all `alice`. Look-alikes from other scripts (`аlice` with a Cyrillic а) keep their own letters
 * here, so what people read is what was typed; `identityKey` is what folds them.
 */
export function normalizeIdentity(id: string): string {
  return id
    .normalize('NFKC')
    .replace(/[\p{Default_Ignorable_Code_Point}\p{Cc}\p{Cf}]/gu, '')
    .trim()
    .toUpperCase()
    .toLowerCase();
}

/**
 * The key under which identities that look alike are one person: the Unicode TR39 skeleton of the
 * normalised identity (NFD, each character replaced by its prototype from Unicode's
 * confusables.txt, NFD again; the table is the `unhomoglyph` package's), case-folded once more
 * because prototypes may be capitals (`0` → `O`). `alice`, `аlice` (Cyrillic а) and `ɑlice` have
 * one key. The key is for comparison only: it is not meant to be read (`m` becomes `rn`).
 *
 * Use it where being one person takes a right away (four-eyes, one vote per person). Never grant
 * by it: eligibility and what a key may assert compare `normalizeIdentity` exactly, so a look-alike
 * never gains the rights of the person it imitates.
 */
export function identityKey(id: string): string {
  return unhomoglyph(normalizeIdentity(id).normalize('NFD')).normalize('NFD').toUpperCase().toLowerCase();
}

/** Whether two identities may be the same person: their `identityKey`s are equal. */
export function sameIdentity(a: string, b: string): boolean {
  return identityKey(a) === identityKey(b);
}

/**
 * Whether a person (id and groups) is among a policy's approvers (`user:<id>` or `group:<name>`).
 * Ids and group names compare normalised and exactly: a look-alike of a listed approver is not
 * that approver (`lookalikeApprover` says which one it imitates).
 */
export function isEligible(approver: string, groups: readonly string[], approvers: readonly string[]): boolean {
  const id = normalizeIdentity(approver);
  const mine = new Set(groups.map(normalizeIdentity));
  return approvers.some((p) => (p.startsWith('user:') && normalizeIdentity(p.slice(5)) === id) || (p.startsWith('group:') && mine.has(normalizeIdentity(p.slice(6)))));
}

/** The listed approver (`user:<id>`) that `approver` looks like without being spelled the same, if any. */
export function lookalikeApprover(approver: string, approvers: readonly string[]): string | undefined {
  const id = normalizeIdentity(approver);
  const key = identityKey(approver);
  return approvers
    .filter((p) => p.startsWith('user:'))
    .map((p) => normalizeIdentity(p.slice(5)))
    .find((listed) => listed !== id && identityKey(listed) === key);
}

/** An identity with every character outside printable ASCII escaped (`\u0430lice`), so two look-alikes read apart in a message. */
export function spellOut(id: string): string {
  return id.replace(/[^\x20-\x7e]/gu, (c) => {
    const hex = (c.codePointAt(0) ?? 0).toString(16);
    return hex.length <= 4 ? `\\u${hex.padStart(4, '0')}` : `\\u{${hex}}`;
  });
}
