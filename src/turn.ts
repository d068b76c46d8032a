/**
 * A turn of Node's event loop in which pending signals are handled, for loops that run batch after
 * batch without one (cached data, no worker threads).
 *
 * Node reads a signal from libuv's signal pipe in the poll phase of the event loop, and runs the
 * `process.on('SIGINT')` handler only then. One `setImmediate` is not enough: awaited from code
 * that itself runs in a poll-phase callback (an I/O completion), it resolves in the check phase of
 * the same iteration, before the next poll, so a signal that arrived during the batch would be seen
 * only after the next batch. An immediate queued from the check phase runs in the next iteration,
 * after its poll phase: two hops always cross a poll (libuv's loop order: timers, pending, idle,
 * prepare, poll, check, close; docs.libuv.org "Design overview").
 */
export async function signalTurn(): Promise<void> {
  await new Promise<void>((r) => setImmediate(r));
  await new Promise<void>((r) => setImmediate(r));
}
