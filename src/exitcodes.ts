/**
 * The exit codes of `mixup`, in one place. 130 and 143 are the shell's for a process stopped by
 * SIGINT / SIGTERM (128 + signal number).
 */

/** Success. */
export const EXIT_OK = 0;
/** An internal error (a bug): the CLI prints the stack. */
export const EXIT_INTERNAL = 1;
/** Bad input or an unavailable backend (the default of errors.ts `UserError`). */
export const EXIT_USER = 2;
/** `mixup train` stopped because the loss became NaN or infinite. */
export const EXIT_NAN = 3;
/** A run stopped by SIGINT (Ctrl-C), with a checkpoint. */
export const EXIT_SIGINT = 130;
/** A run stopped by SIGTERM, with a checkpoint. */
export const EXIT_SIGTERM = 143;
