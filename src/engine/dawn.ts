/// <reference types="@webgpu/types" />
/**
 * The webgpu backend's machinery: Dawn (the `webgpu` npm package, a prebuilt `dawn.node`) as
 * `navigator.gpu` for `@tensorflow/tfjs-backend-webgpu`, the choice of adapter (`--gpu N`), the
 * static engine's own device on that adapter ({@link engineDevice}), device errors, and releasing
 * Dawn when a command ends.
 *
 * Facts this module is built on (webgpu 0.6.2, tfjs-backend-webgpu 4.22, Dawn on Vulkan):
 * - tfjs-backend-webgpu registers its backend at import time only when `navigator.gpu` exists, so
 *   Dawn has to be set up first; its priority (3) then outranks wasm and cpu, so callers always
 *   select a backend by name.
 * - Dawn's `create(['adapter=NAME'])` picks the first adapter whose device name contains NAME; when
 *   none does, `requestAdapter` rejects with the list of adapters. That list is how adapters are
 *   enumerated here.
 * - The Vulkan side (the project-local lavapipe, the loader, the drivers) is engine/vulkan.ts.
 * - A live Dawn instance keeps Node's event loop running: {@link releaseWebgpu} ends it.
 * - Dawn writes `Warning: maxDynamicUniformBuffersPerPipelineLayout artificially reduced from
 *   1000000 to 16 to fit dynamic offset allocation limit.` (and the same for
 *   maxDynamicStorageBuffersPerPipelineLayout) to stderr whenever an instance discovers a Vulkan
 *   adapter whose Vulkan driver reports more dynamic buffers per descriptor set than Dawn's fixed
 *   16: lavapipe (1000000), AMD's RADV (500000); NVIDIA's driver reports 15 and 16. The source:
 *   `PhysicalDeviceBase::Initialize` (src/dawn/native/PhysicalDevice.cpp) calls `NormalizeLimits`
 *   (src/dawn/native/Limits.cpp), which logs through `dawn::WarningLog()`, a bare
 *   `fprintf(stderr, …)` (src/dawn/common/Log.cpp) with no switch. It happens inside the first
 *   `requestAdapter` of each instance, synchronously, before any device exists, so the limits a
 *   device is requested with cannot avoid it. {@link requestAdapterQuietly} captures descriptor 2
 *   around that call and lets through everything but these two notices.
 */
import * as tf from '@tensorflow/tfjs';
import { UserError } from '../errors.js';
import { captureNativeStderr } from './native-stderr.js';
import { createDawnInstance, dawnToggleFlags } from './dawn-instance.js';
import { hasVulkanLoader, useLocalLavapipe, vulkanDrivers } from './vulkan.js';

/** What Dawn says about an adapter (WebGPU's GPUAdapterInfo), plus whether it is a CPU. */
export interface AdapterInfo {
  /** e.g. `nvidia`, `mesa`. */
  vendor: string;
  /** e.g. `hopper`, `llvmpipe`. */
  architecture: string;
  /** Device name as Dawn lists it, e.g. `NVIDIA H200`, `llvmpipe (LLVM 15.0.6, 256 bits)`. */
  device: string;
  /** Driver description, e.g. `llvmpipe: Mesa 25.0.7-2~bpo12+1 (LLVM 15.0.6)`. */
  description: string;
  /** True for a software rasteriser (lavapipe/llvmpipe, SwiftShader, a fallback adapter). */
  software: boolean;
  /** Index among the hardware adapters (what `--gpu` counts), or null for a software adapter. */
  index: number | null;
}

/** An entry of Dawn's adapter list. */
export interface ListedAdapter {
  /** Dawn backend, e.g. `vulkan`. */
  backend: string;
  /** Device name. */
  name: string;
}

/** Why webgpu cannot run here; `message` is one line. */
export class WebgpuUnavailable extends Error {
  /** Set when the problem is the user's `--gpu` value (exit 2 even under `auto`). */
  readonly badGpu: boolean;
  /** How to get an adapter, one line, when that is the problem. */
  readonly hint?: string;
  constructor(message: string, badGpu = false, hint?: string) {
    super(message);
    this.name = 'WebgpuUnavailable';
    this.badGpu = badGpu;
    if (hint !== undefined) this.hint = hint;
  }
}

const SOFTWARE = /llvmpipe|lavapipe|swiftshader|software rasterizer/i;

/** True when a device name or driver description is that of a CPU rasteriser. */
export function isSoftwareName(...names: string[]): boolean {
  return names.some((n) => SOFTWARE.test(n));
}

/**
 * Parses the adapter list of Dawn's "no adapter with name …" rejection:
 * lines `* backend: 'vulkan', name: 'llvmpipe (LLVM 15.0.6, 256 bits)'`.
 */
