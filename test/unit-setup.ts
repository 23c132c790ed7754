/**
 * Runs before each file of the `unit` project (jest.config.js). When jest runs both projects at once,
 * the integration project's global setup has put the suite's server in the parent's environment; each
 * test file gets its own copy of it, and this removes the server from the unit file's copy, so a file
 * on the unit list that needs the server fails (`settings()` throws) the same way in every run.
 */
for (const name of Object.keys(process.env)) {
  if (name.startsWith('WARDEN_TEST_')) delete process.env[name];
}
