/**
 * The flags of `mixup test --attack KIND --eps E [--steps K]`, checked into an attack.
 */
import { UserError } from '../errors.js';
import { ATTACKS, DEFAULT_IFGSM_STEPS, type AttackKind, type AttackOptions } from '../engine/attack.js';

/**
 * The attack `mixup test --attack KIND --eps E [--steps K]` asks for, checked.
 * @param flags the option values as commander gives them (strings, or undefined when absent).
 * @returns the attack, or undefined when `--attack` is absent.
 * @throws UserError naming the flag: --eps or --steps without --attack, --attack without --eps,
 *   ε not a number in [0, 255], steps not a positive integer, --steps with fgsm.
 */
export function parseAttackFlags(flags: { attack?: string; eps?: string; steps?: string }): AttackOptions | undefined {
  if (flags.attack === undefined) {
    const stray = flags.eps !== undefined ? '--eps' : flags.steps !== undefined ? '--steps' : null;
    if (stray) throw new UserError(`${stray} goes with --attack fgsm|ifgsm`);
    return undefined;
  }
  const kind = flags.attack as AttackKind;
  if (!ATTACKS.includes(kind)) throw new UserError(`--attack ${flags.attack}: expected one of ${ATTACKS.join(', ')}`);
  if (flags.eps === undefined) throw new UserError(`--attack ${kind}: --eps E is required (E in pixel levels 0-255, e.g. --eps 2)`);
  const eps = Number(flags.eps);
  if (flags.eps.trim() === '' || !Number.isFinite(eps) || eps < 0 || eps > 255) throw new UserError(`--eps ${flags.eps}: expected a number of pixel levels in [0, 255]`);
  if (kind === 'fgsm' && flags.steps !== undefined) throw new UserError('--steps goes with --attack ifgsm (FGSM is one step of ε)');
  const steps = flags.steps === undefined ? (kind === 'fgsm' ? 1 : DEFAULT_IFGSM_STEPS) : Number(flags.steps);
  if (!Number.isInteger(steps) || steps < 1) throw new UserError(`--steps ${flags.steps}: expected a positive whole number`);
  return { kind, eps, steps };
}
