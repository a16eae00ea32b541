#!/usr/bin/env node
'use strict';
// `helm lint` + `helm template` without a helm binary: runs deploy/helm/check/HelmCheck.java, which
// calls Helm's own Go code through helm-java's native library (Maven Central).
//
//   node scripts/helm/render.js CHART_DIR [-f VALUES]... [--set KEY=VALUE]... [--out FILE] [--strict] [--no-lint]
//
// The rendered YAML goes to stdout (or --out), lint messages to stderr. Exit: 0 ok, 1 lint failed,
// 2 render failed (e.g. the chart's `fail`), 64 bad usage, 69 no Java/Maven.
// First run per machine: Maven downloads helm-java (about 30 MB, with Helm as a native library; about
// 20 s on a fresh ~/.m2) and javac compiles the class into
// ~/.cache/token-ledger/helm/<hash of pom + source>; later runs are one `java -cp` (a few seconds).
// Needs Java 17+ with javac (a JDK) and Maven for that first run; only `java` afterwards.

const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFile, spawnSync } = require('node:child_process');

const ROOT = path.resolve(__dirname, '..', '..');
const CHECK_DIR = path.join(ROOT, 'deploy', 'helm', 'check');
const POM = path.join(CHECK_DIR, 'pom.xml');
const SOURCE = path.join(CHECK_DIR, 'src', 'main', 'java', 'HelmCheck.java');
const MAIN_CLASS = 'HelmCheck';

class HelmToolchainError extends Error {}

function cacheRoot(env = process.env) {
  if (env.TOKEN_LEDGER_CACHE) return path.resolve(env.TOKEN_LEDGER_CACHE);
  const xdg = env.XDG_CACHE_HOME ? path.resolve(env.XDG_CACHE_HOME) : path.join(os.homedir(), '.cache');
  return path.join(xdg, 'token-ledger');
}

function jdkTool(name, env = process.env) {
  return env.JAVA_HOME ? path.join(env.JAVA_HOME, 'bin', name) : name;
}

/** Where this pom + source is (or will be) built: a new hash, a new directory. */
function buildDir(env = process.env) {
  const hash = crypto.createHash('sha256').update(fs.readFileSync(POM)).update('\0').update(fs.readFileSync(SOURCE)).digest('hex');
  return path.join(cacheRoot(env), 'helm', hash.slice(0, 16));
}

function isBuilt(dir) {
  return fs.existsSync(path.join(dir, 'classes', `${MAIN_CLASS}.class`)) && fs.existsSync(path.join(dir, 'lib'));
}

function works(command, args) {
  const result = spawnSync(command, args, { encoding: 'utf8' });
  return result.error === undefined && result.status === 0;
}

/**
 * Whether this machine can render: `{ ok: true }`, or `{ ok: false, reason }` naming what is missing
 * (tests skip with the reason unless REQUIRE_BACKENDS names helm).
 */
function toolchain(env = process.env) {
  if (!works(jdkTool('java', env), ['-version'])) return { ok: false, reason: 'no `java` (Java 17+) on PATH or in JAVA_HOME' };
  if (isBuilt(buildDir(env))) return { ok: true };
  if (!works(jdkTool('javac', env), ['-version'])) {
    return { ok: false, reason: 'no `javac` (a JDK, e.g. openjdk-17-jdk-headless) to build deploy/helm/check once' };
  }
  if (!works('mvn', ['--version'])) return { ok: false, reason: 'no `mvn` (Maven) to fetch helm-java once' };
  return { ok: true };
}

