/// <reference types="@webgpu/types" />
/**
 * A WebGPU device for the static engine, straight from Dawn (the `webgpu` npm package's
 * `dawn.node`), independent of tfjs: on a real adapter, on the project-local lavapipe
 * (scripts/setup-lavapipe.sh) or on Dawn's null backend (`backend=null`: accepts every command,
 * runs nothing; what the host-time benchmark runs on). The null backend backs every buffer with host
 * memory and refuses, with an out-of-memory error, a createBuffer that would take the sum of the
 * device's live buffers past {@link NULL_BACKEND_MEMORY}: a fixed cap of that backend (Dawn's
 * dawn/native/null DeviceNull `kMaxMemoryUsage`, checked in `IncrementMemoryUsage`), not a
 * GPUSupportedLimits entry, so no requiredLimits can raise it. Its adapter's own limits
 * (maxBufferSize 256 MiB, maxStorageBufferBindingSize 128 MiB) bound single buffers.
 *
 * Also {@link countingDevice}: a wrapper that counts the device's `create*` calls, for the test
 * and the benchmark that nothing is created after the first training step ({@link createdSince}).
 */
import { hasVulkanLoader, useLocalLavapipe, vulkanDrivers } from '../vulkan.js';
import { createDawnInstance } from '../dawn-instance.js';

/**
 * The most bytes of buffers Dawn's null backend holds at once (512 MiB; measured with webgpu 0.6.2:
 * buffers of 4·128 MiB − 4 bytes and 4 bytes are accepted, 4 more bytes are out of memory).
 */
export const NULL_BACKEND_MEMORY = 512 * 2 ** 20;

/** WebGPU's GPUBufferUsage flags (numeric, so no Dawn globals are needed). */
export const BufferUsage = { MAP_READ: 0x1, COPY_SRC: 0x4, COPY_DST: 0x8, UNIFORM: 0x40, STORAGE: 0x80 } as const;
/** WebGPU's GPUMapMode.READ. */
export const MAP_READ = 0x1;

/** What {@link openDevice} opens. */
export interface DeviceOptions {
  /** `null`: Dawn's null backend; undefined: Dawn's default adapter (high performance first). */
  backend?: 'null';
  /**
   * Dawn toggles to enable (`enable-dawn-features=`), e.g. `skip_validation`, `disable_robustness`
   * (Dawn's src/dawn/native/Toggles.cpp).
   */
  toggles?: string[];
  /** Optional features to enable where the adapter has them (e.g. `timestamp-query` for profile.ts). */
  features?: GPUFeatureName[];
}

/** An open device and how to let it go. */
export interface OpenDevice {
  device: GPUDevice;
  /** Adapter as Dawn describes it, e.g. `llvmpipe (...)`, `null-backend`. */
  adapter: string;
  /** Destroys the device (Dawn then no longer keeps the process alive). */
  close(): void;
}

/**
 * Why Dawn found no adapter and how to get one, in one line: the Vulkan loader missing, or no
 * usable Vulkan driver (naming the manifests found) with VK_DRIVER_FILES for the vendor's one.
 */
function noAdapterLine(flags: string[]): string {
  if (flags.includes('backend=null')) return `Dawn found no adapter (flags: ${flags.join(' ')})`;
  if (!hasVulkanLoader()) {
    return 'Dawn found no adapter: no libvulkan.so.1, the Vulkan loader Dawn reaches the GPU through (Debian/Ubuntu: apt-get install libvulkan1; without a GPU: scripts/setup-lavapipe.sh for lavapipe on the CPU)';
  }
  const drivers = vulkanDrivers();
  const found = drivers.length > 0 ? `the Vulkan drivers ${drivers.join(', ')} give none` : 'no Vulkan driver (ICD manifest) found';
  return `Dawn found no adapter: ${found}; install the GPU's Vulkan driver, or point VK_DRIVER_FILES at its ICD manifest (NVIDIA in a container: nvidia_icd.json, which needs NVIDIA_DRIVER_CAPABILITIES to include graphics)`;
}

