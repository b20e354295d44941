export { createContentValidator, type ContentValidatorOptions } from './content-validator.js'
export { createSearchIndexFeeder, type SearchIndexFeederOptions } from './search-index-feeder.js'
export { createConnectionWebhooks, type ConnectionWebhooksOptions, type ConnectionEvent } from './connection-webhooks.js'
export { rootKind, rootText, type RootKind } from './shared-types.js'
