// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';
import { builtinModules } from 'node:module';

const nodeBuiltins = [...builtinModules, ...builtinModules.map((m) => `node:${m}`)];
/** What code the workflow sandbox imports may not reach: the worker's side of the project. */
const workerOnly = ['../activities', '../activities/*', '../store/*', '../worker/*', '../cli/*', '../client/*'];

const plainErrorMessage = 'Throw a WardenError subclass (src/errors.ts) whose message names what was wrong, not a plain Error.';
const plainErrorThrows = [
  { selector: "ThrowStatement > NewExpression[callee.name='Error']", message: plainErrorMessage },
  { selector: "ThrowStatement > CallExpression[callee.name='Error']", message: plainErrorMessage },
];
/** A WardenError subclass without its own marker is recognised by instanceof only, which fails across copies of the package. */
const errorClassMarker = {
  selector: "ClassDeclaration[superClass.name=/Error$/][superClass.name!='Error']:not(:has(ClassBody > PropertyDefinition[static=true][key.name='marker']))",
  message: "Declare the class's own marker (static override readonly marker = errorMarker('<name>')), so isInstance tells it apart in any copy of Warden.",
};

export default tseslint.config(
  { ignores: ['node_modules/', '.warden/', 'coverage/', 'dist/', 'bin/', '**/*.mjs', 'jest.config.js'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      globals: { ...globals.node },
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/consistent-type-imports': ['error', { prefer: 'type-imports', fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true }],
    },
  },
  {
    // Every error Warden throws on purpose is a WardenError subclass (src/errors.ts) whose message
    // names what was wrong; callers branch on it with isInstance. Tests and benches may throw plain Errors.
    files: ['src/**/*.ts'],
    rules: { 'no-restricted-syntax': ['error', ...plainErrorThrows, errorClassMarker] },
  },
  {
    // Workflow code runs in Temporal's deterministic sandbox; the bundler rejects Node built-ins
    // at worker start, this catches them at lint time. src/governance is imported by workflows.
    files: ['src/workflows/**/*.ts', 'src/governance/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { paths: nodeBuiltins, patterns: workerOnly }],
    },
  },
  {
    // Signatures are made by channels and verified by the worker (the verifyDecision activity),
    // never in workflow code, which imports only their types: node:crypto (OpenSSL's Ed25519) is
    // theirs. test/workflow-bundle.test.ts checks the bundle holds neither it nor a JS Ed25519.
    files: ['src/governance/signing/signed-decision.ts'],
    rules: {
      'no-restricted-imports': ['error', { paths: nodeBuiltins.filter((m) => m !== 'node:crypto'), patterns: workerOnly }],
    },
  },
  {
    files: ['src/workflows/**/*.ts'],
    rules: {
      // Activities are imported only as types (import type), never as values.
      '@typescript-eslint/no-restricted-imports': ['error', { patterns: [{ group: ['../activities', '../activities/*'], allowTypeImports: true }] }],
      'no-restricted-imports': ['error', { paths: nodeBuiltins }],
    },
  },
  {
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/unbound-method': 'off',
    },
  },
);