/**
 * Opens a device with the adapter's own limits for buffer sizes and storage buffers per stage.
 * @throws Error with one line when the `webgpu` package does not load or no adapter is found (saying
 *   what is missing and how to get it).
 */
export async function openDevice(o: DeviceOptions = {}): Promise<OpenDevice> {
  if (o.backend !== 'null') useLocalLavapipe();
  let dawn: { create(flags: string[]): GPU };
  try {
    dawn = (await import('webgpu')) as unknown as typeof dawn;
  } catch (e) {
    throw new Error(`the webgpu package (Dawn) failed to load: ${String((e as Error).message).split('\n')[0]}`);
  }
  const flags: string[] = [];
  if (o.backend === 'null') flags.push('backend=null');
  if (o.toggles && o.toggles.length > 0) flags.push(`enable-dawn-features=${o.toggles.join(',')}`);
  const gpu = createDawnInstance(dawn, flags); // kept: a collected instance can crash Dawn (dawn-instance.ts)
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new Error(noAdapterLine(flags));
  const l = adapter.limits;
  const device = await adapter.requestDevice({
    requiredFeatures: (o.features ?? []).filter((f) => adapter.features.has(f)),
    requiredLimits: {
      maxBufferSize: l.maxBufferSize,
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      maxStorageBuffersPerShaderStage: Math.min(l.maxStorageBuffersPerShaderStage, 10),
      maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
    },
  });
  const info = adapter.info;
  return {
    device,
    adapter: info.device || info.description || info.vendor || 'unknown adapter',
    close: () => {
      device.destroy();
    },
  };
}

/** `create*` calls a {@link countingDevice} saw. */
export interface CreateCounts {
  buffers: number;
  bindGroups: number;
  pipelines: number;
  /** createCommandEncoder: one per submitted step, by WebGPU's design (command buffers are single-use). */
  commandEncoders: number;
  other: number;
}

/** The `create*` calls between two snapshots of a {@link countingDevice}'s counts (`now − before`). */
export function createdSince(before: CreateCounts, now: CreateCounts): CreateCounts {
  return {
    buffers: now.buffers - before.buffers,
    bindGroups: now.bindGroups - before.bindGroups,
    pipelines: now.pipelines - before.pipelines,
    commandEncoders: now.commandEncoders - before.commandEncoders,
    other: now.other - before.other,
  };
}

/**
 * The GPU objects in `c` that a static engine makes once and keeps (buffers, bind groups, pipelines,
 * everything else), i.e. all but the command encoders, which WebGPU makes single-use.
 */
export function keptObjects(c: CreateCounts): number {
  return c.buffers + c.bindGroups + c.pipelines + c.other;
}

/**
 * A device whose createBuffer, createBindGroup, create(Compute)Pipeline and every other `create*`
 * call is counted (and forwarded); everything else is the device itself.
 * @returns the proxy and the live counts.
 */
export function countingDevice(device: GPUDevice): { device: GPUDevice; counts: CreateCounts } {
  const counts: CreateCounts = { buffers: 0, bindGroups: 0, pipelines: 0, commandEncoders: 0, other: 0 };
  const proxy = new Proxy(device, {
    get(target, prop) {
      const v = Reflect.get(target, prop, target) as unknown;
      if (typeof v !== 'function') return v;
      const fn = v as (...a: unknown[]) => unknown;
      if (typeof prop === 'string' && prop.startsWith('create')) {
        return (...args: unknown[]) => {
          if (prop === 'createBuffer') counts.buffers++;
          else if (prop === 'createBindGroup') counts.bindGroups++;
          else if (/^create(Compute|Render)Pipeline/.test(prop)) counts.pipelines++;
          else if (prop === 'createCommandEncoder') counts.commandEncoders++;
          else counts.other++;
          return fn.apply(target, args);
        };
      }
      return fn.bind(target);
    },
  });
  return { device: proxy, counts };
}
