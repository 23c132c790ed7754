/**
 * `warden quota list|show|reset` against a real SQLite run store with real reservations; the
 * cases are in test/fixtures/quota-cli-cases.ts (test/quota-cli-postgres.test.ts runs them on
 * PostgreSQL). No Temporal, no server.
 */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { quotaCliCases } from './fixtures/quota-cli-cases';

const storeFile = path.join(mkdtempSync(path.join(os.tmpdir(), 'warden-quota-store-')), 'warden.db');
quotaCliCases(() => storeFile);
