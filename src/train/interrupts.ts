/**
 * Signals during `mixup train` (see {@link Interrupts}); exit codes in src/exitcodes.ts.
 */
import { EXIT_SIGINT, EXIT_SIGTERM } from '../exitcodes.js';

export { EXIT_SIGINT, EXIT_SIGTERM } from '../exitcodes.js';

/** What an {@link Interrupts} tells its run. */
export interface InterruptHooks {
  /** Prints a line of diagnostics (stderr in the CLI; it starts a new line when a progress bar is drawn). */
  info(text: string): void;
  /**
   * Called on a second signal, just before the process exits without a checkpoint: record the
   * stop (status.json). Must not throw for long; an error here is ignored.
   */
  beforeExit(sig: 'sigint' | 'sigterm'): void;
}

/**
 * A repeat of SIGINT/SIGTERM handled this soon (ms) after the first is the same interrupt delivered
 * twice (`timeout`, schedulers: microseconds apart), not a second Ctrl-C; so is one handled in the
 * same turn of the event loop as the first.
 */
export const SAME_INTERRUPT_MS = 10;

/**
 * SIGINT/SIGTERM during a run: the first asks the loop to finish its batch and checkpoint, a second
 * one exits at once. One interrupt often arrives twice: GNU `timeout` signals its child and then its
 * whole process group (the child again), as do other wrappers that signal a process and its group.
 * Under strace the two deliveries landed on different threads of this process, so the kernel did not
 * merge them.
 *
 * When a signal arrived cannot be known in JavaScript: its handler runs on the next turn of the event
 * loop, which comes after the batch (training or evaluation) in progress; the loops yield once after
 * every batch. So the rule is: deliveries handled in the same turn as the first, or within
 * SAME_INTERRUPT_MS of it, are that same interrupt; one handled in a later turn is a second Ctrl-C.
 * Two presses within one batch therefore count as one.
 *
 * Installed when runTraining starts (a signal while the data and the model are set up is kept and
 * acted on after the first batch) and removed only when it returns, so that a late repeat cannot hit
 * the default action (death by SIGINT) while the run is closing down.
 */
export class Interrupts {
  /** The signal that asked the run to stop, or null. A test hook may set it too. */
  request: 'sigint' | 'sigterm' | null = null;
  private firstAt = 0;
  /** True from the first signal until the event loop turns. */
  private firstTurn = false;
  private readonly onInt = () => this.receive('sigint');
  private readonly onTerm = () => this.receive('sigterm');

  constructor(
    private readonly hooks: InterruptHooks,
    private readonly enabled: boolean,
  ) {
    if (!enabled) return;
    process.on('SIGINT', this.onInt);
    process.on('SIGTERM', this.onTerm);
  }

  private receive(sig: 'sigint' | 'sigterm'): void {
    if (this.request !== null && (this.firstTurn || performance.now() - this.firstAt < SAME_INTERRUPT_MS)) return;
    if (this.request !== null) {
      this.hooks.info(`second ${sig.toUpperCase()}: exiting now without a checkpoint`);
      try {
        this.hooks.beforeExit(sig);
      } catch {
        // exiting at once matters more than the status file; --resume copes with a stale one
      }
      process.exit(sig === 'sigint' ? EXIT_SIGINT : EXIT_SIGTERM);
    }
    this.request = sig;
    this.firstAt = performance.now();
    this.firstTurn = true;
    setImmediate(() => (this.firstTurn = false)).unref();
    this.hooks.info(`${sig.toUpperCase()}: finishing the current batch and writing a checkpoint (the same signal again exits at once, without one)`);
  }

  /** Removes the handlers. */
  dispose(): void {
    if (!this.enabled) return;
    process.off('SIGINT', this.onInt);
    process.off('SIGTERM', this.onTerm);
  }
}

