/** Label checks and class names shared by the data formats. */
import { UserError } from '../errors.js';
import { CIFAR10_CLASSES } from './cifarbin.js';

/**
 * A label as training takes it.
 * @param where the file and record, for the message.
 * @returns `value` when it is an integer in [0, numClasses).
 * @throws UserError `<where>: label <v> is not an integer in [0, <numClasses>)` otherwise.
 */
export function checkLabel(value: number, numClasses: number, where: string): number {
  if (!Number.isInteger(value) || value < 0 || value >= numClasses) {
    throw new UserError(`${where}: label ${value} is not an integer in [0, ${numClasses})`);
  }
  return value;
}

/** CIFAR-10's class names for 10 classes, else `class 0`, `class 1`, ... */
export function defaultClassNames(n: number): string[] {
  return n === 10 ? [...CIFAR10_CLASSES] : Array.from({ length: n }, (_, i) => `class ${i}`);
}
