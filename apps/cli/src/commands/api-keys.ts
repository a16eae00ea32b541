import { parseArgs } from 'node:util';
import type { Logger } from 'pino';
import type { LedgerConfig } from '../../../token-ledger/src/config/ledger-config';
import type { OutStream } from './progress';

export const HELP = {
  create: `Usage: token-ledger api-keys create --name NAME --scopes "SCOPE …" [--expires-at ISO-8601]

Creates an API key for /v1 (the same as POST /v1/api-keys) and prints it once: only its keyed hash
is stored. Scopes: families:issue families:revoke subjects:revoke clients:write audit:read
revocations:read api-keys:write admin (admin grants all). A resource server reading the revocation
stream needs only revocations:read.
Exit codes: 0 created, 1 refused (bad name, scope or expiry), 2 usage.
`,
  list: `Usage: token-ledger api-keys list

Lists the API keys, newest first: id, status (active, revoked, expired), scopes, name, created and
expiry times. Never shows a key. Brings the read models up to date first.
`,
  revoke: `Usage: token-ledger api-keys revoke KEY_ID

Revokes an API key (the same as POST /v1/api-keys/{keyId}/revoke); every instance refuses it at once.
Exit codes: 0 revoked (or already revoked), 1 no such key, 2 usage.
`,
};

const ACTOR = 'cli';
/** How long `list` waits for the read models to catch up with the store. */
const CATCH_UP_MS = 60_000;

const parse = (args: string[]) =>
  parseArgs({ args, options: { name: { type: 'string' }, scopes: { type: 'string' }, 'expires-at': { type: 'string' } }, allowPositionals: true, strict: true });

/** `api-keys create|list|revoke`, run in-process against the configured store like `clients add`. */
export async function run(
  sub: string,
  argv: string[],
  config: LedgerConfig,
  logger: Logger,
  io: { stdout: OutStream; stderr: OutStream } = { stdout: process.stdout, stderr: process.stderr },
): Promise<number> {
  const usage = (message: string) => {
    io.stderr.write(`token-ledger api-keys ${sub}: ${message} (see --help)\n`);
    return 2;
  };
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (error) {
    return usage((error as Error).message);
  }
  const { values, positionals } = parsed;
  let expiresAt: number | undefined;
  if (sub === 'create') {
    if (!values.name) return usage('--name is required');
    if (!values.scopes) return usage('--scopes is required');
    if (positionals.length > 0) return usage(`unexpected argument ${positionals[0]}`);
    if (values['expires-at'] !== undefined) {
      expiresAt = Date.parse(values['expires-at']);
      if (Number.isNaN(expiresAt) || !/T.*(Z|[+-]\d\d:\d\d)$/.test(values['expires-at'])) return usage('--expires-at must be an ISO-8601 instant with offset, e.g. 2026-01-01T00:00:00Z');
    }
  } else if (sub === 'revoke') {
    if (positionals.length !== 1) return usage('exactly one KEY_ID is required');
  } else if (positionals.length > 0 || Object.keys(values).length > 0) {
    return usage('takes no arguments');
  }

  // Loaded here, not at the top: --help and the other commands do not pay for Nest and Fastify.
  const { CommandBus, QueryBus } = await import('@nestjs/cqrs');
  const { DomainError } = await import('@token-ledger/domain');
  const { decodeCursor } = await import('@token-ledger/projections');
  const { createApp, openRuntime } = await import('../../../token-ledger/src');
  const { ListApiKeysQuery } = await import('../../../token-ledger/src/api-keys/list-api-keys.query');
  const { CreateApiKeyCommand } = await import('../../../token-ledger/src/ledger/commands/create-api-key.command');
  const { RevokeApiKeyCommand } = await import('../../../token-ledger/src/ledger/commands/revoke-api-key.command');
  const { LedgerError } = await import('../../../token-ledger/src/ledger/ledger-error');
  const runtime = await openRuntime(config, logger);
  const app = await createApp(runtime);
  try {
    if (sub === 'create') {
      const created = await app.get(CommandBus).execute(
        new CreateApiKeyCommand({ name: values.name!, scopes: values.scopes!.split(/\s+/).filter(Boolean), expiresAt }, { actor: ACTOR }),
      );
      const s = created.state;
      io.stdout.write(`created ${s.keyId} (${s.scopes.join(' ')})${s.expiresAt === null ? '' : `, expires ${new Date(s.expiresAt).toISOString()}`}\n`);
      io.stdout.write(`API key (shown once): ${created.key}\n`);
      return 0;
    }
    if (sub === 'revoke') {
      const outcome = await app.get(CommandBus).execute(new RevokeApiKeyCommand(positionals[0], { actor: ACTOR }));
      io.stdout.write(outcome.revoked ? `revoked ${outcome.state.keyId}\n` : `${outcome.state.keyId} was already revoked\n`);
      return 0;
    }
    const runner = runtime.readModels.runner;
    await runner.start();
    try {
      if (!(await runner.waitFor(await runtime.store.headPosition(), CATCH_UP_MS))) throw new Error('the read models did not catch up with the store in time');
      let cursor: number | undefined;
      io.stdout.write('KEY ID\tSTATUS\tSCOPES\tNAME\tCREATED\tEXPIRES\n');
      for (;;) {
        const { value } = await app.get(QueryBus).execute(new ListApiKeysQuery({ cursor, limit: 500 }));
        for (const k of value.items) io.stdout.write(`${k.keyId}\t${k.status}\t${k.scopes.join(' ')}\t${k.name}\t${k.createdAt}\t${k.expiresAt ?? '-'}\n`);
        if (!value.nextCursor) break;
        cursor = decodeCursor(value.nextCursor) ?? undefined;
      }
      return 0;
    } finally {
      await runner.stop();
    }
  } catch (error) {
    // Refused input or an unknown key: messages meant for the operator.
    if (error instanceof LedgerError || error instanceof DomainError) {
      io.stderr.write(`token-ledger api-keys ${sub}: ${error.message}\n`);
      return 1;
    }
    throw error;
  } finally {
    await app.close();
    await runtime.close();
  }
}
