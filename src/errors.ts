/**
 * Errors a user can act on. The CLI prints them as one line `mixup: error: <message>` and exits
 * with `exitCode` (2 by default); a stack trace is printed only with `--verbose`.
 */
export class UserError extends Error {
  /** Process exit code the CLI uses for this error (2: bad input or unavailable backend). */
  readonly exitCode: number;

  /**
   * @param message one line naming the file / key / offset and what was expected (several problems
   *   found at once: one line each, joined by `\n`; each is printed as a line of its own).
   * @param exitCode process exit code, default 2.
   */
  constructor(message: string, exitCode = 2, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'UserError';
    this.exitCode = exitCode;
  }
}

/** True when `e` is a {@link UserError}. */
export function isUserError(e: unknown): e is UserError {
  return e instanceof UserError;
}

/** First line of an error's message (or of `String(e)` for non-errors), for one-line reports. */
export function firstLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return msg.split('\n').find((l) => l.trim() !== '')?.trim() ?? msg;
}
