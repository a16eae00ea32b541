import { Injectable, type OnModuleInit } from '@nestjs/common';
import { CommandBus } from '@nestjs/cqrs';
import type { CommandMetadata } from '@token-ledger/envelope';

/** `RotateTokenCommand` → `rotate_token`: a bounded label (one value per command class). */
export function commandName(command: object): string {
  return command.constructor.name
    .replace(/Command$/, '')
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .toLowerCase();
}

/**
 * Gives every command sent on the CommandBus its name in its metadata (`meta.command`, never stored),
 * so what the repository counts (concurrency retries) is labelled by the command without any handler
 * passing it along. A copy of the metadata: a command started inside another with the same metadata
 * object gets its own name and leaves the outer one's alone. Not an AsyncLocalStorage: in Node 20 one
 * turns on a promise hook for every promise in the process, which cost ~27 % of the main thread's CPU a
 * rotation (bench/refresh/README.md).
 */
@Injectable()
export class CommandNames implements OnModuleInit {
  constructor(private readonly bus: CommandBus) {}

  onModuleInit(): void {
    const execute = this.bus.execute.bind(this.bus) as (...args: unknown[]) => unknown;
    this.bus.execute = ((command: { meta?: CommandMetadata }, ...rest: unknown[]) => {
      if (command.meta) command.meta = { ...command.meta, command: commandName(command) };
      return execute(command, ...rest);
    }) as CommandBus['execute'];
  }
}
