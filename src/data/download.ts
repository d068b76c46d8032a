/**
 * `mixup data download cifar10`: fetches the published CIFAR-10 files over HTTP(S), resuming a
 * partial download with an HTTP Range request, and checks each file before it takes its name.
 *
 * A file is written to `<name>.part` and renamed to `<name>` only after its size (and, where a
 * checksum is published, its MD5) matched. An existing `<name>` is checked, never overwritten:
 * a good one is not downloaded again, a bad one is an error. A `.part` left by a cut-off
 * transfer is continued from its length, by the next try of the same command or a later run.
 * What is fetched, from where, with which size and checksum: data/published.ts.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, openSync, writeSync, closeSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { pipeline } from 'node:stream/promises';
import { UserError } from '../errors.js';
import { ensureDirectory } from '../fsutil.js';
import { bytesText } from '../format.js';
import { readHead } from './recordio.js';
import { BASE_URL_ENV, cifar10Files, type Cifar10Format, type RemoteFile } from './published.js';

/** dmlc RecordIO magic 0xced7230a as it starts a file (little-endian). */
const RECORDIO_MAGIC_LE = Buffer.from([0x0a, 0x23, 0xd7, 0xce]);

/** Receives the progress of one transfer (the CLI draws a cli-progress bar). */
export interface ProgressSink {
  /** A transfer starts: `total` bytes of the whole file (null when unknown), `offset` already on disk. */
  start(name: string, total: number | null, offset: number): void;
  /** Bytes on disk now. */
  update(bytes: number): void;
  /** The transfer ended (successfully or not). */
  stop(): void;
}

/** Options of {@link downloadFile}. */
export interface DownloadOptions {
  /** Further tries after a transfer is cut off, each resuming where the last stopped (default 3). */
  retries?: number;
  /** Milliseconds to wait before try k+1, times k (default 2000). */
  retryDelayMs?: number;
  /** Progress of each transfer. */
  progress?: ProgressSink;
  /** One-line messages (what is skipped, resumed, checked). */
  log?: (line: string) => void;
}

/** What {@link downloadFile} did. */
export type DownloadOutcome = 'present' | 'downloaded';

/** MD5 of a file, lowercase hex, streamed. */
export async function md5File(file: string): Promise<string> {
  const h = createHash('md5');
  await pipeline(createReadStream(file), h);
  return h.digest('hex');
}

/**
 * Checks a complete file against what is known of it.
 * @param total the size the server announced, when known (used when no size is published).
 * @returns null when it is good, else one line saying what is wrong.
 */
async function verify(path: string, f: RemoteFile, total: number | null): Promise<string | null> {
  const size = statSync(path).size;
  const want = f.size ?? total;
  if (want !== null && size !== want) {
    return `size is ${size} bytes, expected ${want}${f.size !== null ? ' (published)' : ' (the server\'s Content-Length)'}`;
  }
  if (f.md5 !== null) {
    const got = await md5File(path);
    if (got !== f.md5) return `md5 is ${got}, expected the published ${f.md5}`;
  }
  if (f.check === 'recordio') {
    const head = readHead(path, 4);
    if (!head.equals(RECORDIO_MAGIC_LE)) return `does not start with the RecordIO magic 0xced7230a (first bytes ${head.toString('hex')})`;
    if (size % 4 !== 0) return `is ${size} bytes, not a multiple of 4 as a RecordIO file is`;
  }
  return null;
}

/** Parses `Content-Range: bytes START-END/TOTAL` (or the unsatisfied-range form `bytes *\/TOTAL`). */
function parseContentRange(v: string | null): { start: number | null; total: number | null } | null {
  if (v === null) return null;
  const m = /^bytes\s+(?:(\d+)-\d+|\*)\/(\d+|\*)$/i.exec(v.trim());
  if (!m) return null;
  return { start: m[1] === undefined ? null : Number(m[1]), total: m[2] === '*' ? null : Number(m[2]) };
}

function reasonOf(e: unknown): string {
  const err = e as Error & { code?: string };
  return err.code && !err.message.includes(err.code) ? `${err.message}: ${err.code}` : err.message;
}

