#!/usr/bin/env node
'use strict';
// The installed package runs the compiled CLI (dist/), which loads tsx only for TypeScript agent
// modules. A clone of the repository runs the CLI from src/ through tsx: the examples and the test
// fixtures import Warden from src/, and classes such as ToolError must be the ones the worker
// checks, so a clone never mixes a build with its sources (and needs no build step).
const fs = require('node:fs');
const path = require('node:path');

// Node 22.1+ keeps the compiled code of the modules a command loads (Temporal's protobuf root is
// large) in a disk cache, so the next start skips compiling them; older Nodes have no such API.
const nodeModule = require('node:module');
if (typeof nodeModule.enableCompileCache === 'function') nodeModule.enableCompileCache();

const root = path.join(__dirname, '..');
const sources = path.join(root, 'src', 'cli', 'main.ts');
const workerProcess = require('./worker-process');

if (workerProcess.wantsTunedProcess()) {
  // `warden worker` in a Node process set up for many waiting runs (bin/worker-process.js).
  workerProcess.runTuned(__filename);
} else if (fs.existsSync(sources)) {
  require('tsx/cjs');
  require(sources);
} else {
  require(path.join(root, 'dist', 'cli', 'main.js'));
}
