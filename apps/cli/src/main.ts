#!/usr/bin/env node
// First: tracing (when OTEL_* asks for it) must start before pg, kafkajs and Nest are loaded.
import '../../token-ledger/src/tracing/register';
import 'reflect-metadata';
import { parseArgs } from 'node:util';
// Only what every command needs is imported up front; each command loads its own modules, so the
// forensics commands (and --help) do not pay for loading the HTTP app (Nest, Fastify).
import { ConfigError, loadConfig } from '../../token-ledger/src/config/ledger-config';
import { createLogger } from '../../token-ledger/src/http/logger';
import * as apiKeysCommand from './commands/api-keys';
import * as backtestCommand from './commands/backtest';
import { LIFECYCLE_HELP, type LifecycleCommand } from './commands/clients-lifecycle-help';
import { REBUILD_HELP, rebuild } from './commands/rebuild-projections';
import * as replayCommand from './commands/replay';
import * as verifyCommand from './commands/verify';

const USAGE = `token-ledger — event-sourced ledger for OAuth 2.0 refresh tokens

Usage: token-ledger <command> [options]      (npm run cli -- <command> [options])

Commands:
  serve                 run the HTTP API (default when no command is given)
  keys rotate           make a new signing key active; the old one stays published until its tokens expire
  keys seal             seal and MAC a signing key set written before LEDGER_KEK was set (after checking its kids)
  clients add           register a client (see: token-ledger clients add --help)
  api-keys create|list|revoke   scoped API keys for /v1 (see: token-ledger api-keys create --help)
  clients rotate-secret|disable|enable   client lifecycle (see: token-ledger clients disable --help)
  rebuild-projections   rebuild the read models from position 0 (progress bar)
  replay                replay history from the event store (see: token-ledger replay --help)
  verify                check the tamper-evident hash chain (0 intact, 1 tampered, 2 usage)
  backtest              run history through candidate anomaly rules, no side effects (--rules FILE)
  help [command]        show help

Configuration comes from the environment (LEDGER_STORE, LEDGER_DATA_DIR, DATABASE_URL, PORT, …);
see the README's configuration table. Every command takes --help.
`;

const HELP: Record<string, string> = {
  ...LIFECYCLE_HELP,
  'rebuild-projections': REBUILD_HELP,
  replay: replayCommand.HELP,
  verify: verifyCommand.HELP,
  backtest: backtestCommand.HELP,
  'api-keys create': apiKeysCommand.HELP.create,
  'api-keys list': apiKeysCommand.HELP.list,
  'api-keys revoke': apiKeysCommand.HELP.revoke,
  serve: `Usage: token-ledger serve

Runs the HTTP API, the read-model projections, the revocation feed, the anomaly engine, the
expiry sweeper and the subject-revocation reconciler on PORT (default 3000)
against LEDGER_STORE (default: embedded in LEDGER_DATA_DIR).
Stops cleanly on SIGINT/SIGTERM.
`,
  'keys rotate': `Usage: token-ledger keys rotate

Generates a new signing key (LEDGER_SIGNING_ALG, default ES256) and makes it active. The previous key
stays in the JWKS until every access token it signed has expired. Running servers pick the new key up
within 30 seconds.
`,
  'keys seal': `Usage: token-ledger keys seal

With LEDGER_KEK set, the signing key set in the key/value store must be sealed and MACed with it; a
set written before LEDGER_KEK was configured is refused at start-up (someone with database access
could otherwise have added a signing key). Check the kids it prints against your records (or the
published JWKS), then this command seals every plain private key and MACs the whole set with
LEDGER_KEK, in place (same keys). Stop the server first with the embedded store.
`,
  'clients add': `Usage: token-ledger clients add --id ID [--type confidential|public] [--secret S]
                          [--scopes "a b c"] [--grace SECONDS] [--access-ttl S] [--idle-ttl S]
                          [--absolute-ttl S] [--max-families N]

Registers a client (the same as POST /v1/clients). A confidential client without --secret gets a
generated one, printed once.
`,
};