/**
 * GET `url` with `headers` through node:http(s), following up to 5 redirects.
 * (node:http rather than fetch: when a connection is cut, every byte received before is still
 * delivered to the reader, so the .part holds all of them.)
 * @throws the connection error (refused, reset, DNS) as node reports it.
 */
function get(url: string, headers: Record<string, string>, redirects = 5): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = (u.protocol === 'https:' ? httpsRequest : httpRequest)(u, { headers: { 'User-Agent': 'mixup-data-download', ...headers } }, (res) => {
      const loc = res.headers.location;
      if (res.statusCode !== undefined && [301, 302, 303, 307, 308].includes(res.statusCode) && loc && redirects > 0) {
        res.resume();
        get(new URL(loc, u).toString(), headers, redirects - 1).then(resolve, reject);
        return;
      }
      resolve(res);
    });
    req.on('error', reject);
    req.end();
  });
}

function header(res: IncomingMessage, name: string): string | null {
  const v = res.headers[name];
  return v === undefined ? null : Array.isArray(v) ? v.join(', ') : v;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function errCode(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  return err.code ?? err.message;
}

/**
 * Runs a filesystem step on the download directory, turning its error (EACCES, EROFS, ENOSPC,
 * ENOTDIR...) into a one-line UserError naming the path.
 */
function fsStep<T>(what: string, path: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new UserError(`${path}: cannot ${what} (${errCode(e)})`, 2, { cause: e });
  }
}

/** Creates the download directory and its parents (see {@link ensureDirectory}). */
export function ensureDir(dir: string): void {
  ensureDirectory(dir, 'download directory');
}

/**
 * Name-resolution failures: a host name that does not resolve (no network, no DNS, a typo in the
 * address) does not start resolving a few seconds later, so these are reported at once, never retried.
 */
const DNS_ERRORS = new Set(['ENOTFOUND', 'EAI_AGAIN']);

/** Errors of a connection that never got an answer (as opposed to one cut off mid-transfer). */
const CONNECT_ERRORS = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'EHOSTDOWN']);

/**
 * Downloads one file into `dir`, resuming `<name>.part` when present, and renames it to `<name>`
 * once it verified.
 * @returns `present` when `<dir>/<name>` already existed and verified (nothing fetched),
 *   `downloaded` otherwise.
 * @throws UserError (exit 2) when an existing `<name>` fails its check (it is left alone), the
 *   server answers with an error status or announces a size other than the published one, or the
 *   downloaded file fails its check (the `.part` is deleted), `dir` cannot be created or a file in
 *   it cannot be written (see {@link ensureDir}), the server's name does not resolve (ENOTFOUND,
 *   EAI_AGAIN: at once, without retrying), or no try ever reached the server
 *   (`could not connect to <host>: ECONNREFUSED ...`); UserError (exit 1) when the transfer
 *   is still cut off after all tries (the `.part` is kept for the next run to resume).
 */
