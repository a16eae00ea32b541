/**
 * Test support: a fresh embedded data directory whose PGlite cluster is already initialised and
 * migrated, copied from a template made once per machine (per PGlite version and schema).
 *
 * Why: PGlite's initdb is the slowest part of opening a new embedded store (seconds, tens of
 * seconds on a loaded machine), and the e2e suites open dozens of them. Opening a copy of an
 * initialised cluster skips initdb and the migration. Each directory is still its own cluster, so
 * no test sees another's data. Not exported from the lib's index: tests import it by path.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { EmbeddedEventStore } from '../embedded-event-store';
import { schemaScript } from '../sql-schema';

let template: Promise<string> | undefined;

/** The template's pgdata directory, made on first use (concurrent jest workers race safely). */
function templatePgdata(): Promise<string> {
  template ??= makeTemplate().catch((error: unknown) => {
    template = undefined;
    throw error;
  });
  return template;
}

async function makeTemplate(): Promise<string> {
  const nativeRequire = process.getBuiltinModule('node:module').createRequire(__filename);
  // The package's exports hide package.json: find it above the resolved entry point.
  const entry = nativeRequire.resolve('@electric-sql/pglite');
  const pkgDir = entry.slice(0, entry.lastIndexOf(`${path.sep}pglite${path.sep}`) + `${path.sep}pglite`.length);
  const pgliteVersion = (JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8')) as { version: string }).version;
  const key = createHash('sha256').update(`${pgliteVersion}\0${schemaScript('public')}`).digest('hex').slice(0, 16);
  const final = path.join(os.tmpdir(), `tl-pglite-template-${key}`);
  if (fs.existsSync(path.join(final, 'ready'))) return path.join(final, 'pgdata');

  const building = fs.mkdtempSync(path.join(os.tmpdir(), `tl-pglite-template-${key}-build-`));
  const store = await EmbeddedEventStore.open({ dataDir: building });
  await store.close();
  fs.rmSync(path.join(building, 'token-ledger.lock'), { force: true });
  fs.writeFileSync(path.join(building, 'ready'), '');
  try {
    // Atomic: a reader sees either no template or a complete one.
    fs.renameSync(building, final);
  } catch (error) {
    // Another worker got there first: use theirs.
    fs.rmSync(building, { recursive: true, force: true });
    if (!fs.existsSync(path.join(final, 'ready'))) throw error;
  }
  return path.join(final, 'pgdata');
}

/** A new directory under the OS temp dir (named `prefix…`) holding a ready embedded store's cluster. */
export async function freshEmbeddedDataDir(prefix = 'tl-embedded-'): Promise<string> {
  const pgdata = await templatePgdata();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  // Copy-on-write where the file system can (reflink), a plain copy elsewhere.
  fs.cpSync(pgdata, path.join(dir, 'pgdata'), { recursive: true, mode: fs.constants.COPYFILE_FICLONE });
  return dir;
}
