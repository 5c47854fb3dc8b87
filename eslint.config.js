// Lint runs on the TypeScript sources; compiled output and the native build are not ours to lint.
// Production code (bin, shared, proxy-*, builder) gets the type-aware promise rules and no
// non-null assertions; tests and benchmarks keep `!` (an assertion that fails there fails the test).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const PRODUCTION = ['bin/**/*.ts', 'shared/**/*.ts', 'proxy-inner/**/*.ts', 'proxy-outer/**/*.ts', 'builder/**/*.ts'];

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'native/build/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        Buffer: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        setImmediate: 'readonly',
        URL: 'readonly',
        AbortSignal: 'readonly',
        AbortController: 'readonly',
        fetch: 'readonly',
        TextEncoder: 'readonly',
        TextDecoder: 'readonly',
        queueMicrotask: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      'no-constant-condition': ['error', { checkLoops: false }],
      eqeqeq: ['error', 'smart'],
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/proxy-inner/**', '**/proxy-outer/**', '**/builder/**', '**/bin/**'],
              message: 'shared/ must not import from proxy-*, builder/ or bin/',
            },
          ],
        },
      ],
    },
  },
  {
    // Only shared/ is forbidden from importing the sides; everything else may.
    files: ['bin/**', 'proxy-inner/**', 'proxy-outer/**', 'builder/**', 'benchmarks/**', 'test/**'],
    rules: { 'no-restricted-imports': 'off' },
  },
  {
    files: PRODUCTION,
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-non-null-assertion': 'error',
      // prom-client's index costs ~45 ms of start-up; its classes are loaded by shared/metrics/prom.ts.
      '@typescript-eslint/no-restricted-imports': [
        'error',
        { paths: [{ name: 'prom-client', allowTypeImports: true, message: 'import from shared/metrics/prom.ts (start-up time)' }] },
      ],
    },
  },
  {
    files: ['shared/metrics/prom.ts'],
    rules: { '@typescript-eslint/no-restricted-imports': 'off' },
  },
);
