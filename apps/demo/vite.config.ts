import { defineConfig } from 'vite'

// `npm run dev -w @concord/demo` serves the app with hot reload and forwards the server's routes
// to a `concord serve --demo` on port 1234 (`npm start` at the repository root).
const SERVER = process.env.CONCORD_URL ?? 'http://127.0.0.1:1234'

export default defineConfig({
  base: '/',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
    chunkSizeWarningLimit: 1024,
  },
  server: {
    proxy: {
      '/dev/token': SERVER,
      '/v1': SERVER,
      '/server-info': SERVER,
      // the app's socket, and the SDK's history calls that follow its URL (ws://host/ws → http://host/ws/v1/...)
      '/ws': { target: SERVER, ws: true, rewrite: path => path.replace(/^\/ws/, '') || '/' },
    },
  },
})
