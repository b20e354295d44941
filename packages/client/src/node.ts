export { createFileOfflineStore } from './file-offline-store.js'
