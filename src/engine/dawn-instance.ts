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

/** The Dawn toggles the engine's device may be opened with (Dawn's src/dawn/native/Toggles.cpp). */
export const ENGINE_TOGGLES = ['skip_validation', 'disable_robustness'] as const;

/**
 * The toggles of `MIXUP_DAWN_TOGGLES` (comma-separated, e.g. `disable_robustness,skip_validation`),
 * as Dawn instance flags: `['enable-dawn-features=…']`, or `[]` when unset or empty (the default:
 * Dawn's validation and robustness on, until a GPU has shown that turning them off pays).
 * @throws Error with one line naming an unknown toggle.
 */
export function dawnToggleFlags(value: string | undefined): string[] {
  const toggles = (value ?? '').split(',').map((t) => t.trim()).filter((t) => t !== '');
  for (const t of toggles) {
    if (!(ENGINE_TOGGLES as readonly string[]).includes(t)) throw new Error(`MIXUP_DAWN_TOGGLES: unknown toggle ${t} (expected ${ENGINE_TOGGLES.join(', ')})`);
  }
  return toggles.length > 0 ? [`enable-dawn-features=${[...new Set(toggles)].join(',')}`] : [];
}