/** Builds HelmCheck into the cache unless it is there; returns its directory. Throws HelmToolchainError. */
function ensureBuilt(env = process.env, log = (line) => process.stderr.write(`${line}\n`)) {
  const dir = buildDir(env);
  if (isBuilt(dir)) return dir;
  const ready = toolchain(env);
  if (!ready.ok) throw new HelmToolchainError(ready.reason);
  const started = Date.now();
  log(`helm: resolving helm-java with Maven and compiling ${path.relative(ROOT, SOURCE)} into ${dir} (first run only)…`);
  // Build in a private directory and rename it into place, so concurrent first runs never see half a build.
  const staging = `${dir}.tmp-${process.pid}`;
  fs.rmSync(staging, { recursive: true, force: true });
  fs.mkdirSync(staging, { recursive: true });
  const mvn = spawnSync(
    'mvn',
    ['-B', '--no-transfer-progress', '-Dstyle.color=never', '-f', POM, 'dependency:copy-dependencies', `-DoutputDirectory=${path.join(staging, 'lib')}`, '-DincludeScope=runtime'],
    { encoding: 'utf8', cwd: CHECK_DIR, maxBuffer: 64 * 1024 * 1024 },
  );
  if (mvn.status !== 0) {
    fs.rmSync(staging, { recursive: true, force: true });
    const lines = `${mvn.stdout || ''}${mvn.stderr || ''}`.trim().split('\n');
    const errors = lines.filter((line) => line.startsWith('[ERROR]'));
    throw new HelmToolchainError(`Maven could not resolve helm-java (exit ${mvn.status}); is Maven Central reachable?\n${(errors.length ? errors : lines).slice(-30).join('\n')}`);
  }
  const javac = spawnSync(jdkTool('javac', env), ['-d', path.join(staging, 'classes'), '-cp', path.join(staging, 'lib', '*'), SOURCE], { encoding: 'utf8' });
  if (javac.status !== 0) {
    fs.rmSync(staging, { recursive: true, force: true });
    throw new HelmToolchainError(`javac failed on ${SOURCE}:\n${javac.stderr || javac.stdout || javac.error}`);
  }
  try {
    fs.renameSync(staging, dir);
  } catch (error) {
    // Another run finished first: keep its build.
    fs.rmSync(staging, { recursive: true, force: true });
    if (!isBuilt(dir)) throw error;
  }
  // Builds of older pom/source versions are never used again.
  for (const entry of fs.readdirSync(path.dirname(dir))) {
    if (entry !== path.basename(dir) && /^[0-9a-f]{16}$/.test(entry)) fs.rmSync(path.join(path.dirname(dir), entry), { recursive: true, force: true });
  }
  log(`helm: built in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return dir;
}

/** HelmCheck's arguments for render()'s options. */
function helmCheckArgs({ chart, values = [], set = {}, lint = true, strict = false, out, name, namespace }) {
  const args = [path.resolve(ROOT, chart)];
  if (name) args.push('--name', name);
  if (namespace) args.push('--namespace', namespace);
  for (const file of values) args.push('-f', path.resolve(ROOT, file));
  for (const [key, value] of Object.entries(set)) args.push('--set', `${key}=${value}`);
  if (out) args.push('--out', path.resolve(out));
  if (strict) args.push('--strict');
  if (!lint) args.push('--no-lint');
  return args;
}

function javaArgs(dir, args) {
  const classpath = [path.join(dir, 'classes'), path.join(dir, 'lib', '*')].join(path.delimiter);
  // C1 only and a small heap: the JVM runs for a second or two, the work is in Go.
  return ['-XX:TieredStopAtLevel=1', '-Xmx256m', '-cp', classpath, MAIN_CLASS, ...args];
}

/**
 * Lints and renders a chart: `{ status, stdout, stderr }` of HelmCheck (see the header for the
 * exit codes). `values`: values files (relative to the repository); `set`: { key: value } like --set.
 */
function render(options = {}, env = process.env) {
  return runHelmCheck(ensureBuilt(env), helmCheckArgs(options), env);
}

/** render() without blocking: several renders run side by side (one JVM each). */
function renderAsync(options = {}, env = process.env) {
  const dir = ensureBuilt(env);
  return new Promise((resolve, reject) => {
    execFile(jdkTool('java', env), javaArgs(dir, helmCheckArgs(options)), { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error && typeof error.code !== 'number') return reject(new HelmToolchainError(`could not run java: ${error.message}`));
      resolve({ status: error ? error.code : 0, stdout, stderr });
    });
  });
}

function runHelmCheck(dir, args, env = process.env) {
  const result = spawnSync(jdkTool('java', env), javaArgs(dir, args), { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (result.error) throw new HelmToolchainError(`could not run java: ${result.error.message}`);
  return { status: result.status ?? 1, stdout: result.stdout, stderr: result.stderr };
}

function main(argv) {
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h') {
    process.stderr.write('usage: node scripts/helm/render.js CHART_DIR [-f VALUES]... [--set KEY=VALUE]... [--out FILE] [--strict] [--no-lint]\n');
    process.exit(argv.length === 0 ? 64 : 0);
  }
  let dir;
  try {
    dir = ensureBuilt();
  } catch (error) {
    if (!(error instanceof HelmToolchainError)) throw error;
    process.stderr.write(`helm: ${error.message}\n`);
    process.exit(69);
  }
  // Relative paths are the caller's, as with helm itself.
  const args = argv.map((arg, i) => (i === 0 || ['-f', '--values', '--out'].includes(argv[i - 1]) ? path.resolve(arg) : arg));
  const result = runHelmCheck(dir, args);
  process.stdout.write(result.stdout);
  process.stderr.write(result.stderr);
  process.exit(result.status);
}

module.exports = { HelmToolchainError, buildDir, ensureBuilt, render, renderAsync, toolchain };

if (require.main === module) main(process.argv.slice(2));
