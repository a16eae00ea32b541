// Builds the analyst console into dist/console/, which the ledger serves at GET /console.
// `npm run dev:console` serves it with hot reload and proxies /v1 to LEDGER_URL (default :3000).
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const root = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root,
  base: '/console/',
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  build: {
    outDir: fileURLToPath(new URL('../../dist/console', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    // No inline assets: the CSP's img-src allows data: but nothing else may be inlined.
    assetsInlineLimit: 0,
    reportCompressedSize: false,
  },
  server: {
    proxy: { '/v1': { target: process.env.LEDGER_URL ?? 'http://127.0.0.1:3000', changeOrigin: false } },
  },
});