export function parseAdapterList(message: string): ListedAdapter[] {
  const out: ListedAdapter[] = [];
  for (const m of message.matchAll(/^\s*\* backend: '([^']*)', name: '(.*)'\s*$/gm)) out.push({ backend: m[1]!, name: m[2]! });
  return out;
}

/** How to get a hardware adapter when Dawn lists none (for `--gpu N`). */
const NO_HARDWARE_HINT =
  'install the GPU’s Vulkan driver (NVIDIA, AMD, Intel) and libvulkan1; to run on the software adapter (slow, for tests) leave out --gpu and give --backend webgpu';

/**
 * Which adapter `--gpu N` means: the Nth (0-based) hardware adapter of Dawn's list, selected by
 * its name (Dawn's `adapter=` flag matches the first adapter whose name contains it).
 * @returns the `adapter=` name, or null for Dawn's default choice (gpu undefined).
 * @throws WebgpuUnavailable (badGpu) when there is no Nth hardware adapter (with a hint when there is
 *   none at all: a driver, not a package, is missing), or when an earlier
 *   adapter's name contains the Nth one's (identical GPUs), which Dawn's name match cannot tell apart.
 */
export function adapterForGpu(list: readonly ListedAdapter[], gpu: number | undefined): string | null {
  if (gpu === undefined) return null;
  const hardware = list.filter((a) => !isSoftwareName(a.name));
  const names = list.map((a) => `'${a.name}'`).join(', ') || 'none';
  const want = hardware[gpu];
  if (want === undefined && hardware.length === 0) {
    const only = list.length === 0 ? 'Dawn lists no adapter' : `Dawn lists only the software adapter${list.length === 1 ? '' : 's'} ${names}, on the CPU`;
    throw new WebgpuUnavailable(`--gpu ${gpu}: no hardware adapter found (${only})`, true, NO_HARDWARE_HINT);
  }
  if (want === undefined) {
    throw new WebgpuUnavailable(`--gpu ${gpu}: Dawn lists ${hardware.length} hardware adapter${hardware.length === 1 ? '' : 's'} (adapters: ${names}); --gpu counts from 0`, true);
  }
  const before = list.slice(0, list.indexOf(want));
  if (before.some((a) => a.name.includes(want.name))) {
    throw new WebgpuUnavailable(
      `--gpu ${gpu}: the adapter '${want.name}' has the name of an earlier one, and Dawn selects adapters by name; make only that GPU visible to the process instead (Slurm's per-task GPU binding, or NVIDIA_VISIBLE_DEVICES in a container) and leave out --gpu`,
      true,
    );
  }
  return want.name;
}

type DawnModule = { create(flags: string[]): GpuLike; globals: Record<string, unknown> };
interface GpuLike {
  requestAdapter(options?: { powerPreference?: string }): Promise<AdapterLike | null>;
}
interface AdapterLike {
  limits?: GPUSupportedLimits;
  requestDevice?(descriptor?: GPUDeviceDescriptor): Promise<GPUDevice>;
  info?: { vendor?: string; architecture?: string; device?: string; description?: string; isFallbackAdapter?: boolean };
}

/**
 * Dawn's notice that it clamps an adapter's dynamic-buffer limits to its own 16 (see the module
 * comment): one line, without its newline.
 */
export const DAWN_LIMIT_NOTICE = /^Warning: maxDynamic(?:Uniform|Storage)BuffersPerPipelineLayout artificially reduced from \d+ to \d+ to fit dynamic offset allocation limit\.$/;

/** `text` without the lines that are {@link DAWN_LIMIT_NOTICE}s. */
export function withoutDawnLimitNotices(text: string): string {
  return text
    .split(/(?<=\n)/)
    .filter((l) => !DAWN_LIMIT_NOTICE.test(l.replace(/\r?\n$/, '')))
    .join('');
}

/**
 * `gpu.requestAdapter(options)` with what Dawn writes to stderr meanwhile captured (it discovers the
 * adapters inside this call): its limit notices are dropped, anything else is written to stderr.
 * @returns requestAdapter's promise (a rejection included).
 */
function requestAdapterQuietly(gpu: GpuLike, options?: { powerPreference?: string }): Promise<AdapterLike | null> {
  const { value, text } = captureNativeStderr(() => {
    try {
      return gpu.requestAdapter(options);
    } catch (e) {
      return Promise.reject(e as Error);
    }
  });
  const rest = withoutDawnLimitNotices(text);
  if (rest !== '') process.stderr.write(rest);
  return value;
}

/** Dawn's live instance while webgpu is set up. */
let active: { gpu: GpuLike; adapter: AdapterInfo; navigatorDefined: boolean; device: GPUDevice | null } | null = null;

