// Lint rules for berth (npm run lint), including the layering: each outside library has one door.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const only = (pkg, where) => ({
  name: pkg,
  message: `${pkg} is imported only in ${where} (STYLE.md: one door per outside library)`,
});

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'eslint.config.mjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'no-console': 'error',
      'no-restricted-imports': [
        'error',
        {
          paths: [
            only('dockerode', 'agent/docker/'),
            only('ssh2', 'agent/rpc/, shell/ssh/ and shell/agents/'),
            only('blessed', 'shell/ui/'),
            only('winston', 'common/logging.ts'),
          ],
        },
      ],
    },
  },
  { files: ['agent/docker/**/*.ts'], rules: { 'no-restricted-imports': 'off' } },
  { files: ['agent/rpc/**/*.ts', 'shell/ssh/**/*.ts', 'shell/agents/**/*.ts', 'test/**/*.ts'], rules: { 'no-restricted-imports': ['error', { paths: [only('dockerode', 'agent/docker/'), only('blessed', 'shell/ui/'), only('winston', 'common/logging.ts')] }] } },
  { files: ['common/logging.ts'], rules: { 'no-restricted-imports': 'off' } },
  { files: ['shell/ui/**/*.ts'], rules: { 'no-restricted-imports': ['error', { paths: [only('dockerode', 'agent/docker/'), only('ssh2', 'agent/rpc/, shell/ssh/ and shell/agents/'), only('winston', 'common/logging.ts')] }] } },
  { files: ['test/**/*.ts', 'deploy/**/*.ts'], rules: { 'no-console': 'off' } },
);
