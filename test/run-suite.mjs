#!/usr/bin/env node
/**
 * `npm test`'s runner: runs the compiled suite (`node --test dist/test/`) once, with TMPDIR pointing
 * at a fresh private directory, and fails when the tests leave anything in it. Every test must
 * remove the temporary directories it makes, also when it fails; this is the check that they do,
 * at no extra cost (the suite runs once). The private directory itself is removed afterwards, so
 * even a failing run leaves nothing in the system temp dir.
 *
 * Arguments are passed on to `node --test` (default: `--test-concurrency=2 dist/test/*.test.js`), e.g.
 * `node test/run-suite.mjs dist/test/report.test.js`.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Files that may stay: the wasm pthread worker script (src/engine/tfjs/kernels/wasm_threads.ts) is a cache named
 * by the hash of its content, written once and shared by every run, not a leftover.
 */
const ALLOWED = [/^mixup-tfjs-wasm-pthread-worker-[0-9a-f]+\.cjs$/];

const args = process.argv.slice(2);
// The compiled test files themselves (a directory argument would also run test/fixtures/*.js as tests).
const files = () => readdirSync('dist/test').filter((n) => n.endsWith('.test.js')).sort().map((n) => join('dist/test', n));
const testArgs = args.length > 0 ? args : ['--test-concurrency=2', ...files()];
const tmp = mkdtempSync(join(tmpdir(), 'mixup-test-run-'));
let code;
try {
  const r = spawnSync(process.execPath, ['--test', ...testArgs], { stdio: 'inherit', env: { ...process.env, TMPDIR: tmp, TMP: tmp, TEMP: tmp } });
  code = r.status ?? 1;
  const left = readdirSync(tmp).filter((n) => !ALLOWED.some((re) => re.test(n)));
  if (left.length > 0) {
    process.stderr.write(`\ntest suite left ${left.length} entr${left.length === 1 ? 'y' : 'ies'} in its temp dir (every test must remove what it makes, also when it fails):\n`);
    for (const n of left.sort()) process.stderr.write(`  ${n}\n`);
    code = code || 1;
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
process.exit(code);