export async function downloadFile(f: RemoteFile, dir: string, opts: DownloadOptions = {}): Promise<DownloadOutcome> {
  const log = opts.log ?? (() => {});
  const retries = opts.retries ?? 3;
  const delay = opts.retryDelayMs ?? 2000;
  const final = join(dir, f.name);
  const part = final + '.part';

  if (existsSync(final)) {
    const bad = await verify(final, f, null);
    if (bad !== null) {
      throw new UserError(`${final}: exists but ${bad}; not overwritten: move it away and run again to download it`);
    }
    log(`${final}: present and ${f.md5 ? 'md5 matches' : f.size ? 'size matches' : 'looks complete (no published size or checksum)'}; not downloaded again`);
    return 'present';
  }
  ensureDir(dir);

  let total: number | null = f.size;
  let lastError = '';
  /** The last connection error when no try has reached the server yet (then it is the final error). */
  let connectError: string | null = null;
  let answered = false;
  let complete = false;
  for (let attempt = 0; attempt <= retries && !complete; attempt++) {
    if (attempt > 0 && delay > 0) await sleep(delay * attempt);
    let offset = existsSync(part) ? fsStep('read its size', part, () => statSync(part).size) : 0;
    if (total !== null && offset > total) {
      log(`${part}: ${offset} bytes, more than the ${total} expected; starting over`);
      fsStep('delete it', part, () => rmSync(part));
      offset = 0;
    }
    if (total !== null && offset === total && offset > 0) {
      complete = true;
      break;
    }
    let res: IncomingMessage;
    try {
      res = await get(f.url, offset > 0 ? { Range: `bytes=${offset}-` } : {});
    } catch (e) {
      lastError = reasonOf(e);
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== undefined && DNS_ERRORS.has(code)) {
        const host = (e as { hostname?: string }).hostname ?? new URL(f.url).hostname;
        const kept = existsSync(part) ? `; ${part} is kept for the next try` : '';
        throw new UserError(`cannot resolve ${host} (${code}): no network or no DNS here, or a wrong address (fetching ${f.url})${kept}`);
      }
      connectError = !answered && code !== undefined && CONNECT_ERRORS.has(code) ? code : null;
      log(`${f.url}: ${lastError}${attempt < retries ? `; trying again (${attempt + 1}/${retries})` : ''}`);
      continue;
    }
    answered = true;
    connectError = null;
    if (res.statusCode === 416 && offset > 0) {
      res.resume();
      const cr = parseContentRange(header(res, 'content-range'));
      if (cr?.total === offset) {
        total = offset;
        complete = true;
        break;
      }
      log(`${part}: the server cannot resume at byte ${offset}; starting over`);
      fsStep('delete it', part, () => rmSync(part));
      attempt--; // starting over is not a failed try
      continue;
    }
    let append = false;
    let announced: number | null = null;
    if (res.statusCode === 206 && offset > 0) {
      const cr = parseContentRange(header(res, 'content-range'));
      if (cr === null || cr.start !== offset) {
        res.resume();
        throw new UserError(`${f.url}: asked for bytes from ${offset}, the server answered Content-Range "${header(res, 'content-range')}"`);
      }
      announced = cr.total;
      append = true;
      log(`${f.name}: resuming at ${bytesText(offset)}`);
    } else if (res.statusCode === 200) {
      const len = header(res, 'content-length');
      announced = len === null ? null : Number(len);
      if (offset > 0) log(`${f.name}: the server does not resume (no Range support); starting over`);
      offset = 0;
    } else {
      res.resume();
      throw new UserError(`${f.url}: HTTP ${res.statusCode} ${res.statusMessage}; expected the file (check the address${process.env[BASE_URL_ENV] ? ` and ${BASE_URL_ENV}` : ''})`);
    }
    if (f.size !== null && announced !== null && announced !== f.size) {
      res.resume();
      throw new UserError(`${f.url}: the server sends ${announced} bytes, the published size of ${f.name} is ${f.size}; not downloaded`);
    }
    total = announced ?? total;

    opts.progress?.start(f.name, total, offset);
    // Each chunk is written synchronously as it arrives, so that a cut-off transfer leaves every
    // byte received in the .part for the next try to resume from.
    let onDisk = offset;
    lastError = '';
    let writeError: NodeJS.ErrnoException | null = null;
    let fd: number;
    try {
      fd = fsStep('open it for writing', part, () => openSync(part, append ? 'a' : 'w'));
    } catch (e) {
      res.destroy();
      opts.progress?.stop();
      throw e;
    }
    try {
      await new Promise<void>((resolve, reject) => {
        let ended = false;
        res.on('data', (chunk: Buffer) => {
          try {
            writeSync(fd, chunk);
          } catch (e) {
            writeError = e as NodeJS.ErrnoException;
            res.destroy(writeError);
            return;
          }
          onDisk += chunk.length;
          opts.progress?.update(onDisk);
        });
        res.on('end', () => {
          ended = true;
          resolve();
        });
        res.on('error', reject);
        res.on('close', () => {
          if (!ended) reject(new Error('the connection closed early'));
        });
      });
    } catch (e) {
      lastError = reasonOf(e);
    } finally {
      closeSync(fd);
      opts.progress?.stop();
    }
    if (writeError !== null) {
      const we: NodeJS.ErrnoException = writeError;
      throw new UserError(`${part}: cannot write (${we.code ?? we.message})`);
    }
    const have = existsSync(part) ? statSync(part).size : 0;
    if (total !== null && have < total) {
      if (lastError === '') lastError = 'the connection closed early';
      log(`${f.name}: transfer cut off at ${bytesText(have)} of ${bytesText(total)} (${lastError})${attempt < retries ? `; resuming (${attempt + 1}/${retries})` : ''}`);
      continue;
    }
    if (total === null && lastError !== '') {
      log(`${f.name}: transfer cut off at ${bytesText(have)} (${lastError})${attempt < retries ? `; resuming (${attempt + 1}/${retries})` : ''}`);
      continue;
    }
    complete = true;
  }
  if (!complete && connectError !== null) {
    throw new UserError(`could not connect to ${new URL(f.url).host}: ${connectError} (${retries + 1} ${retries === 0 ? 'try' : 'tries'}, fetching ${f.url})`);
  }
  if (!complete) {
    const have = existsSync(part) ? statSync(part).size : 0;
    throw new UserError(
      `${f.url}: download cut off at ${have} of ${total ?? '?'} bytes after ${retries + 1} tries (${lastError}); run the same command again to resume from ${part}`,
      1,
    );
  }

  const bad = await verify(part, f, total);
  if (bad !== null) {
    rmSync(part, { force: true });
    throw new UserError(`${f.name} from ${f.url}: ${bad}; the download was deleted, run again to fetch it anew`);
  }
  if (existsSync(final)) throw new UserError(`${final}: appeared during the download; not overwritten (the download is in ${part})`);
  fsStep(`rename it to ${final}`, part, () => renameSync(part, final));
  log(`${final}: ${statSync(final).size} bytes, ${f.md5 ? 'md5 ok' : f.size ? 'size ok' : total !== null ? 'size matches the server\'s, RecordIO header ok' : 'RecordIO header ok (size unknown)'}`);
  return 'downloaded';
}

