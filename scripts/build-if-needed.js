#!/usr/bin/env node
// `npm start` builds only when a source file (the console's .tsx/.css/.html included) is newer than
// the last build, so restarts are instant.
const { execSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const stamp = path.join(root, 'dist', '.build-stamp');

function newestSource(dir) {
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(full));
    else if (/\.(ts|tsx|css|html)$/.test(entry.name)) newest = Math.max(newest, fs.statSync(full).mtimeMs);
  }
  return newest;
}

const sources = ['apps', 'libs', 'bench'].map((d) => path.join(root, d)).filter(fs.existsSync);
const newest = Math.max(...sources.map(newestSource), fs.statSync(path.join(root, 'tsconfig.json')).mtimeMs);
const built = fs.existsSync(stamp) ? fs.statSync(stamp).mtimeMs : 0;
if (newest > built) {
  process.stderr.write('token-ledger: building (tsc)…\n');
  execSync('npm run --silent build', { cwd: root, stdio: 'inherit' });
  fs.writeFileSync(stamp, new Date().toISOString());
}
