// Lint runs on the TypeScript sources; compiled output and the native build are not ours to lint.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'native/build/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', setImmediate: 'readonly', URL: 'readonly', AbortSignal: 'readonly', AbortController: 'readonly', fetch: 'readonly', TextEncoder: 'readonly', TextDecoder: 'readonly', queueMicrotask: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      'no-constant-condition': ['error', { checkLoops: false }],
      'eqeqeq': ['error', 'smart'],
      'no-restricted-imports': ['error', { patterns: [{ group: ['**/proxy-inner/**', '**/proxy-outer/**', '**/builder/**'], message: 'shared/ must not import from proxy-* or builder/' }] }],
    },
  },
  {
    // Only shared/ is forbidden from importing the sides; everything else may.
    files: ['bin/**', 'proxy-inner/**', 'proxy-outer/**', 'builder/**', 'benchmarks/**', 'test/**'],
    rules: { 'no-restricted-imports': 'off' },
  },
);
