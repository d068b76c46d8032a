/**
 * Seeded Beta(α, α) sampling for the mixing weights λ. The sampler is
 * @stdlib/random-base-beta (Jöhnk's algorithm for α < 1, gamma-based otherwise) driven by one of
 * the project's uniform streams (src/random.ts), so λ is a pure function of the stream's
 * coordinates.
 */
import beta from '@stdlib/random-base-beta';
import { UserError } from '../errors.js';
import type { Uniform } from '../random.js';

/** A generator of Beta(α, α) variates in [0, 1]. */
export type BetaSampler = () => number;

/**
 * A Beta(α, α) sampler that draws its uniforms from `u` (consumed in order, never copied).
 * @param alpha α > 0 (config `mixup.alpha`).
 * @param u a seeded uniform [0, 1) stream, e.g. `uniformStream(seed, 'mixup', epoch, batch)`.
 * @throws UserError when α is not a positive finite number.
 */
export function betaSampler(alpha: number, u: Uniform): BetaSampler {
  if (!(alpha > 0) || !Number.isFinite(alpha)) {
    throw new UserError(`mixup.alpha: ${alpha} is not a valid α for Beta(α, α): expected a number > 0`);
  }
  // `prng` is used as given (stdlib does not copy or reseed an external generator).
  return beta.factory(alpha, alpha, { prng: u });
}
