import { fileURLToPath, URL } from 'node:url';

import vue from '@vitejs/plugin-vue';
import { defineConfig } from 'vite';

// https://vite.dev/config/
export default defineConfig({
  plugins: [vue()],
  resolve: {
    alias: {
      '@': fileURLToPath(new URL('./src', import.meta.url)),
    },
  },
  // `npx vite` (development only): the API of a running //:up, as go/cmd/web passes it in production.
  server: {
    proxy: { '/api': 'http://127.0.0.1:3000' },
  },
});
