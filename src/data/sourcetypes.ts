/**
 * What opening a data source gives (plain data, shared with the worker threads and the format
 * readers): how workers read the images ({@link SourceSpec}), the options from the config, and the
 * opened source. Its own module so that the format readers (pysource.ts, describe.ts) and source.ts
 * share the types without importing each other.
 */

/** How worker threads read the images of a source. */
export type SourceSpec =
  | {
      kind: 'rec';
      path: string;
      /** Byte offset and span of each sample's record, in sample order. */
      offsets: Float64Array;
      spans: Float64Array;
    }
  | {
      kind: 'bin';
      /** The files in order, with how many of the split's samples each contributes. */
      files: { path: string; count: number }[];
      recordBytes: number;
    }
  | {
      kind: 'mem';
      /**
       * CIFAR binary records held in memory (from a .tar.gz), `recordBytes` each; the python
       * version's images have no label byte (`recordBytes` 3,072).
       */
      records: SharedArrayBuffer;
      recordBytes: number;
    };

/** Options of {@link openSource}, from the config. */
export interface SourceOptions {
  numClasses: number;
  labelIndex: number;
  labelField: 'fine' | 'coarse';
  /** Keep only the first N samples (file order), null = all. */
  limit: number | null;
}

/** An opened split. */
export interface OpenedSource {
  /** What was read: `recordio`, `cifar-binary`, `cifar-binary-tar.gz`, `cifar-python` or `cifar-python-tar.gz`. */
  format: string;
  /** The file(s) read, for messages. */
  path: string;
  numSamples: number;
  /** Label of every sample, in [0, numClasses). */
  labels: Int32Array;
  classNames: string[];
  /** Things the user should be told once (e.g. several labels per record). */
  notes: string[];
  /**
   * One line saying what was picked, for the start of a run, e.g.
   * `CIFAR-10 binary, /d/data_batch_1.bin (1 of the usual 5 files), 10000 samples` or
   * `RecordIO /d/cifar10_train.rec (JPEG, with .idx), 50000 records`; see {@link describeBins}.
   */
  description: string;
  spec: SourceSpec;
}
