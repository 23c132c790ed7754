// Quotas across runs and workers, and rate limits: the pure model (docs/quotas.md).
export { quotaWindowAt, describeWindow, localParts, instantOf } from './quota-window';
export type { QuotaWindowAt } from './quota-window';
export { TENANT_NAME, quotaSetFor, hasQuotas, countsCall, rulesForCall, modelQuotas, runQuotas, counterKey, callAmount, judgeQuota, quotaMessage } from './quota-rules';
export type { QuotaRule, RateRule, QuotaSet, QuotaFacts, QuotaHit, QuotaVerdict } from './quota-rules';
export { rateInterval, rateSlot } from './rate-limit';
