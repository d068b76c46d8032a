/**
 * Which GPUs this machine can have, found without starting a GPU library: the device nodes a
 * hardware GPU is reached through. Backend selection (./backend.ts) asks before it starts Dawn.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The device nodes through which a hardware GPU is reached on Linux: DRM render nodes
 * (`/dev/dri/renderD128`, AMD, Intel and others), NVIDIA's `/dev/nvidia0`…, and WSL's `/dev/dxg`
 * (Mesa's Vulkan-on-D3D12). Without any, Dawn can only find a software rasteriser.
 * @param dev the device directory (tests pass another).
 * @returns their paths, sorted; [] when there are none.
 */
export function gpuDeviceNodes(dev = '/dev'): string[] {
  const found: string[] = [];
  const list = (d: string): string[] => {
    try {
      return readdirSync(d);
    } catch {
      return [];
    }
  };
  for (const f of list(join(dev, 'dri'))) if (/^renderD\d+$/.test(f)) found.push(join(dev, 'dri', f));
  for (const f of list(dev)) if (/^nvidia\d+$/.test(f) || f === 'dxg') found.push(join(dev, f));
  return found.sort();
}

/**
 * Whether Dawn could find a hardware adapter here, decided without starting Dawn: elsewhere than
 * Linux always true; on Linux, true when {@link gpuDeviceNodes} lists any.
 */
export function hardwareGpuPossible(): boolean {
  return process.platform !== 'linux' || gpuDeviceNodes().length > 0;
}