const NO_ADAPTER_HINT =
  'install a GPU driver with Vulkan (NVIDIA, AMD, Intel) and libvulkan1, or, without a GPU, run scripts/setup-lavapipe.sh for lavapipe on the CPU (Debian 12’s own Mesa 22 lavapipe is refused by Dawn)';

/**
 * Sets up Dawn as `navigator.gpu` on the adapter `gpu` names (the Nth hardware adapter; undefined:
 * Dawn's default, high-performance first) and returns that adapter. Idempotent while set up.
 * Does not import tfjs-backend-webgpu (the caller does, after this).
 * @throws WebgpuUnavailable with a one-line reason: the package or its dawn.node does not load,
 *   no libvulkan.so.1, no adapter (naming the Vulkan drivers found), a bad `--gpu`.
 */
export async function setUpDawn(gpu?: number): Promise<AdapterInfo> {
  if (active) return active.adapter;
  useLocalLavapipe();
  let dawn: DawnModule;
  try {
    dawn = (await import('webgpu')) as unknown as DawnModule;
  } catch (e) {
    throw new WebgpuUnavailable(`the webgpu package (Dawn) failed to load: ${String((e as Error).message).split('\n')[0]}`);
  }
  if (!hasVulkanLoader()) {
    throw new WebgpuUnavailable('no libvulkan.so.1 (the Vulkan loader, through which Dawn reaches the GPU on Linux)', false, NO_ADAPTER_HINT);
  }
  // Dawn's list of adapters: a name no adapter has makes requestAdapter reject with it.
  let list: ListedAdapter[] = [];
  try {
    await requestAdapterQuietly(createDawnInstance(dawn, ['adapter=\u0001mixup: list the adapters']));
  } catch (e) {
    list = parseAdapterList(String((e as Error).message ?? e));
  }
  if (list.length === 0) {
    const drivers = vulkanDrivers();
    const found = drivers.length ? `Vulkan drivers found: ${drivers.join(', ')}, none usable by Dawn` : 'no Vulkan driver found';
    throw new WebgpuUnavailable(`Dawn finds no adapter (${found})`, false, NO_ADAPTER_HINT);
  }
  const name = adapterForGpu(list, gpu);
  let toggles: string[];
  try {
    toggles = dawnToggleFlags(process.env['MIXUP_DAWN_TOGGLES']);
  } catch (e) {
    throw new UserError((e as Error).message);
  }
  const instance = createDawnInstance(dawn, [...(name === null ? [] : [`adapter=${name}`]), ...toggles]);
  const adapter = await requestAdapterQuietly(instance, { powerPreference: 'high-performance' });
  if (!adapter) throw new WebgpuUnavailable(`Dawn lists adapters (${list.map((a) => a.name).join(', ')}) but returns none`);
  const i = adapter.info ?? {};
  // The JavaScript side sees a sanitised device name ('llvmpipe-llvm-15-0-6-256-bits-'); show the listed one.
  const sanitised = (n: string) => n.toLowerCase().replace(/[^a-z0-9]+/g, '-');
  const device = name ?? list.find((a) => sanitised(a.name) === sanitised(i.device ?? ''))?.name ?? i.device ?? '';
  const software = i.isFallbackAdapter === true || isSoftwareName(device, i.description ?? '', i.architecture ?? '');
  const hardware = list.filter((a) => !isSoftwareName(a.name));
  const index = software ? null : Math.max(0, hardware.findIndex((a) => a.name === device));
  const info: AdapterInfo = { vendor: i.vendor ?? '', architecture: i.architecture ?? '', device, description: i.description ?? '', software, index };
  Object.assign(globalThis, dawn.globals);
  const g = globalThis as { navigator?: { gpu?: unknown } };
  let navigatorDefined = false;
  if (g.navigator === undefined) {
    Object.defineProperty(globalThis, 'navigator', { value: { gpu: instance }, configurable: true, writable: true });
    navigatorDefined = true;
  } else {
    Object.defineProperty(g.navigator, 'gpu', { value: instance, configurable: true, writable: true });
  }
  active = { gpu: instance, adapter: info, navigatorDefined, device: await engineDeviceOf(adapter) };
  return info;
}

/** The first error the webgpu device reported since {@link watchDeviceErrors}, or null. */
let deviceError: string | null = null;

/** Records the first error `e` of a device in {@link deviceError}. */
function recordDeviceError(e: { error?: { message?: string } }): void {
  deviceError ??= (e.error?.message ?? 'unknown error').split('\n').find((l) => l.trim() !== '')?.trim() ?? 'unknown error';
}

