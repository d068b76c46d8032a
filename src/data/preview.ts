/**
 * `mixup data preview`: a PNG contact sheet of the first samples of a data file with their class
 * names, optionally as the training augmentation shows them to the network (before mean
 * subtraction), so a person sees at a glance whether images are upright and correctly labelled.
 * The grid of pixels is built here (nearest-neighbour upscaling, pngjs); resvg draws the names.
 */
import { writeFileSync } from 'node:fs';
import { PNG } from 'pngjs';
import { Resvg } from '@resvg/resvg-js';
import type { Config } from '../config/schema.js';
import { uniformStream } from '../random.js';
import { augmentSpec, cropAndJitter, drawAugment } from '../augment/index.js';
import { openSource } from './source.js';
import { IMAGE_SIDE, SampleReader } from './reader.js';

/** Options of {@link writePreview}. */
export interface PreviewOptions {
  /** Samples shown (the first ones, file order). */
  count: number;
  /** Show the training augmentation (the draws of epoch 1, as training numbers epochs) instead of the stored image. */
  augment: boolean;
  /** Split to take from a directory or archive holding both. */
  split: 'train' | 'val';
  /** Columns of the grid. */
  columns?: number;
  /** Upscaling factor of each image. */
  scale?: number;
}

/** What was drawn, for tests and the CLI's summary line. */
export interface PreviewResult {
  width: number;
  height: number;
  count: number;
  labels: number[];
  classNames: string[];
  /** Each cell's uint8 RGB pixels `[h,w,3]` as drawn (before upscaling). */
  cells: Uint8Array[];
  cellSide: number;
  /** The heading drawn above the grid, e.g. `/d/test_batch.bin — first 64, training augmentation (epoch 1)`. */
  title: string;
}

function escapeXml(s: string): string {
  return s.replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c]!);
}

/**
 * Renders the first `count` samples of `path` into a PNG at `out`.
 * @param cfg the config whose data settings (numClasses, labels, augmentation, seed) apply.
 * @throws UserError for bad data (see source.ts).
 */
export async function writePreview(cfg: Config, path: string, out: string, o: PreviewOptions): Promise<PreviewResult> {
  const src = await openSource(path, o.split, {
    numClasses: cfg.model.numClasses,
    labelIndex: cfg.data.labelIndex,
    labelField: cfg.data.labelField,
    limit: o.count,
  });
  const reader = new SampleReader(src.spec, null);
  const spec = o.augment ? augmentSpec(cfg, true) : { ...augmentSpec(cfg, false), outH: IMAGE_SIDE, outW: IMAGE_SIDE };
  const side = spec.outH;
  const cells: Uint8Array[] = [];
  try {
    for (let i = 0; i < src.numSamples; i++) {
      const px = reader.read(i);
      const d = drawAugment(spec, IMAGE_SIDE, IMAGE_SIDE, o.augment ? uniformStream(cfg.train.seed, 'augment', 0, i) : null);
      const cell = new Uint8Array(spec.outH * spec.outW * 3);
      cropAndJitter(spec, px, IMAGE_SIDE, IMAGE_SIDE, d, cell);
      cells.push(cell);
    }
  } finally {
    reader.close();
  }
  const cols = Math.min(o.columns ?? 8, Math.max(1, cells.length));
  const rows = Math.ceil(cells.length / cols);
  const scale = o.scale ?? 3;
  const gap = 6;
  const textH = 16;
  const cw = side * scale + gap;
  const ch = side * scale + textH + gap;
  const title = 22;
  const width = cols * cw + gap;
  const height = title + rows * ch + gap;
  const png = new PNG({ width, height });
  png.data.fill(255);
  cells.forEach((cell, k) => {
    const x0 = gap + (k % cols) * cw;
    const y0 = title + Math.floor(k / cols) * ch;
    for (let y = 0; y < side * scale; y++) {
      for (let x = 0; x < side * scale; x++) {
        const s = (Math.floor(y / scale) * side + Math.floor(x / scale)) * 3;
        const d = ((y0 + y) * width + x0 + x) * 4;
        png.data[d] = cell[s]!;
        png.data[d + 1] = cell[s + 1]!;
        png.data[d + 2] = cell[s + 2]!;
        png.data[d + 3] = 255;
      }
    }
  });
  const labels = Array.from(src.labels);
  const texts = labels.map((l, k) => {
    const x = gap + (k % cols) * cw + (side * scale) / 2;
    const y = title + Math.floor(k / cols) * ch + side * scale + 12;
    return `<text x="${x}" y="${y}" text-anchor="middle">${escapeXml(`${l} ${src.classNames[l] ?? ''}`.trim())}</text>`;
  });
  // uniformStream(seed, 'augment', 0, i) above is what training's first epoch, epoch 1, draws
  const heading = `${src.path} — first ${cells.length}${o.augment ? ', training augmentation (epoch 1)' : ''}`;
  const b64 = PNG.sync.write(png).toString('base64');
  const svg = [
    `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="${width}" height="${height}">`,
    `<image x="0" y="0" width="${width}" height="${height}" xlink:href="data:image/png;base64,${b64}"/>`,
    `<text x="${gap}" y="15" font-size="12" font-family="DejaVu Sans, sans-serif">${escapeXml(heading)}</text>`,
    `<g font-size="11" font-family="DejaVu Sans, sans-serif" fill="#000">${texts.join('')}</g>`,
    '</svg>',
  ].join('\n');
  const rendered = new Resvg(svg, { font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' } }).render().asPng();
  writeFileSync(out, rendered);
  return { width, height, count: cells.length, labels, classNames: src.classNames, cells, cellSide: side, title: heading };
}
