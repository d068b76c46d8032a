// Text helpers of src/format.ts: byte counts in binary units.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bytesText } from '../src/format.js';

test('bytesText: binary units, one decimal below 10, none from 10 on; a count that rounds to 1024 moves up a unit', () => {
  assert.equal(bytesText(0), '0 B');
  assert.equal(bytesText(1023), '1023 B');
  assert.equal(bytesText(1024), '1.0 KiB');
  assert.equal(bytesText(637_594), '623 KiB'); // a depth-8 checkpoint: 622.65 KiB
  assert.equal(bytesText(6_134_976), '5.9 MiB'); // a depth-50 checkpoint: 5.851 MiB
  assert.equal(bytesText(300 * 6_134_976), '1.7 GiB'); // 1.714 GiB
  assert.equal(bytesText(10 * 2 ** 20 - 1), '10 MiB'); // 9.99999 MiB: 10.0 would be past the one-decimal range
  assert.equal(bytesText(9.94 * 2 ** 20), '9.9 MiB');
  assert.equal(bytesText(2 ** 20 - 1), '1.0 MiB'); // 1023.999 KiB rounds to 1024
  assert.equal(bytesText(1023.4 * 2 ** 20), '1023 MiB');
  assert.equal(bytesText(4_294_901_760), '4.0 GiB'); // the wasm heap's limit: 4 GiB less 64 KiB
  assert.equal(bytesText(205_520_896), '196 MiB'); // 4·4096·12544 B
  assert.equal(bytesText(5 * 2 ** 40), '5.0 TiB');
});
