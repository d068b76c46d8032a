/**
 * Where CIFAR-10 is published, as `mixup data download cifar10` fetches it: the files of each format,
 * their URLs, and the sizes and checksums they are checked against (data/download.ts does the transfer).
 *
 * Sources:
 * - binary version: https://www.cs.toronto.edu/~kriz/cifar.html lists `cifar-10-binary.tar.gz`,
 *   md5 c32a1d4ab5d03f1284b67883e8d87530 ("162 MB"; 170,052,171 bytes as downloaded).
 * - MXNet RecordIO pair: `cifar10_train.rec` / `cifar10_val.rec` at data.mxnet.io/data/cifar10/,
 *   as MXNet's example/image-classification/train_cifar10.py downloads them (the reference's data).
 *   No size or checksum was published for them: the size is checked against the server's
 *   Content-Length, and the file must start with the RecordIO magic and be a multiple of 4 bytes
 *   long (dmlc's reader requires both).
 */

/** One published file. */
export interface RemoteFile {
  /** File name in the target directory. */
  name: string;
  url: string;
  /** Published size in bytes, or null when none was published (then the server's Content-Length is checked). */
  size: number | null;
  /** Published MD5 (lowercase hex), or null. */
  md5: string | null;
  /** Structural check of the content: `recordio` = starts with the dmlc magic, length a multiple of 4. */
  check: 'recordio' | null;
}

/** Formats `mixup data download cifar10` offers. */
export const CIFAR10_FORMATS = ['rec', 'bin'] as const;
export type Cifar10Format = (typeof CIFAR10_FORMATS)[number];

/** Where each format is published (the directory part of the URLs). */
export const DEFAULT_BASE_URLS: Readonly<Record<Cifar10Format, string>> = {
  rec: 'http://data.mxnet.io/data/cifar10/',
  bin: 'https://www.cs.toronto.edu/~kriz/',
};

/** Environment variable that replaces the base URL (a mirror, or a test server). */
export const BASE_URL_ENV = 'MIXUP_DATA_BASE_URL';

/** MD5 of cifar-10-binary.tar.gz as https://www.cs.toronto.edu/~kriz/cifar.html publishes it. */
export const CIFAR10_BINARY_MD5 = 'c32a1d4ab5d03f1284b67883e8d87530';
/** Size of cifar-10-binary.tar.gz in bytes (the page says "162 MB"). */
export const CIFAR10_BINARY_SIZE = 170_052_171;

/**
 * The files of CIFAR-10 in `format`.
 * @param baseUrl directory URL to fetch from instead of the published one (a trailing `/` is added).
 */
export function cifar10Files(format: Cifar10Format, baseUrl?: string): RemoteFile[] {
  const base = (baseUrl ?? DEFAULT_BASE_URLS[format]).replace(/\/*$/, '/');
  if (format === 'bin') {
    return [{ name: 'cifar-10-binary.tar.gz', url: base + 'cifar-10-binary.tar.gz', size: CIFAR10_BINARY_SIZE, md5: CIFAR10_BINARY_MD5, check: null }];
  }
  return ['cifar10_train.rec', 'cifar10_val.rec'].map((name) => ({ name, url: base + name, size: null, md5: null, check: 'recordio' as const }));
}
