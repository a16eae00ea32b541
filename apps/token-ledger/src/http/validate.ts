import { plainToInstance } from 'class-transformer';
import { validateSync, type ValidationError } from 'class-validator';

/** class-validator on a plain object; returns the instance or the list of problems, never throws. */
export function validateInput<T extends object>(
  cls: new () => T,
  input: unknown,
  /** OAuth endpoints must ignore unknown parameters (RFC 6749 §3.1); the admin API refuses them. */
  opts: { rejectUnknown: boolean } = { rejectUnknown: true },
): { ok: true; value: T } | { ok: false; errors: string[] } {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) return { ok: false, errors: ['body must be an object'] };
  const instance = plainToInstance(cls, input);
  const errors = validateSync(instance, { whitelist: true, forbidNonWhitelisted: opts.rejectUnknown, forbidUnknownValues: true });
  return errors.length === 0 ? { ok: true, value: instance } : { ok: false, errors: flatten(errors) };
}

function flatten(errors: ValidationError[], prefix = ''): string[] {
  return errors.flatMap((e) => [
    ...Object.values(e.constraints ?? {}).map((m) => (prefix ? `${prefix}.${m}` : m)),
    ...flatten(e.children ?? [], prefix ? `${prefix}.${e.property}` : e.property),
  ]);
}