/**
 * Downloads all files of CIFAR-10 in `format` into `dir`, one after the other.
 * @param baseUrl replaces the published directory URL (else `$MIXUP_DATA_BASE_URL`, else the published one).
 * @returns the outcome per file name.
 * @throws UserError as {@link downloadFile}.
 */
export async function downloadCifar10(
  format: Cifar10Format,
  dir: string,
  opts: DownloadOptions & { baseUrl?: string } = {},
): Promise<Record<string, DownloadOutcome>> {
  const base = opts.baseUrl ?? (process.env[BASE_URL_ENV] || undefined);
  const out: Record<string, DownloadOutcome> = {};
  for (const f of cifar10Files(format, base)) out[f.name] = await downloadFile(f, dir, opts);
  return out;
}

/**
 * A progress bar on `stream` (stderr) with cli-progress when it is a terminal; elsewhere (logs, CI)
 * nothing per chunk, only the one-line messages of {@link DownloadOptions.log}.
 */
export async function terminalProgress(stream: NodeJS.WriteStream = process.stderr): Promise<ProgressSink | undefined> {
  if (!stream.isTTY) return undefined;
  const { SingleBar, Presets } = (await import('cli-progress')).default;
  let bar: InstanceType<typeof SingleBar> | null = null;
  return {
    start(name, total, offset) {
      bar = new SingleBar(
        {
          stream,
          format: `${name} [{bar}] {percentage}% | {done}/{size} | ETA {eta_formatted}`,
          hideCursor: true,
          etaBuffer: 50,
        },
        Presets.shades_classic,
      );
      bar.start(total ?? 0, offset, { done: bytesText(offset), size: total === null ? '?' : bytesText(total) });
    },
    update(bytes) {
      bar?.update(bytes, { done: bytesText(bytes) });
    },
    stop() {
      bar?.stop();
      bar = null;
    },
  };
}
