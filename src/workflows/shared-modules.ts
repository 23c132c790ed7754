/**
 * Loaded once per worker thread before any run (the bundle's `preloadModules`), so every run
 * shares these modules instead of loading its own copy: see `SHARED_WORKFLOW_MODULES` in
 * src/worker/bundle.ts. A module the SDK loads for a run costs that run its closures, classes and
 * objects on every start and every replay (about 400 KB of heap and 10 ms per run before Warden's
 * own modules and CEL were shared here).
 *
 * What is shared must keep no per-run state: the SDK freezes everything these modules export,
 * and anything else they hold at module scope is seen by every run of the thread. Warden's
 * workflow modules keep their state in each run's objects; their one module-scope value is the
 * cache of compiled policies (src/workflows/policy-cache.ts), pure values keyed by content.
 * OpenTelemetry's API is not shared (its singletons take each run's tracer provider): a worker
 * that traces loads it per run through its workflow interceptors
 * (src/telemetry/workflow-events.ts says how the run finds it). `test/workflow-bundle.test.ts`
 * checks which modules a run loads for itself.
 *
 * Most of these libraries declare themselves free of side effects, so a bare `require` of them
 * would be dropped by the bundler: this module keeps a reference to each.
 */
import * as cel from '@bufbuild/cel';
import * as protobuf from '@bufbuild/protobuf';
import * as reflect from '@bufbuild/protobuf/reflect';
import * as wire from '@bufbuild/protobuf/wire';
import * as wkt from '@bufbuild/protobuf/wkt';
// CEL's expression types, generated protobuf descriptors.
import * as checked from '@bufbuild/cel-spec/cel/expr/checked_pb.js';
import * as syntax from '@bufbuild/cel-spec/cel/expr/syntax_pb.js';
import { sha256 } from '@noble/hashes/sha256';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils';
import * as temporal from '@temporalio/workflow';
// @ts-expect-error TS1479: CommonJS importing an ES module, as in src/governance/signing/canonical.ts
import canonicalize from 'canonicalize';
import * as workflows from './index';

// CEL computes each standard function's id the first time an environment groups them, and a
// frozen function cannot keep it: one environment made here, before the freeze, computes them all.
cel.celEnv();

(globalThis as { __wardenSharedModules?: unknown }).__wardenSharedModules = [cel, protobuf, reflect, wire, wkt, checked, syntax, sha256, bytesToHex, utf8ToBytes, canonicalize, temporal, workflows];
