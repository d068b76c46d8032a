import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { UserError } from '../src/errors.js';
import { downloadFile, ensureDir, md5File, type ProgressSink } from '../src/data/download.js';
import { cifar10Files, CIFAR10_BINARY_MD5, CIFAR10_BINARY_SIZE, type RemoteFile } from '../src/data/published.js';
import { tempDir } from './fixtures/tmp.js';
import { runMixupAsync } from './fixtures/cli.js';

/** Deterministic bytes that start like a RecordIO file (magic, then a length word), length a multiple of 4. */
function fixtureBytes(n: number, seed = 1): Buffer {
  const b = Buffer.alloc(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  b.writeUInt32LE(0xced7230a, 0);
  b.writeUInt32LE(n - 8, 4);
  return b;
}

interface ServerOptions {
  /** path → content. */
  files: Record<string, Buffer>;
  /** Cut the connection of the first (n) responses after this many body bytes. */
  cutAt?: number;
  cutTimes?: number;
  /** Answer 200 with the whole file even when a Range is asked. */
  ignoreRange?: boolean;
}

/** A local HTTP server on 127.0.0.1 (port 0) serving fixtures, with Range support, that can cut transfers. */
async function serve(opts: ServerOptions): Promise<{ base: string; requests: { path: string; range: string | null }[]; close: () => Promise<void> }> {
  const requests: { path: string; range: string | null }[] = [];
  let cuts = opts.cutTimes ?? (opts.cutAt !== undefined ? 1 : 0);
  const server: Server = createServer((req, res) => {
    const path = req.url ?? '/';
    const range = req.headers.range ?? null;
    requests.push({ path, range });
    const body = opts.files[path];
    if (!body) {
      res.writeHead(404).end('not found');
      return;
    }
    let start = 0;
    const m = range && !opts.ignoreRange ? /^bytes=(\d+)-$/.exec(range) : null;
    if (m) {
      start = Number(m[1]);
      if (start >= body.length) {
        res.writeHead(416, { 'Content-Range': `bytes */${body.length}` }).end();
        return;
      }
      res.writeHead(206, { 'Content-Length': body.length - start, 'Content-Range': `bytes ${start}-${body.length - 1}/${body.length}` });
    } else {
      res.writeHead(200, { 'Content-Length': body.length });
    }
    const rest = body.subarray(start);
    if (cuts > 0 && opts.cutAt !== undefined && opts.cutAt - start < rest.length) {
      cuts--;
      res.write(rest.subarray(0, opts.cutAt - start), () => res.socket?.destroy());
      return;
    }
    res.end(rest);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    base: `http://127.0.0.1:${port}/`,
    requests,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');
const tmp = () => tempDir('mixup-dl-');

function recordingProgress(): ProgressSink & { starts: [number | null, number][]; last: number } {
  const p = {
    starts: [] as [number | null, number][],
    last: 0,
    start(_name: string, total: number | null, offset: number) {
      p.starts.push([total, offset]);
    },
    update(bytes: number) {
      p.last = bytes;
    },
    stop() {},
  };
  return p;
}

test('published files: the binary archive with its md5 and size, the .rec pair with a structural check', () => {
  assert.deepEqual(cifar10Files('bin'), [
    {
      name: 'cifar-10-binary.tar.gz',
      url: 'https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz',
      size: 170052171,
      md5: 'c32a1d4ab5d03f1284b67883e8d87530',
      check: null,
    },
  ]);
  assert.deepEqual(
    cifar10Files('rec', 'http://mirror.example/cifar').map((f) => [f.name, f.url, f.size, f.md5, f.check]),
    [
      ['cifar10_train.rec', 'http://mirror.example/cifar/cifar10_train.rec', null, null, 'recordio'],
      ['cifar10_val.rec', 'http://mirror.example/cifar/cifar10_val.rec', null, null, 'recordio'],
    ],
  );
  assert.equal(CIFAR10_BINARY_MD5, 'c32a1d4ab5d03f1284b67883e8d87530');
  assert.equal(CIFAR10_BINARY_SIZE, 170052171);
});

test('a transfer cut off half-way is resumed with a Range request in the same run', async () => {
  const body = fixtureBytes(200_000);
  const srv = await serve({ files: { '/f.bin': body }, cutAt: 100_000 });
  try {
    const dir = tmp();
    const f: RemoteFile = { name: 'f.bin', url: srv.base + 'f.bin', size: body.length, md5: md5(body), check: null };
    const progress = recordingProgress();
    const logs: string[] = [];
    assert.equal(await downloadFile(f, dir, { retryDelayMs: 0, progress, log: (l) => logs.push(l) }), 'downloaded');
    assert.deepEqual(srv.requests, [
      { path: '/f.bin', range: null },
      { path: '/f.bin', range: 'bytes=100000-' },
    ]);
    assert.deepEqual(progress.starts, [
      [200_000, 0],
      [200_000, 100_000],
    ]);
    assert.equal(progress.last, 200_000);
    assert.ok(readFileSync(join(dir, 'f.bin')).equals(body));
    assert.ok(!existsSync(join(dir, 'f.bin.part')));
    assert.match(logs[0]!, /^f\.bin: transfer cut off at 98 KiB of 195 KiB \(.+\); resuming \(1\/3\)$/);
    assert.equal(logs[1], 'f.bin: resuming at 98 KiB');
    assert.equal(logs[2], `${join(dir, 'f.bin')}: 200000 bytes, md5 ok`);
  } finally {
    await srv.close();
  }
});

test('cut off with no tries left: one-line error (exit 1), .part kept; the next run resumes from it', async () => {
  const body = fixtureBytes(120_000, 7);
  const srv = await serve({ files: { '/x.rec': body }, cutAt: 50_000 });
  try {
    const dir = tmp();
    const f: RemoteFile = { name: 'x.rec', url: srv.base + 'x.rec', size: null, md5: null, check: 'recordio' };
    await assert.rejects(downloadFile(f, dir, { retries: 0 }), (e: unknown) => {
      assert.ok(e instanceof UserError);
      assert.equal(e.exitCode, 1);
      assert.ok(!e.message.includes('\n'));
      assert.match(e.message, /^http:\/\/127\.0\.0\.1:\d+\/x\.rec: download cut off at 50000 of 120000 bytes after 1 tries \(.+\); run the same command again to resume from .*x\.rec\.part$/);
      return true;
    });
    assert.equal(statSync(join(dir, 'x.rec.part')).size, 50_000);
    assert.ok(!existsSync(join(dir, 'x.rec')));
    assert.equal(await downloadFile(f, dir, { retries: 0 }), 'downloaded');
    assert.equal(srv.requests[1]!.range, 'bytes=50000-');
    assert.ok(readFileSync(join(dir, 'x.rec')).equals(body));
    assert.ok(!existsSync(join(dir, 'x.rec.part')));
  } finally {
    await srv.close();
  }
});

test('checksum mismatch: one-line error with exit 2, the bad file is deleted and never takes the name', async () => {
  const body = fixtureBytes(10_000);
  const srv = await serve({ files: { '/c.tar.gz': body } });
  try {
    const dir = tmp();
    const wrong = md5(Buffer.from('something else'));
    const f: RemoteFile = { name: 'c.tar.gz', url: srv.base + 'c.tar.gz', size: body.length, md5: wrong, check: null };
    await assert.rejects(downloadFile(f, dir, { retryDelayMs: 0 }), (e: unknown) => {
      assert.ok(e instanceof UserError);
      assert.equal(e.exitCode, 2);
      assert.equal(
        e.message,
        `c.tar.gz from ${f.url}: md5 is ${md5(body)}, expected the published ${wrong}; the download was deleted, run again to fetch it anew`,
      );
      return true;
    });
    assert.ok(!existsSync(join(dir, 'c.tar.gz')));
    assert.ok(!existsSync(join(dir, 'c.tar.gz.part')));
  } finally {
    await srv.close();
  }
});

test('a file that is not RecordIO fails the .rec check', async () => {
  const body = Buffer.from('<html>moved</html>');
  const srv = await serve({ files: { '/t.rec': body } });
  try {
    const dir = tmp();
    const f: RemoteFile = { name: 't.rec', url: srv.base + 't.rec', size: null, md5: null, check: 'recordio' };
    await assert.rejects(downloadFile(f, dir), {
      message: `t.rec from ${f.url}: does not start with the RecordIO magic 0xced7230a (first bytes 3c68746d); the download was deleted, run again to fetch it anew`,
    });
    assert.ok(!existsSync(join(dir, 't.rec')));
  } finally {
    await srv.close();
  }
});

test('an already complete file is not downloaded again; a bad existing file is an error and left alone', async () => {
  const body = fixtureBytes(4_000);
  const srv = await serve({ files: { '/g.bin': body } });
  try {
    const dir = tmp();
    const f: RemoteFile = { name: 'g.bin', url: srv.base + 'g.bin', size: body.length, md5: md5(body), check: null };
    writeFileSync(join(dir, 'g.bin'), body);
    const logs: string[] = [];
    assert.equal(await downloadFile(f, dir, { log: (l) => logs.push(l) }), 'present');
    assert.deepEqual(srv.requests, []);
    assert.deepEqual(logs, [`${join(dir, 'g.bin')}: present and md5 matches; not downloaded again`]);

    const corrupt = Buffer.from(body);
    corrupt[100] = corrupt[100]! ^ 0xff;
    writeFileSync(join(dir, 'g.bin'), corrupt);
    await assert.rejects(downloadFile(f, dir), (e: unknown) => {
      assert.ok(e instanceof UserError && e.exitCode === 2);
      assert.equal(
        e.message,
        `${join(dir, 'g.bin')}: exists but md5 is ${md5(corrupt)}, expected the published ${md5(body)}; not overwritten: move it away and run again to download it`,
      );
      return true;
    });
    assert.ok(readFileSync(join(dir, 'g.bin')).equals(corrupt));
    assert.deepEqual(srv.requests, []);
    assert.equal(await md5File(join(dir, 'g.bin')), md5(corrupt));
  } finally {
    await srv.close();
  }
});

test('a server that ignores Range: the partial file is started over', async () => {
  const body = fixtureBytes(30_000);
  const srv = await serve({ files: { '/r.bin': body }, ignoreRange: true });
  try {
    const dir = tmp();
    writeFileSync(join(dir, 'r.bin.part'), body.subarray(0, 12_000));
    const f: RemoteFile = { name: 'r.bin', url: srv.base + 'r.bin', size: body.length, md5: md5(body), check: null };
    const logs: string[] = [];
    assert.equal(await downloadFile(f, dir, { log: (l) => logs.push(l) }), 'downloaded');
    assert.equal(srv.requests[0]!.range, 'bytes=12000-');
    assert.ok(logs.includes('r.bin: the server does not resume (no Range support); starting over'));
    assert.ok(readFileSync(join(dir, 'r.bin')).equals(body));
  } finally {
    await srv.close();
  }
});

test('a .part already complete is verified and renamed without fetching the body again', async () => {
  const body = fixtureBytes(8_000);
  const srv = await serve({ files: { '/p.rec': body } });
  try {
    const dir = tmp();
    writeFileSync(join(dir, 'p.rec.part'), body);
    const f: RemoteFile = { name: 'p.rec', url: srv.base + 'p.rec', size: null, md5: null, check: 'recordio' };
    assert.equal(await downloadFile(f, dir), 'downloaded');
    assert.deepEqual(srv.requests, [{ path: '/p.rec', range: 'bytes=8000-' }]); // answered 416 bytes */8000
    assert.ok(readFileSync(join(dir, 'p.rec')).equals(body));
  } finally {
    await srv.close();
  }
});

/** Runs the compiled CLI asynchronously (the test server lives in this process). */
const mixup = (args: string[], env: Record<string, string> = {}) => runMixupAsync(args, { env });

test('mixup data download cifar10 (CLI): the .rec pair from a mirror; again: nothing fetched; bin: size mismatch exits 2', async () => {
  const train = fixtureBytes(64_000, 3);
  const val = fixtureBytes(16_000, 4);
  const srv = await serve({
    files: { '/m/cifar10_train.rec': train, '/m/cifar10_val.rec': val, '/k/cifar-10-binary.tar.gz': fixtureBytes(5_000, 5) },
    cutAt: 30_000,
  });
  try {
    const dir = join(tmp(), 'cifar10');
    const r = await mixup(['data', 'download', 'cifar10', '--dir', dir, '--base-url', srv.base + 'm'], {});
    assert.equal(r.code, 0, r.err);
    assert.ok(readFileSync(join(dir, 'cifar10_train.rec')).equals(train));
    assert.ok(readFileSync(join(dir, 'cifar10_val.rec')).equals(val));
    assert.equal(r.out, `CIFAR-10 (rec) is in ${dir}; train with: mixup train --config configs/mixup.json --data-dir ${dir}\n`);
    assert.match(r.err, /cifar10_train\.rec: transfer cut off at 29 KiB of 63 KiB/);
    assert.deepEqual(
      srv.requests.map((q) => q.range),
      [null, 'bytes=30000-', null],
    );

    const again = await mixup(['data', 'download', 'cifar10', '--dir', dir], { MIXUP_DATA_BASE_URL: srv.base + 'm/' });
    assert.equal(again.code, 0, again.err);
    assert.equal(srv.requests.length, 3);
    assert.match(again.err, /cifar10_val\.rec: present and looks complete \(no published size or checksum\); not downloaded again\n$/);

    const bin = await mixup(['data', 'download', 'cifar10', '--format', 'bin', '--dir', dir, '--base-url', srv.base + 'k/']);
    assert.equal(bin.code, 2);
    assert.equal(
      bin.err,
      `mixup: error: ${srv.base}k/cifar-10-binary.tar.gz: the server sends 5000 bytes, the published size of cifar-10-binary.tar.gz is 170052171; not downloaded\n`,
    );
    assert.ok(!existsSync(join(dir, 'cifar-10-binary.tar.gz')));
    assert.ok(!existsSync(join(dir, 'cifar-10-binary.tar.gz.part')));

    const missing = await mixup(['data', 'download', 'cifar10', '--dir', join(dir, 'x'), '--base-url', srv.base + 'nothing/', '--retries', '0']);
    assert.equal(missing.code, 2);
    assert.match(missing.err, /^mixup: error: http:\/\/127\.0\.0\.1:\d+\/nothing\/cifar10_train\.rec: HTTP 404 Not Found; expected the file \(check the address\)\n$/);
  } finally {
    await srv.close();
  }
});

test('target directory under a regular file: one-line UserError (exit 2) naming the path, ENOTDIR, nothing fetched', async () => {
  const srv = await serve({ files: { '/x.rec': fixtureBytes(1000) } });
  try {
    const file = join(tmp(), 'plain');
    writeFileSync(file, 'not a directory');
    const dir = join(file, 'sub', 'cifar10');
    const f: RemoteFile = { name: 'x.rec', url: srv.base + 'x.rec', size: null, md5: null, check: 'recordio' };
    await assert.rejects(downloadFile(f, dir, { retries: 0 }), (e: unknown) => {
      assert.ok(e instanceof UserError);
      assert.equal(e.exitCode, 2);
      assert.equal(e.message, `${dir}: cannot create the download directory: ${file} is not a directory (ENOTDIR)`);
      return true;
    });
    assert.equal(srv.requests.length, 0);
    // The path itself a regular file.
    await assert.rejects(downloadFile(f, file, { retries: 0 }), (e: unknown) => {
      assert.ok(e instanceof UserError);
      assert.equal(e.message, `${file}: cannot create the download directory: ${file} is not a directory (ENOTDIR)`);
      return true;
    });
  } finally {
    await srv.close();
  }
});

test('ensureDir: creates missing parents one by one; /proc/nope (where mkdirSync recursive spins forever) is an ENOENT error', () => {
  const base = tmp();
  ensureDir(join(base, 'a', 'b', 'c'));
  assert.ok(statSync(join(base, 'a', 'b', 'c')).isDirectory());
  ensureDir(join(base, 'a', 'b', 'c')); // already there: fine
  if (existsSync('/proc/self')) {
    assert.throws(() => ensureDir('/proc/nope'), (e: unknown) => {
      assert.ok(e instanceof UserError);
      assert.equal(e.message, '/proc/nope: cannot create the download directory: mkdir /proc/nope failed (ENOENT)');
      return true;
    });
  }
});

test('a server that refuses the connection: "could not connect to <host>: ECONNREFUSED" (exit 2) after the tries, no .part', async () => {
  const srv = await serve({ files: {} });
  const base = srv.base;
  await srv.close(); // the port is now closed
  const host = new URL(base).host;
  const dir = tmp();
  const f: RemoteFile = { name: 'x.rec', url: base + 'x.rec', size: null, md5: null, check: 'recordio' };
  const logs: string[] = [];
  await assert.rejects(downloadFile(f, dir, { retries: 1, retryDelayMs: 0, log: (l) => logs.push(l) }), (e: unknown) => {
    assert.ok(e instanceof UserError);
    assert.equal(e.exitCode, 2);
    assert.equal(e.message, `could not connect to ${host}: ECONNREFUSED (2 tries, fetching ${base}x.rec)`);
    return true;
  });
  assert.equal(logs.length, 2);
  assert.match(logs[0]!, new RegExp(`^${base.replace(/[.]/g, '\\.')}x\\.rec: .*ECONNREFUSED.*; trying again \\(1/1\\)$`));
  assert.ok(!existsSync(join(dir, 'x.rec.part')));
});

test('mixup data download cifar10 --dir under a regular file (CLI): exit 2 with one line, at once', async () => {
  const file = join(tmp(), 'plain');
  writeFileSync(file, '');
  const r = await mixup(['data', 'download', 'cifar10', '--dir', join(file, 'd'), '--base-url', 'http://127.0.0.1:9/']);
  assert.equal(r.code, 2);
  assert.equal(r.err, `mixup: error: ${join(file, 'd')}: cannot create the download directory: ${file} is not a directory (ENOTDIR)\n`);
});

test('a host name that does not resolve (ENOTFOUND/EAI_AGAIN): one line at once, no retries, also after a redirect', async () => {
  // `.invalid` never resolves (RFC 2606); without a network the resolver says EAI_AGAIN instead
  const dir = tmp();
  const logs: string[] = [];
  const f: RemoteFile = { name: 'x.rec', url: 'http://cifar.invalid/x.rec', size: null, md5: null, check: 'recordio' };
  const t0 = Date.now();
  await assert.rejects(downloadFile(f, dir, { retries: 3, retryDelayMs: 2000, log: (l) => logs.push(l) }), (e: unknown) => {
    assert.ok(e instanceof UserError);
    assert.equal(e.exitCode, 2);
    assert.match(e.message, /^cannot resolve cifar\.invalid \((ENOTFOUND|EAI_AGAIN)\): no network or no DNS here, or a wrong address \(fetching http:\/\/cifar\.invalid\/x\.rec\)$/);
    return true;
  });
  assert.ok(Date.now() - t0 < 1900, `took ${Date.now() - t0} ms: a retry waited`);
  assert.deepEqual(logs, []);
  // a mirror that redirects to a name that does not resolve: the name in the message is that one
  const srv = createServer((_req, res) => res.writeHead(302, { Location: 'http://mirror.invalid/x.rec' }).end());
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  try {
    const base = `http://127.0.0.1:${(srv.address() as AddressInfo).port}/`;
    await assert.rejects(downloadFile({ ...f, url: base + 'x.rec' }, dir, { retries: 3, retryDelayMs: 2000 }), /^UserError: cannot resolve mirror\.invalid \((ENOTFOUND|EAI_AGAIN)\)/);
  } finally {
    srv.closeAllConnections();
    await new Promise<void>((r) => srv.close(() => r()));
  }
});

test('mixup data download with a base URL that does not resolve (CLI): exit 2, one line (no "trying again" lines)', async () => {
  const dir = join(tmp(), 'd');
  const r = await mixup(['data', 'download', 'cifar10', '--dir', dir, '--base-url', 'http://cifar.invalid/']);
  assert.equal(r.code, 2);
  assert.match(r.err, /^mixup: error: cannot resolve cifar\.invalid \((ENOTFOUND|EAI_AGAIN)\): no network or no DNS here, or a wrong address \(fetching http:\/\/cifar\.invalid\/cifar10_train\.rec\)\n$/);
});
