export { loadConfig, ConfigError, type LedgerConfig } from './config/ledger-config';
export { createLogger } from './http/logger';
export { createApp } from './create-app';
export { openRuntime, type LedgerRuntime, type MessagingNames } from './runtime';
export { serve } from './serve';
export { startBackgroundWork } from './background';
