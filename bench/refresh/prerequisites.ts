import { execFile } from 'node:child_process';
import * as path from 'node:path';

/** A target cannot run here (no Java, no Redis, …): the row is SKIPPED with this reason, not FAILED. */
export class PrerequisiteMissing extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'PrerequisiteMissing';
  }
}

/** Runs a command; resolves with its stdout+stderr, rejects with the output in the message. */
export function run(command: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { cwd: opts.cwd, env: opts.env, timeout: opts.timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const out = `${stdout}${stderr}`;
      if (err) {
        const e = err as NodeJS.ErrnoException;
        reject(Object.assign(new Error(`${command} ${args.join(' ')}: ${e.code === 'ENOENT' ? 'not found' : e.message}\n${out.slice(-2000)}`), { code: e.code }));
      } else {
        resolve(out);
      }
    });
  });
}

/** The java to run (JAVA_HOME/bin/java, else java on PATH) and its feature version, or PrerequisiteMissing. */
export async function findJava(minVersion: number): Promise<{ java: string; version: number; description: string }> {
  const java = process.env.JAVA_HOME ? path.join(process.env.JAVA_HOME, 'bin', 'java') : 'java';
  let out: string;
  try {
    out = await run(java, ['-version'], { timeoutMs: 30_000 });
  } catch (err) {
    throw new PrerequisiteMissing(`no Java ${minVersion}+ (${java}: ${(err as Error).message.split('\n')[0]})`);
  }
  const m = /version "(\d+)(?:\.(\d+))?/.exec(out);
  const version = m ? (m[1] === '1' ? Number(m[2]) : Number(m[1])) : Number.NaN;
  if (!(version >= minVersion)) throw new PrerequisiteMissing(`Java ${minVersion}+ needed, ${java} is ${m?.[0] ?? 'unknown'}`);
  return { java, version, description: out.split('\n')[0].trim() };
}
