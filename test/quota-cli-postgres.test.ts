/** `warden quota list|show|reset` against a real PostgreSQL run store (test/fixtures/quota-cli-cases.ts); skipped without PostgreSQL. */
import { describeWithPostgres } from './postgres';
import { quotaCliCases } from './fixtures/quota-cli-cases';

describeWithPostgres('warden quota on PostgreSQL', (server) => {
  let url = '';
  beforeAll(async () => {
    url = await server().createDatabase('quota_cli');
  });
  quotaCliCases(() => url);
});
