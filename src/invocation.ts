/**
 * How to run this `mixup` again from any directory, for the commands the tool prints (`resume with:
 * ...`): `npx mixup` works only inside the checkout (elsewhere npx asks the registry for a package
 * called mixup), so the hint names the program that is running.
 */
import { accessSync, constants, realpathSync } from 'node:fs';
import { delimiter, isAbsolute, join, resolve } from 'node:path';

/** `s` as one word for sh: unchanged when it is only safe characters, else in single quotes. */
export function shellWord(s: string): string {
  return /^[A-Za-z0-9_./:=+@%,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

function sameFile(a: string, b: string): boolean {
  try {
    return realpathSync(a) === realpathSync(b);
  } catch {
    return false;
  }
}

/**
 * The command that runs this `mixup` from any directory: `mixup` when the first `mixup` on the PATH is
 * this program (after `npm link` or `npm install -g .`), else the absolute path of the running script.
 * @param script the running script (process.argv[1], e.g. /home/me/mixup/bin/mixup).
 * @param pathEnv the PATH to look in.
 */
export function mixupCommand(script: string | undefined = process.argv[1], pathEnv: string | undefined = process.env['PATH']): string {
  if (script === undefined) return 'mixup';
  for (const dir of (pathEnv ?? '').split(delimiter)) {
    if (dir === '' || !isAbsolute(dir)) continue;
    const candidate = join(dir, 'mixup');
    try {
      accessSync(candidate, constants.X_OK);
    } catch {
      continue;
    }
    // the first mixup on the PATH is what the shell runs: the short name only when it is this one
    return sameFile(candidate, script) ? 'mixup' : shellWord(resolve(script));
  }
  return shellWord(resolve(script));
}
