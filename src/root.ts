/**
 * Where this package lives: the one lookup of the repository root for src/, bench/ and test/
 * (each of which runs from its source under tsx and from dist/ compiled).
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The nearest directory at or above `from` (default: this module) whose package.json is the
 * `mixup` package's, or null when there is none (a copy of the code outside its package).
 */
export function findPackageRoot(from: string = fileURLToPath(import.meta.url)): string | null {
  let dir = dirname(from);
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'mixup') return dir;
    if (dirname(dir) === dir) return null;
    dir = dirname(dir);
  }
}

/**
 * The repository root (see {@link findPackageRoot}).
 * @throws Error when this module is not inside the mixup package (an installation fault, not user input).
 */
export function packageRoot(): string {
  const root = findPackageRoot();
  if (root === null) throw new Error(`package.json of mixup not found above ${fileURLToPath(import.meta.url)}`);
  return root;
}
