/**
 * The Vulkan side of WebGPU on Linux, which Dawn reaches through the Vulkan loader: the project-local
 * lavapipe of scripts/setup-lavapipe.sh (Mesa's Vulkan on the CPU, for tests and CI), whether the
 * loader (libvulkan.so.1) opens, and which driver manifests it would read. No Dawn, no tfjs here.
 *
 * Facts this module is built on:
 * - The Vulkan loader reads `VK_ICD_FILENAMES` / `VK_ADD_DRIVER_FILES` when Dawn creates its
 *   instance, so setting them in `process.env` works; `LD_LIBRARY_PATH` is read only at process
 *   start. Dawn dlopens "libvulkan.so.1" by name, and the dynamic linker returns an already loaded
 *   library of that soname, so loading the project's copy by absolute path first (RTLD_NODELETE,
 *   through `process.dlopen`) makes Dawn use it.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../root.js';

/** Where scripts/setup-lavapipe.sh puts Mesa's lavapipe. */
export interface LocalLavapipe {
  /** The ICD manifest (lvp_icd.json) naming the unpacked libvulkan_lvp.so. */
  icd: string;
  /** The directory with libvulkan.so.1, libvulkan_lvp.so and libdrm. */
  lib: string;
  /** e.g. `Mesa 25.0.7-2~bpo12+1`. */
  version: string;
}

/** The project-local lavapipe when scripts/setup-lavapipe.sh completed, else null. */
export function localLavapipe(root: string = packageRoot()): LocalLavapipe | null {
  const base = join(root, '.lavapipe');
  const stamp = join(base, '.complete');
  const icd = join(base, 'root/usr/share/vulkan/icd.d/lvp_icd.json');
  const lib = join(base, 'root/usr/lib/x86_64-linux-gnu');
  if (!existsSync(stamp) || !existsSync(icd) || !existsSync(join(lib, 'libvulkan.so.1'))) return null;
  return { icd, lib, version: readFileSync(stamp, 'utf8').trim() };
}

const DRIVER_VARS = ['VK_ICD_FILENAMES', 'VK_DRIVER_FILES', 'VK_ADD_DRIVER_FILES'] as const;

/** Loads a shared library by path or soname and keeps it loaded; false when it cannot be opened. */
function preload(lib: string): boolean {
  const c = constants.dlopen as Record<string, number>;
  const RTLD_NODELETE = c['RTLD_NODELETE'] ?? 0x1000; // glibc's value; Node does not export it
  try {
    process.dlopen({ exports: {} }, lib, (c['RTLD_NOW'] ?? 2) | (c['RTLD_GLOBAL'] ?? 0x100) | RTLD_NODELETE);
  } catch (e) {
    // Opened (and kept: RTLD_NODELETE) but not a Node addon: what we want.
    return /did not self-register|Module did not/i.test(String((e as Error).message));
  }
  return true;
}

let lavapipeUsed: LocalLavapipe | null = null;

/**
 * Points the Vulkan loader at the project-local lavapipe when .lavapipe/ exists and no driver
 * variable (VK_ICD_FILENAMES, VK_DRIVER_FILES, VK_ADD_DRIVER_FILES) names anything else: adds it
 * with VK_ADD_DRIVER_FILES (other drivers, a real GPU's included, stay visible; child processes
 * inherit it) and preloads its libdrm. Its libvulkan.so.1 is preloaded whenever the system has
 * none. Must run before Dawn creates an instance.
 * @returns the lavapipe added, or null.
 */
export function useLocalLavapipe(environ: NodeJS.ProcessEnv = process.env, root?: string): LocalLavapipe | null {
  if (lavapipeUsed) return lavapipeUsed;
  if (process.platform !== 'linux') return null;
  const lp = localLavapipe(root);
  if (!lp) return null;
  if (!preload('libvulkan.so.1')) preload(join(lp.lib, 'libvulkan.so.1'));
  if (DRIVER_VARS.some((v) => (environ[v] ?? '') !== '' && environ[v] !== lp.icd)) return null;
  for (const l of ['libdrm.so.2', 'libdrm_amdgpu.so.1']) preload(join(lp.lib, l));
  environ['VK_ADD_DRIVER_FILES'] = lp.icd;
  lavapipeUsed = lp;
  return lp;
}

/** Vulkan driver manifests the loader would read (for "no adapter" reports): file names. */
export function vulkanDrivers(environ: NodeJS.ProcessEnv = process.env): string[] {
  const files: string[] = [];
  for (const v of DRIVER_VARS) for (const f of (environ[v] ?? '').split(':')) if (f) files.push(f);
  for (const d of ['/usr/share/vulkan/icd.d', '/etc/vulkan/icd.d', '/usr/local/share/vulkan/icd.d']) {
    try {
      for (const f of readdirSync(d)) if (f.endsWith('.json')) files.push(join(d, f));
    } catch {
      /* no such directory */
    }
  }
  return [...new Set(files)];
}

/** Whether the dynamic linker can open libvulkan.so.1 (after {@link useLocalLavapipe}). */
export function hasVulkanLoader(): boolean {
  return process.platform !== 'linux' || preload('libvulkan.so.1');
}
