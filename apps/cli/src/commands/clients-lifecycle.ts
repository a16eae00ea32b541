import { CommandBus } from '@nestjs/cqrs';
import { DomainError } from '@token-ledger/domain';
import type { Logger } from 'pino';
import { createApp, openRuntime, type LedgerConfig } from '../../../token-ledger/src';
import { DisableClientCommand, EnableClientCommand } from '../../../token-ledger/src/ledger/commands/disable-client.command';
import { RotateClientSecretCommand } from '../../../token-ledger/src/ledger/commands/rotate-client-secret.command';
import { LedgerError } from '../../../token-ledger/src/ledger/ledger-error';
import type { LifecycleCommand } from './clients-lifecycle-help';

/** `clients rotate-secret|disable|enable`: the admin API's commands, run in-process against the configured store. */
export async function runClientLifecycle(command: LifecycleCommand, config: LedgerConfig, logger: Logger, values: Record<string, string | undefined>): Promise<number> {
  const name = `token-ledger ${command}`;
  if (!values.id) {
    process.stderr.write(`${name}: --id is required (see --help)\n`);
    return 2;
  }
  const overlap = values.overlap === undefined ? 0 : Number(values.overlap);
  if (!Number.isInteger(overlap) || overlap < 0) {
    process.stderr.write(`${name}: --overlap must be a whole number of seconds\n`);
    return 2;
  }
  const runtime = await openRuntime(config, logger);
  const app = await createApp(runtime);
  const bus = app.get(CommandBus);
  const meta = { actor: 'cli' };
  try {
    if (command === 'clients rotate-secret') {
      const { client, secret } = await bus.execute(new RotateClientSecretCommand(values.id, overlap, meta));
      process.stdout.write(`rotated the secret of ${client.clientId}${overlap > 0 ? `; the old one works for ${overlap} s more` : ''}\n`);
      process.stdout.write(`client secret (shown once): ${secret}\n`);
    } else {
      const change = await bus.execute(command === 'clients disable' ? new DisableClientCommand(values.id, false, meta) : new EnableClientCommand(values.id, meta));
      const state = change.client.disabled ? 'disabled' : 'enabled';
      process.stdout.write(change.changed ? `${change.client.clientId} is now ${state}\n` : `${change.client.clientId} was already ${state}\n`);
    }
    return 0;
  } catch (error) {
    // Unknown client, public client, bad overlap: the messages are meant for the operator.
    if (error instanceof LedgerError || error instanceof DomainError) {
      process.stderr.write(`${name}: ${error.message}\n`);
      return 1;
    }
    throw error;
  } finally {
    await app.close();
    await runtime.close();
  }
}
