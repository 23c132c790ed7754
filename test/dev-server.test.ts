import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { DevServerError, resolveTemporalBinary } from '../src/dev-server';
import { wardenSearchAttributes } from '../src/workflows/search-attributes';

function suiteServer(): { address: string; namespace: string } {
  const address = process.env.WARDEN_TEST_TEMPORAL_ADDRESS;
  const namespace = process.env.WARDEN_TEST_NAMESPACE;
  if (!address || !namespace) throw new Error('WARDEN_TEST_TEMPORAL_ADDRESS / WARDEN_TEST_NAMESPACE are unset: did test/global-setup.ts run?');
  return { address, namespace };
}

describe("the suite's Temporal dev server", () => {
  let connection: Connection;
  const { address, namespace } = suiteServer();

  beforeAll(async () => {
    connection = await Connection.connect({ address });
  });
  afterAll(async () => {
    await connection.close();
  });

  it('answers describeNamespace for the namespace global setup exported', async () => {
    const described = await connection.workflowService.describeNamespace({ namespace });
    expect(described.namespaceInfo?.name).toBe(namespace);
  });

  it("has Warden's three search attributes registered as keywords", async () => {
    const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace });
    const keyword = 2; // temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
    for (const key of wardenSearchAttributes) expect({ name: key.name, type: customAttributes[key.name] }).toEqual({ name: key.name, type: keyword });
  });
});

describe('resolveTemporalBinary', () => {
  const saved = process.env.TEMPORAL_CLI_PATH;
  let dir: string;

  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'warden-bin-'));
  });
  afterEach(() => {
    if (saved === undefined) delete process.env.TEMPORAL_CLI_PATH;
    else process.env.TEMPORAL_CLI_PATH = saved;
    rmSync(dir, { recursive: true, force: true });
  });

  it('returns the binary TEMPORAL_CLI_PATH names, before anything on PATH or in the cache', async () => {
    const fake = path.join(dir, 'my-temporal');
    writeFileSync(fake, '#!/bin/sh\n');
    chmodSync(fake, 0o755);
    process.env.TEMPORAL_CLI_PATH = fake;
    await expect(resolveTemporalBinary({ allowBuild: false })).resolves.toBe(fake);
  });

  it('fails with an error naming TEMPORAL_CLI_PATH and the wrong path, without falling back', async () => {
    const missing = path.join(dir, 'no-such-temporal');
    process.env.TEMPORAL_CLI_PATH = missing;
    const log = jest.fn();
    const error: unknown = await resolveTemporalBinary({ allowBuild: false, log }).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(DevServerError);
    expect((error as Error).message).toContain(`TEMPORAL_CLI_PATH is set to ${missing}, which does not exist`);
    expect(log).not.toHaveBeenCalled();
  });

  it('says a non-executable TEMPORAL_CLI_PATH is not executable', async () => {
    const notExecutable = path.join(dir, 'temporal');
    writeFileSync(notExecutable, 'not a program');
    chmodSync(notExecutable, 0o644);
    process.env.TEMPORAL_CLI_PATH = notExecutable;
    await expect(resolveTemporalBinary({ allowBuild: false })).rejects.toThrow(`TEMPORAL_CLI_PATH is set to ${notExecutable}, which is not executable`);
  });
});
