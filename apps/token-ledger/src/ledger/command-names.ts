import { AsyncLocalStorage } from 'node:async_hooks';
import { Injectable, type OnModuleInit } from '@nestjs/common';
import { CommandBus } from '@nestjs/cqrs';

const current = new AsyncLocalStorage<string>();

/** `RotateTokenCommand` → `rotate_token`: a bounded label (one value per command class). */
export function commandName(command: object): string {
  return command.constructor.name
    .replace(/Command$/, '')
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .toLowerCase();
}

/** The command being executed where this is called (the innermost one), or `other` outside any. */
export function currentCommandName(): string {
  return current.getStore() ?? 'other';
}

/**
 * Runs every command sent on the CommandBus with its name in scope, so what the repository counts
 * (concurrency retries) is labelled by the command without any handler passing it along.
 */
@Injectable()
export class CommandNames implements OnModuleInit {
  constructor(private readonly bus: CommandBus) {}

  onModuleInit(): void {
    const execute = this.bus.execute.bind(this.bus);
    this.bus.execute = ((command: object, ...rest: unknown[]) =>
      current.run(commandName(command), () => (execute as (...args: unknown[]) => unknown)(command, ...rest))) as CommandBus['execute'];
  }
}
