/**
 * What must be released before the process exits, whichever module loaded it: a backend module
 * registers its release when it is loaded (engine/tfjs/backend.ts registers `releaseBackends`, which
 * also releases Dawn), and the CLI calls {@link releaseAll} once a command ends. So the CLI can load
 * TensorFlow.js and Dawn lazily (a command that needs no backend loads neither) and still release
 * Dawn on every path: a Dawn instance left alive at exit can abort the process.
 * No tfjs here: importing this module loads nothing.
 */

const releases = new Set<() => void>();

/** Registers a release to run at the end of a command (a function registered twice runs once). */
export function registerRelease(release: () => void): void {
  releases.add(release);
}

/**
 * Runs every registered release, in registration order, once each; an error in one does not stop
 * the others (the first is rethrown after all ran).
 */
export function releaseAll(): void {
  let first: unknown = null;
  for (const r of releases) {
    try {
      r();
    } catch (e) {
      first ??= e;
    }
  }
  if (first !== null) throw first;
}
