/**
 * `<out>/train.log`: every line a training run prints to the terminal, each with the time it was
 * printed, so that a run started under nohup or a scheduler can be read later. Appended to, so a
 * resumed run continues the log of the run it resumes.
 */
import { closeSync, openSync, writeSync } from 'node:fs';

/** `2026-12-01T05:30:12Z` (UTC, whole seconds). */
export function logTimestamp(d: Date = new Date()): string {
  return d.toISOString().replace(/\.\d+Z$/, 'Z');
}

/**
 * Collects printed lines and appends them to a file once {@link RunLog.open} names it (lines from
 * before, such as the backend, are written then, with the time they were printed).
 */
export class RunLog {
  private pending: string[] = [];
  private fd: number | null = null;

  /**
   * Records printed text: one log line `<timestamp> <line>` per non-empty line of `text`.
   */
  write(text: string): void {
    const stamp = logTimestamp();
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      const entry = `${stamp} ${line}\n`;
      if (this.fd === null) this.pending.push(entry);
      else writeSync(this.fd, entry);
    }
  }

  /**
   * Starts appending to `file` (created when missing), first the lines recorded so far.
   * @throws the file-system error when `file` cannot be opened for appending.
   */
  open(file: string): void {
    if (this.fd !== null) return;
    this.fd = openSync(file, 'a');
    for (const entry of this.pending) writeSync(this.fd, entry);
    this.pending = [];
  }

  /** Stops writing; later lines are kept in memory only. */
  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}
