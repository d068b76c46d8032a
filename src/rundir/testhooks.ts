/**
 * Test-only hooks of the run directory's crash-safe writes: points where a child process started by
 * test/signals.test.ts kills itself (`MIXUP_TEST_CRASH_AT`) or waits for a signal
 * (`MIXUP_TEST_PAUSE_AT`, `MIXUP_TEST_PAUSE_FILE`). Without those variables every hook does nothing.
 */
import { existsSync, writeFileSync } from 'node:fs';

/**
 * Test hook for the crash tests (test/signals.test.ts): when the environment variable
 * `MIXUP_TEST_CRASH_AT` is `point` or `point:detail`, the process kills itself with SIGKILL right
 * here, exactly as `kill -9` would. One point exists: `checkpoint-before-rename[:<checkpoint name>]`
 * (all files of a checkpoint written into its temporary directory, not yet renamed into place).
 */
export function crashPoint(point: string, detail: string): void {
  if (hookMatches('MIXUP_TEST_CRASH_AT', point, detail)) process.kill(process.pid, 'SIGKILL');
}

/**
 * Test hook for the signal tests (test/signals.test.ts): when `MIXUP_TEST_PAUSE_AT` is `point` or
 * `point:detail` and `MIXUP_TEST_PAUSE_FILE` names a file, the process creates that file (holding its
 * pid) and waits here, with its event loop turning (signal handlers run), until the file is removed
 * or PAUSE_LIMIT_MS have passed; then it goes on. So a test can send a signal at exactly this point.
 * One point exists: `checkpoint-before-write[:<checkpoint name>]` (the temporary directory of a
 * checkpoint made, nothing written into it yet).
 */
export async function pausePoint(point: string, detail: string): Promise<void> {
  const file = process.env['MIXUP_TEST_PAUSE_FILE'];
  if (!file || !hookMatches('MIXUP_TEST_PAUSE_AT', point, detail)) return;
  writeFileSync(file, `${process.pid}\n`);
  const until = performance.now() + PAUSE_LIMIT_MS;
  while (existsSync(file) && performance.now() < until) await new Promise((r) => setTimeout(r, 5));
}

/** The longest a {@link pausePoint} waits (ms), so that a child its test forgot cannot hang for ever. */
const PAUSE_LIMIT_MS = 60_000;

/** Whether the test-hook variable `name` is `point` or `point:detail`. */
function hookMatches(name: string, point: string, detail: string): boolean {
  const want = process.env[name];
  return want === point || want === `${point}:${detail}`;
}
