// ESLint: Expo's rules; CI runs it with --max-warnings 0.
const { defineConfig } = require('eslint/config');
const expoConfig = require('eslint-config-expo/flat');

module.exports = defineConfig([
  expoConfig,
  {
    ignores: ['dist/*', 'node_modules/*', '.expo/*', 'android/*', 'ios/*'],
  },
  {
    files: ['jest.setup.js', '__tests__/**'],
    languageOptions: { globals: { jest: 'readonly', expect: 'readonly', describe: 'readonly', it: 'readonly', test: 'readonly', beforeEach: 'readonly', afterEach: 'readonly' } },
  },
  {
    files: ['e2e/**'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly', window: 'readonly', document: 'readonly' } },
  },
]);
