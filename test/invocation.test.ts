/**
 * The command printed for the user to run again (`resume with: ...`) works from any directory: the
 * short name only when the first `mixup` on the PATH is the running program, else its absolute path.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { mixupCommand, shellWord } from '../src/invocation.js';
import { tempDir } from './fixtures/tmp.js';

test('mixupCommand: "mixup" when the PATH runs this program (npm link), else its absolute path, quoted for sh', () => {
  const dir = tempDir('mixup-invocation-');
  const checkout = join(dir, 'my checkout');
  mkdirSync(join(checkout, 'bin'), { recursive: true });
  const script = join(checkout, 'bin', 'mixup');
  writeFileSync(script, '#!/usr/bin/env node\n');
  chmodSync(script, 0o755);
  const linked = join(dir, 'linked');
  mkdirSync(linked);
  symlinkSync(script, join(linked, 'mixup'));
  const other = join(dir, 'other');
  mkdirSync(other);
  writeFileSync(join(other, 'mixup'), '#!/bin/sh\n');
  chmodSync(join(other, 'mixup'), 0o755);
  const empty = join(dir, 'empty');
  mkdirSync(empty);
  const quoted = `'${script}'`;
  assert.equal(mixupCommand(script, `${empty}:${linked}`), 'mixup');
  assert.equal(mixupCommand(script, `${other}:${linked}`), quoted); // the shell would run the other one
  assert.equal(mixupCommand(script, empty), quoted);
  assert.equal(mixupCommand(script, undefined), quoted);
  assert.equal(shellWord('/home/me/runs/mixup'), '/home/me/runs/mixup');
  assert.equal(shellWord("/tmp/it's here"), `'/tmp/it'\\''s here'`);
});
