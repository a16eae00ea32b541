import type { CommandBus } from '@nestjs/cqrs';
import type { CommandMetadata } from '@token-ledger/envelope';
import { CommandNames } from './command-names';

class RevokeSubjectCommand {
  constructor(readonly meta: CommandMetadata) {}
}
class RevokeFamilyCommand {
  constructor(readonly meta: CommandMetadata) {}
}

describe('CommandNames', () => {
  it('names each command in its own copy of the metadata; a nested command with the same metadata leaves the outer name alone', async () => {
    const seen: Array<[string, string | undefined]> = [];
    const bus = {
      execute: async (command: { meta: CommandMetadata }): Promise<void> => {
        seen.push([command.constructor.name, command.meta.command]);
        if (command instanceof RevokeSubjectCommand) {
          await Promise.all([bus.execute(new RevokeFamilyCommand(command.meta)), bus.execute(new RevokeFamilyCommand(command.meta))]);
          seen.push(['after', command.meta.command]);
        }
      },
    };
    new CommandNames(bus as unknown as CommandBus).onModuleInit();
    const meta: CommandMetadata = { actor: 'admin', correlationId: 'c-1' };
    await bus.execute(new RevokeSubjectCommand(meta));
    expect(seen).toEqual([
      ['RevokeSubjectCommand', 'revoke_subject'],
      ['RevokeFamilyCommand', 'revoke_family'],
      ['RevokeFamilyCommand', 'revoke_family'],
      ['after', 'revoke_subject'],
    ]);
    expect(meta).toEqual({ actor: 'admin', correlationId: 'c-1' }); // the caller's object is not changed
  });
});
