/**
 * Dawn instances (`create(flags)` of the `webgpu` package), referenced until the process exits.
 *
 * dawn.node keeps polling an instance's events after JavaScript has dropped it. Once the garbage
 * collector has destroyed the instance, that poll locks a freed mutex and the process aborts
 * (`dawn::native::InstanceBase::ProcessEvents` in the backtrace; `mixup backends` under CPU load
 * aborted in 5 of 30 runs when the instance that lists the adapters was dropped, 0 of 30 with every
 * instance kept). An instance without a live device is small and does not keep Node's event loop
 * running, so keeping them all costs nothing that matters. No tfjs here.
 */

const kept: unknown[] = [];

/**
 * `dawn.create(flags)`, referenced for the life of the process.
 * @param dawn the `webgpu` package's module.
 * @param flags Dawn's instance flags, e.g. `['backend=null']`, `['adapter=NAME']`.
 */
export function createDawnInstance<G>(dawn: { create(flags: string[]): G }, flags: string[]): G {
  const instance = dawn.create(flags);
  kept.push(instance);
  return instance;
}
