/**
 * Loaded once per worker thread before any run (the bundle's `preloadModules`), so every run
 * shares these libraries instead of loading its own copy: see `SHARED_WORKFLOW_MODULES` in
 * src/worker/bundle.ts. They keep no per-run state, and the SDK freezes what they export
 * (which is also why CEL itself is not here: it sets ids on its exported functions lazily).
 *
 * The libraries declare themselves free of side effects, so a bare `require` of them would be
 * dropped by the bundler: this module keeps a reference to each, which is all it does.
 */
import * as protobuf from '@bufbuild/protobuf';
import * as reflect from '@bufbuild/protobuf/reflect';
import * as wire from '@bufbuild/protobuf/wire';
import * as wkt from '@bufbuild/protobuf/wkt';
// CEL's expression types, generated protobuf descriptors: most of what loading CEL costs a run.
import * as checked from '@bufbuild/cel-spec/cel/expr/checked_pb.js';
import * as syntax from '@bufbuild/cel-spec/cel/expr/syntax_pb.js';
import { sha256 } from '@noble/hashes/sha256';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils';
// @ts-expect-error TS1479: CommonJS importing an ES module, as in src/governance/canonical.ts
import canonicalize from 'canonicalize';

(globalThis as { __wardenSharedModules?: unknown }).__wardenSharedModules = [protobuf, reflect, wire, wkt, checked, syntax, sha256, bytesToHex, utf8ToBytes, canonicalize];
