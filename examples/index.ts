/**
 * The example agents. The worker loads this module by default and serves every agent it exports;
 * each agent's policy is `policies/<agent name>.yaml`.
 */
export { refundAgent } from './refund-agent';
export { procurementAgent } from './procurement-agent';
export { triageAgent } from './triage-agent';
