// captureNativeStderr swaps file descriptor 2 itself, so each case runs in a child process whose
// stderr is what the case needs (a pipe, a file opened for appending or truncated); the child
// writes to descriptor 2 with fs.writeSync, as native code's fprintf(stderr) does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './fixtures/tmp.js';

const moduleUrl = new URL('../src/engine/native-stderr.js', import.meta.url).href;

/** A child that writes `before`, captures a write of `inside` (or a throw), then writes `after`; stdout: the result as JSON. */
function child(throws: boolean): string {
  return `
import { writeSync } from 'node:fs';
import { captureNativeStderr } from ${JSON.stringify(moduleUrl)};
writeSync(2, 'before\\n');
let result;
try {
  result = captureNativeStderr(() => {
    writeSync(2, 'inside 1\\n');
    writeSync(2, 'inside 2\\n');
    if (${throws}) throw new Error('thrown inside');
    return 42;
  });
} catch (e) {
  result = { thrown: e.message };
}
process.stderr.write('after\\n');
process.stdout.write(JSON.stringify(result));
`;
}

function run(script: string, stderr: 'pipe' | number) {
  return spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', stdio: ['ignore', 'pipe', stderr] });
}

/** As {@link run}, with the child's stderr a pipe (FIFO) made by the shell, as in `mixup … 2>&1 | tee`; `cat` passes it on. */
function runPiped(script: string) {
  return spawnSync('sh', ['-c', '{ "$0" --input-type=module -e "$1" 2>&1 1>&3 3>&- | cat 1>&2; } 3>&1', process.execPath, script], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

const linuxOnly = { skip: process.platform !== 'linux' && 'Linux only' };

test('stderr a pipe: what descriptor 2 gets during the call is returned, not shown; stderr works after', linuxOnly, () => {
  const r = runPiped(child(false));
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { value: 42, text: 'inside 1\ninside 2\n', captured: true });
  assert.equal(r.stderr, 'before\nafter\n');
});

test('the call throws: stderr is restored first and the error passes through', linuxOnly, () => {
  const r = runPiped(child(true));
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { thrown: 'thrown inside' });
  assert.equal(r.stderr, 'before\nafter\n');
});

test('stderr a socket (what Node gives a child for "pipe"): cannot be reopened, so the call runs uncaptured', linuxOnly, () => {
  const r = run(child(false), 'pipe');
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { value: 42, text: '', captured: false });
  assert.equal(r.stderr, 'before\ninside 1\ninside 2\nafter\n');
});

test('stderr a file: captured when opened for appending (>>), left alone when truncated (>: offset shared with stdout)', linuxOnly, () => {
  const dir = tempDir('mixup-native-stderr-');
  const appended = join(dir, 'appended.log');
  let fd = openSync(appended, 'a');
  let r = run(child(false), fd);
  closeSync(fd);
  assert.equal(r.status, 0);
  assert.deepEqual(JSON.parse(r.stdout), { value: 42, text: 'inside 1\ninside 2\n', captured: true });
  assert.equal(readFileSync(appended, 'utf8'), 'before\nafter\n');

  const truncated = join(dir, 'truncated.log');
  fd = openSync(truncated, 'w');
  r = run(child(false), fd);
  closeSync(fd);
  assert.equal(r.status, 0);
  assert.deepEqual(JSON.parse(r.stdout), { value: 42, text: '', captured: false });
  assert.equal(readFileSync(truncated, 'utf8'), 'before\ninside 1\ninside 2\nafter\n');
  // The capture file is unlinked as soon as it is made: only the two logs are here.
  assert.deepEqual(readdirSync(dir).sort(), ['appended.log', 'truncated.log']);
});
