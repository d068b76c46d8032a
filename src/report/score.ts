/**
 * The text `mixup test` prints for a score: the checkpoint, the data, top-1 and loss, calibration
 * with its bins, the attack, and per-class accuracy.
 */
import { pct, plural } from '../format.js';
import { CALIBRATION_BINS, type Calibration } from '../evaluate/calibration.js';
import { temperatureBoundNote, type CalibrationFigures } from '../evaluate/temperature.js';
import type { TemperatureScore } from '../evaluate/scale.js';
import type { AttackResult } from '../evaluate/attack.js';
import type { Score } from '../evaluate/score.js';

/** The first lines of a {@link Score}: which checkpoint and which data (known before scoring). */
export function scoreHeaderLines(s: Pick<Score, 'checkpoint' | 'epoch' | 'batch' | 'data'>): string[] {
  return [`checkpoint: ${s.checkpoint} (epoch ${s.epoch}${s.batch > 0 ? ` + ${s.batch} batches` : ''})`, `data: ${s.data}`];
}

/**
 * Human-readable lines of a {@link Score}.
 * @param header with the {@link scoreHeaderLines} first (false: the caller printed them already).
 */
export function formatScore(s: Score, header = true): string[] {
  const lines = [
    ...(header ? scoreHeaderLines(s) : []),
    s.valLimit === null
      ? `scored: ${plural(s.samples, 'image')}, all of the data`
      : `scored: the first ${plural(s.samples, 'image')} (the run's data.valLimit; --full scores all)`,
    `top-1 accuracy: ${pct(s.accuracy)} (${Math.round(s.accuracy * s.samples)}/${s.samples})`,
    `mean loss: ${s.loss.toFixed(4)}`,
    ...calibrationLines(s.calibration),
    ...(s.attack ? attackLines(s.attack) : []),
    'per-class accuracy:',
  ];
  const w = Math.max(5, ...s.classNames.map((n) => n.length));
  s.perClass.forEach((a, i) => {
    const name = s.classNames[i] ?? `class ${i}`;
    lines.push(`  ${String(i).padStart(2)} ${name.padEnd(w)}  ${Number.isNaN(a) ? '   n/a' : pct(a).padStart(7)}  (${s.perClassCount[i]} samples)`);
  });
  return lines;
}

/** Lines of a {@link Calibration}: the figures, then the bins that hold samples. */
export function calibrationLines(c: Calibration): string[] {
  const lines = [
    `calibration (${c.bins.length} equal-width bins of top-1 confidence): ECE ${pct(c.ece)}, MCE ${pct(c.mce)}, ` +
      `mean confidence ${pct(c.meanConfidence)}, Brier score ${c.brier.toFixed(4)} (mean Σₖ (pₖ − yₖ)², 0–2)`,
  ];
  for (const b of c.bins) {
    if (b.count === 0) continue;
    lines.push(
      `  confidence ${b.lower.toFixed(3)}–${b.upper.toFixed(3)}: ${String(b.count).padStart(6)} samples, ` +
        `mean confidence ${pct(b.meanConfidence).padStart(7)}, accuracy ${pct(b.accuracy).padStart(7)}`,
    );
  }
  return lines;
}

/** The line of an {@link AttackResult}: clean and attacked top-1. */
export function attackLines(a: AttackResult): string[] {
  const what = a.kind === 'fgsm' ? `FGSM, ε ${a.eps}/255` : `I-FGSM, ε ${a.eps}/255, ${a.steps} steps of ${Number((a.eps / a.steps).toPrecision(4))}`;
  return [`attack (${what}, white-box): top-1 ${pct(a.cleanAccuracy)} clean → ${pct(a.attackedAccuracy)} attacked (${a.samples} images)`];
}

/**
 * Lines of a {@link TemperatureScore}: T and where it was fitted, then NLL, Brier, ECE (15
 * equal-width bins) and equal-mass ECE of the fitting split and the test split, at T = 1 and at T.
 */
export function temperatureLines(s: TemperatureScore): string[] {
  const row = (name: string, f: CalibrationFigures) =>
    `  ${name.padEnd(30)} ${f.nll.toFixed(4).padStart(7)} ${f.brier.toFixed(4).padStart(7)} ${pct(f.ece).padStart(7)} ${pct(f.eceEqualMass).padStart(18)} ${pct(f.accuracy).padStart(8)}`;
  const t = Number(s.temperature.toPrecision(6));
  return [
    ...scoreHeaderLines({ checkpoint: s.checkpoint, epoch: s.epoch, batch: s.batch, data: s.test.data }),
    `temperature: T = ${t}, fitted by minimising NLL on ${s.fittedOn === 'holdout' ? 'the holdout' : 'the --fit-on data'}: ${s.fit.data}`,
    ...[temperatureBoundNote(s.temperature)].filter((l) => l !== null).map((l) => `temperature: ${l}`),
    `  ${''.padEnd(30)} ${'NLL'.padStart(7)} ${'Brier'.padStart(7)} ${'ECE'.padStart(7)} ${'ECE (equal-mass)'.padStart(18)} ${'top-1'.padStart(8)}`,
    row('test, before (T = 1)', s.test.before),
    row(`test, after (T = ${t})`, s.test.after),
    row(`${s.fittedOn === 'holdout' ? 'holdout' : 'fit data'}, before (T = 1)`, s.fit.before),
    row(`${s.fittedOn === 'holdout' ? 'holdout' : 'fit data'}, after (T = ${t})`, s.fit.after),
    `ECE: ${CALIBRATION_BINS} equal-width bins of top-1 confidence; equal-mass: ${CALIBRATION_BINS} bins of equal sample count. Brier: mean Σₖ (pₖ − yₖ)², 0–2. NLL in nats.`,
  ];
}
