#!/usr/bin/env node
'use strict';
// The CLI is TypeScript run through tsx, which also lets `--agents` point at a .ts module.
require('tsx/cjs');
require('../src/cli/main.ts');