async function main(argv: string[]): Promise<number> {
  const wantsHelp = argv.includes('--help') || argv.includes('-h');
  const words = argv.filter((a) => !a.startsWith('-'));
  const command = words[0] === 'keys' || words[0] === 'clients' || words[0] === 'api-keys' ? `${words[0]} ${words[1] ?? ''}`.trim() : (words[0] ?? 'serve');

  if (command === 'help' || (wantsHelp && (!HELP[command] || words.length === 0))) {
    const topic = words.slice(1).join(' ');
    process.stdout.write(HELP[topic] ?? USAGE);
    return 0;
  }
  if (wantsHelp) {
    process.stdout.write(HELP[command]);
    return 0;
  }
  if (!HELP[command]) {
    process.stderr.write(`token-ledger: unknown command "${command}"\n\n${USAGE}`);
    return 2;
  }

  const config = loadConfig();
  const logger = createLogger(config.logLevel);
  switch (command) {
    case 'serve': {
      const { serve } = await import('../../token-ledger/src/serve');
      await serve(config, logger);
      return -1; // keeps running
    }
    case 'keys seal': {
      if (!config.kek) {
        process.stderr.write('token-ledger keys seal: LEDGER_KEK is not set: there is nothing to seal the key set with\n');
        return 2;
      }
      const [{ openConfiguredStore }, { KeyRing, parseKek }] = await Promise.all([import('../../token-ledger/src/runtime'), import('@token-ledger/crypto')]);
      const kek = parseKek(config.kek);
      const store = await openConfiguredStore(config);
      try {
        const sealed = await KeyRing.sealStored(store.kv, kek);
        process.stdout.write(sealed ? `signing key set version ${sealed.version} sealed and MACed; kids: ${sealed.kids.join(', ')}\n` : 'no signing key set stored yet: nothing to seal\n');
      } finally {
        await store.close();
      }
      return 0;
    }
    case 'keys rotate': {
      const { openRuntime } = await import('../../token-ledger/src/runtime');
      const runtime = await openRuntime(config, logger);
      try {
        const { kid, retired } = await runtime.keyRing.rotate();
        process.stdout.write(`active signing key: ${kid}\nstill published (retired): ${retired.join(', ') || '(none)'}\n`);
      } finally {
        await runtime.close();
      }
      return 0;
    }
    case 'replay':
      return replayCommand.run(argv, config, logger);
    case 'verify':
      return verifyCommand.run(argv, config, logger);
    case 'backtest':
      return backtestCommand.run(argv, config, logger);
    case 'rebuild-projections': {
      const { values } = parseArgs({
        args: argv.slice(1),
        options: { projection: { type: 'string' }, method: { type: 'string' }, 'batch-size': { type: 'string' }, parallel: { type: 'string' } },
        strict: true,
      });
      return rebuild(config, logger, values);
    }
    case 'api-keys create':
    case 'api-keys list':
    case 'api-keys revoke':
      return apiKeysCommand.run(command.slice('api-keys '.length), argv.slice(2), config, logger);
    case 'clients add': {
      const { values } = parseArgs({
        args: argv.slice(2),
        options: {
          id: { type: 'string' },
          type: { type: 'string' },
          secret: { type: 'string' },
          scopes: { type: 'string' },
          grace: { type: 'string' },
          'access-ttl': { type: 'string' },
          'idle-ttl': { type: 'string' },
          'absolute-ttl': { type: 'string' },
          'max-families': { type: 'string' },
        },
        strict: true,
      });
      const { addClient } = await import('./commands/clients-add');
      return addClient(config, logger, values);
    }
    case 'clients rotate-secret':
    case 'clients disable':
    case 'clients enable': {
      const { values } = parseArgs({ args: argv.slice(2), options: { id: { type: 'string' }, overlap: { type: 'string' } }, strict: true });
      const { runClientLifecycle } = await import('./commands/clients-lifecycle');
      return runClientLifecycle(command as LifecycleCommand, config, logger, values);
    }
  }
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof ConfigError) {
      process.stderr.write(`token-ledger: ${error.message}\n`);
      process.exitCode = 78; // EX_CONFIG
    } else {
      process.stderr.write(`token-ledger: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exitCode = 1;
    }
  },
);
