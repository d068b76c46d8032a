/**
 * Signals during `mixup train` (see {@link Interrupts}); exit codes in src/exitcodes.ts.
 */
import { EXIT_SIGINT, EXIT_SIGTERM } from '../exitcodes.js';

export { EXIT_SIGINT, EXIT_SIGTERM } from '../exitcodes.js';

/** What an {@link Interrupts} tells its run. */
export interface InterruptHooks {
  /** Prints a line of diagnostics (stderr in the CLI). */
  info(text: string): void;
  /**
   * Called on a second signal, just before the process exits without a checkpoint: record the
   * stop (status.json). Must not throw for long; an error here is ignored.
   */
  beforeExit(sig: 'sigint' | 'sigterm'): void;
}

/**
 * A second SIGINT/SIGTERM this soon (ms) after the first is the same interrupt delivered twice
 * (`timeout`, schedulers), not a second Ctrl-C.
 */
export const SAME_INTERRUPT_MS = 1000;

/**
 * SIGINT/SIGTERM during a run: the first asks the loop to finish its batch and checkpoint, a second
 * one exits at once. One interrupt often arrives twice: GNU `timeout` signals its child and then its
 * whole process group (the child again), as do other wrappers that signal a process and its group.
 * Under strace the two deliveries landed on different threads of this process, so the kernel did not
 * merge them. A repeat within SAME_INTERRUPT_MS of the first is that same interrupt.
 *
 * Installed when runTraining starts (a signal while the data and the model are set up is kept and
 * acted on after the first batch) and removed only when it returns, so that a late repeat cannot hit
 * the default action (death by SIGINT) while the run is closing down.
 */
export class Interrupts {
  /** The signal that asked the run to stop, or null. A test hook may set it too. */
  request: 'sigint' | 'sigterm' | null = null;
  private firstAt = 0;
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
    if (this.request !== null && performance.now() - this.firstAt < SAME_INTERRUPT_MS) return;
    if (this.request !== null) {
      this.hooks.info(`\nsecond ${sig.toUpperCase()}: exiting now without a checkpoint`);
      try {
        this.hooks.beforeExit(sig);
      } catch {
        // exiting at once matters more than the status file; --resume copes with a stale one
      }
      process.exit(sig === 'sigint' ? EXIT_SIGINT : EXIT_SIGTERM);
    }
    this.request = sig;
    this.firstAt = performance.now();
    this.hooks.info(`\n${sig.toUpperCase()}: finishing the current batch and writing a checkpoint (the same signal again, a second or more later, exits at once)`);
  }

  /** Removes the handlers. */
  dispose(): void {
    if (!this.enabled) return;
    process.off('SIGINT', this.onInt);
    process.off('SIGTERM', this.onTerm);
  }
}

