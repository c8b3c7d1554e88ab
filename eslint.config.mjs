import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'build/**', 'bench/results/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-explicit-any': 'off',
    },
  },
  {
    // Upstream connections are opened only in src/upstream (connect.ts, through the Cluster):
    // TLS origination, connect timeouts, counters and circuit breakers then apply on every path.
    files: ['src/**/*.ts'],
    ignores: ['src/upstream/**'],
    rules: {
      'no-restricted-syntax': [
        'error',
        {
          selector: "CallExpression[callee.type='MemberExpression'][callee.property.name=/^(connect|createConnection|request|get)$/][callee.object.name=/^(net|tls|http|https|http2)$/]",
          message: 'Upstream sockets are opened only in src/upstream (Cluster.connect / openSocket / connectH2 / undiciPool).',
        },
        {
          selector: "NewExpression[callee.type='MemberExpression'][callee.property.name='Socket'][callee.object.name=/^(net|tls)$/][arguments.length=0]",
          message: 'Upstream sockets are opened only in src/upstream.',
        },
        {
          selector: "ImportDeclaration[source.value=/^(node:)?(net|tls|http|https|http2)$/] > ImportSpecifier[imported.name=/^(connect|createConnection|request|get)$/]",
          message: 'Upstream sockets are opened only in src/upstream.',
        },
      ],
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: [
            { name: 'undici', message: 'undici clients are created only in src/upstream (Cluster.undiciPool).', allowTypeImports: true },
          ],
        },
      ],
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    languageOptions: { globals: { require: 'readonly', module: 'writable', process: 'readonly', console: 'readonly', __dirname: 'readonly' } },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