/**
 * The static engine's own device on the adapter Dawn was set up on (the same one tfjs-webgpu
 * uses), with the adapter's limits for buffer sizes, workgroup memory and up to 10 storage buffers
 * per stage (the static kernels bind more than WebGPU's default 8; tfjs-webgpu asks for the
 * default). Its errors go to {@link assertNoDeviceError}. Null when the adapter gives no device.
 */
async function engineDeviceOf(adapter: AdapterLike): Promise<GPUDevice | null> {
  const l = adapter.limits;
  if (!adapter.requestDevice || !l) return null;
  try {
    const requiredLimits = {
      maxBufferSize: l.maxBufferSize,
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      maxStorageBuffersPerShaderStage: Math.min(l.maxStorageBuffersPerShaderStage, 10),
      maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
    };
    // Dawn repeats its limit notices here (see the module comment): caught as around requestAdapter.
    const { value, text } = captureNativeStderr(() => adapter.requestDevice!({ requiredLimits }));
    const rest = withoutDawnLimitNotices(text);
    if (rest !== '') process.stderr.write(rest);
    const device = await value;
    device.onuncapturederror = recordDeviceError as unknown as GPUDevice['onuncapturederror'];
    return device;
  } catch {
    return null;
  }
}

/**
 * The device the static WebGPU engine (engine/webgpu/) runs on while Dawn is set up
 * ({@link setUpDawn} requests it from the chosen adapter, so `--gpu` applies), or null.
 * It lives until {@link releaseWebgpu}; the caller must not destroy it.
 */
export function engineDevice(): GPUDevice | null {
  return active?.device ?? null;
}

/**
 * Once the webgpu backend is active: records the first error its device reports. tfjs-backend-webgpu
 * does not look at them, so a kernel whose shader fails to compile (tfjs-webgpu 4.22 writes invalid
 * WGSL for some rank-5 broadcasts) would otherwise leave its output unwritten while training goes on.
 * {@link assertNoDeviceError} turns a recorded error into a stop.
 */
export function watchDeviceErrors(): void {
  deviceError = null;
  const registry = (tf.engine() as unknown as { registry: Record<string, { device?: { onuncapturederror: unknown } }> }).registry;
  const device = registry['webgpu']?.device;
  if (!device) return;
  device.onuncapturederror = recordDeviceError;
}

/**
 * Call after reading results from the device (the training loop's reads, evaluation).
 * @throws UserError when the webgpu device reported an error: the results read are not valid.
 */
export function assertNoDeviceError(): void {
  if (deviceError === null) return;
  const first = deviceError;
  deviceError = null;
  throw new UserError(`webgpu: the GPU device reported an error, so the results computed since are not valid: ${first} (a kernel failed to compile or run; try --backend wasm, and report it)`);
}

/** The adapter webgpu runs on, or null when Dawn is not set up. */
export function webgpuAdapter(): AdapterInfo | null {
  return active?.adapter ?? null;
}

/**
 * One line for an adapter, e.g. `llvmpipe (LLVM 15.0.6, 256 bits); vendor mesa, architecture
 * software, driver llvmpipe: Mesa 25.0.7-2~bpo12+1 (LLVM 15.0.6) 0.0.1; software rasteriser on the CPU`.
 */
export function describeAdapter(a: AdapterInfo): string {
  const facts = [['vendor', a.vendor], ['architecture', a.architecture], ['driver', a.description]].filter(([, v]) => v !== '').map(([k, v]) => `${k} ${v}`);
  const parts = [a.index !== null ? `GPU ${a.index}: ${a.device}` : a.device, facts.join(', ')];
  if (a.software) parts.push('software rasteriser on the CPU');
  return parts.filter((s) => s !== '').join('; ');
}

/**
 * Ends webgpu: removes tfjs's webgpu backend (its buffers), destroys the device and drops
 * `navigator.gpu`, so that Dawn no longer keeps the process alive. Safe to call when not set up.
 */
export function releaseWebgpu(): void {
  try {
    // Not tf.findBackend: that would initialise a backend that never was.
    const registry = (tf.engine() as unknown as { registry: Record<string, { device?: { destroy(): void } }> }).registry;
    const backend = registry['webgpu'];
    const factory = tf.findBackendFactory('webgpu');
    if (backend) backend.device?.destroy();
    if (factory) {
      tf.removeBackend('webgpu');
      // The package registers its factory once, at import; keep it for a later setUpDawn (it reads
      // navigator.gpu when called). Priority 0: never tfjs's default.
      tf.registerBackend('webgpu', factory, 0);
    }
  } catch {
    /* never registered */
  }
  if (!active) return;
  active.device?.destroy();
  const g = globalThis as { navigator?: { gpu?: unknown } };
  if (active.navigatorDefined) delete (globalThis as Record<string, unknown>)['navigator'];
  else if (g.navigator) delete g.navigator.gpu;
  active = null;
}

