/**
 * Where a user's data lives by default: `mixup data download` writes there, and `mixup train`
 * looks there when a config names no data (relative to the directory the command runs in).
 */
export const DEFAULT_DATA_DIR = 'data/cifar10';
