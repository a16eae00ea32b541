import { CommandBus } from '@nestjs/cqrs';
import { DomainError } from '@token-ledger/domain';
import type { Logger } from 'pino';
import { createApp, openRuntime, type LedgerConfig } from '../../../token-ledger/src';
import { RegisterClientCommand } from '../../../token-ledger/src/ledger/commands/register-client.command';
import { LedgerError } from '../../../token-ledger/src/ledger/ledger-error';

/** `clients add`: the same command as POST /v1/clients, run in-process against the configured store. */
export async function addClient(config: LedgerConfig, logger: Logger, values: Record<string, string | undefined>): Promise<number> {
  if (!values.id) {
    process.stderr.write('token-ledger clients add: --id is required (see --help)\n');
    return 2;
  }
  const num = (v: string | undefined) => (v === undefined ? undefined : Number(v));
  const input = {
    clientId: values.id,
    type: values.type,
    secret: values.secret,
    allowedScopes: values.scopes?.split(/\s+/).filter(Boolean),
    reuseGraceSeconds: num(values.grace),
    accessTokenTtl: num(values['access-ttl']),
    refreshIdleTtl: num(values['idle-ttl']),
    refreshAbsoluteTtl: num(values['absolute-ttl']),
    maxFamiliesPerSubject: num(values['max-families']),
  };
  const runtime = await openRuntime(config, logger);
  const app = await createApp(runtime);
  try {
    const { client, generatedSecret } = await app.get(CommandBus).execute(new RegisterClientCommand(
      Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined)),
      { actor: 'cli' },
    ));
    process.stdout.write(`registered ${client.clientId} (${client.type})\n`);
    if (generatedSecret) process.stdout.write(`client secret (shown once): ${generatedSecret}\n`);
    return 0;
  } catch (error) {
    // An invalid registration, or the id is taken: both messages are meant for the operator.
    if (error instanceof LedgerError || error instanceof DomainError) {
      process.stderr.write(`token-ledger clients add: ${error.message}\n`);
      return 1;
    }
    throw error;
  } finally {
    await app.close();
    await runtime.close();
  }
}
