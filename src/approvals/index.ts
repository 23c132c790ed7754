/**
 * People's channels for approvals: the web inbox and the Slack app. Both authenticate a person,
 * sign their decision (`DecisionSigner`) and signal the run through `WardenClient`; the run
 * verifies the signature and the approver, and audits the outcome.
 */
export { createInboxServer } from './inbox/server';
export type { InboxServer, InboxServerOptions } from './inbox/server';

export { AuthError } from './auth/authenticator';
export type { Authenticator, BearerAuthenticator, PasswordAuthenticator } from './auth/authenticator';
export { localUsersAuthenticator, loadUsersFile, UsersFileError } from './auth/local-users';
export type { LocalUser } from './auth/local-users';
export { oidcBearerAuthenticator } from './auth/oidc';
export type { OidcBearerOptions } from './auth/oidc';
export { hashPassword, verifyPassword } from './auth/password';

export { createSlackApp } from './slack/app';
export type { SlackApp, SlackAppOptions } from './slack/app';
export { notifyApprovalSlack, slackNotifyActivity, SlackReplyError } from './slack/notify';
export type { SlackApprovalNotice, SlackMessageRef, SlackNotifyOptions } from './slack/notify';
export { loadSlackIdentities, parseSlackIdentities } from './slack/identities';
export { SlackConfigError } from './slack/slack-config-error';
export type { SlackIdentityMap } from './slack/identities';
export { APPROVE_ACTION, REJECT_ACTION } from './slack/blocks';
export type { ApprovalForSlack } from './slack/blocks';

export { decideApproval } from './decide';
export type { DecisionDeps, DecisionKind, DecisionRequest, DecisionResult } from './decide';
export type { Identity } from './identity';

export * from './signing-keys';
