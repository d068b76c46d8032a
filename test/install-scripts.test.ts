// npm 11 skips the install scripts of dependencies that package.json's `allowScripts` does not
// allow, and ends `npm install` with a list of them. Every package of package-lock.json with an
// install script must be allowed or denied there, so that the list stays empty and the scripts that
// matter run. Reads the two files only: no network, no npm.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
const pkg = JSON.parse(readFileSync(`${root}package.json`, 'utf8')) as {
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  allowScripts?: Record<string, unknown>;
};
const lock = JSON.parse(readFileSync(`${root}package-lock.json`, 'utf8')) as {
  packages: Record<string, { name?: string; version?: string; resolved?: string; hasInstallScript?: boolean }>;
};

/**
 * The install scripts reviewed and allowed, at the version reviewed. A new version is allowed only
 * after its script is read again and this table updated.
 * - @tensorflow/tfjs-node(-gpu): `node scripts/install.js` downloads libtensorflow 2.9.1 (CPU, or
 *   the CUDA 11.2 build) from storage.googleapis.com into deps/ and the prebuilt N-API binding with
 *   node-pre-gyp (building it with node-gyp when there is none); without it the package cannot load.
 * - webgpu: `node build/postinstall.js` removes macOS's quarantine attribute from
 *   dist/darwin-universal/dawn.node so that macOS loads it; elsewhere it does nothing.
 */
const REVIEWED: Record<string, string> = {
  '@tensorflow/tfjs-node': '4.22.0',
  '@tensorflow/tfjs-node-gpu': '4.22.0',
  webgpu: '0.6.2',
};

/** The package name of a lockfile key such as `node_modules/a/node_modules/@s/b`. */
function nameOf(path: string, entry: { name?: string }): string {
  return entry.name ?? path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length);
}

/** An allowScripts key: `name` (any version) or `name@1.2.3 || 1.2.4`. */
function parseKey(key: string): { name: string; versions: string[] | null } {
  const at = key.indexOf('@', 1);
  if (at < 0) return { name: key, versions: null };
  return { name: key.slice(0, at), versions: key.slice(at + 1).split('||').map((v) => v.trim()) };
}

const withScripts = Object.entries(lock.packages)
  .filter(([path, e]) => path !== '' && e.hasInstallScript === true)
  .map(([path, e]) => ({ name: nameOf(path, e), version: e.version ?? '', resolved: e.resolved }));
const policy = Object.entries(pkg.allowScripts ?? {}).map(([key, value]) => ({ key, value, ...parseKey(key) }));

test('parseKey reads name-only and pinned keys, scoped ones too', () => {
  assert.deepEqual(parseKey('core-js'), { name: 'core-js', versions: null });
  assert.deepEqual(parseKey('@tensorflow/tfjs-node'), { name: '@tensorflow/tfjs-node', versions: null });
  assert.deepEqual(parseKey('@tensorflow/tfjs-node@4.22.0 || 4.21.0'), { name: '@tensorflow/tfjs-node', versions: ['4.22.0', '4.21.0'] });
});

test('every package of package-lock.json with an install script is allowed or denied in allowScripts', () => {
  assert.ok(withScripts.length > 0, 'the lockfile lists packages with install scripts (webgpu, core-js, …)');
  const uncovered = withScripts.filter((p) => !policy.some((e) => e.name === p.name && (e.versions === null || e.versions.includes(p.version))));
  assert.deepEqual(uncovered.map((p) => `${p.name}@${p.version}`), [], 'add them to allowScripts: false unless their script is needed (then review it, and add it to REVIEWED)');
  for (const e of policy) assert.equal(typeof e.value, 'boolean', `allowScripts["${e.key}"] must be true or false`);
});

test('allowScripts names only packages that are in the lockfile with an install script (no stale entries)', () => {
  const stale = policy.filter((e) => !withScripts.some((p) => p.name === e.name && (e.versions === null || e.versions.includes(p.version))));
  assert.deepEqual(stale.map((e) => e.key), []);
});

test('what is allowed is the reviewed scripts at the reviewed versions, each a direct dependency pinned exactly', () => {
  const allowed = policy.filter((e) => e.value === true);
  assert.deepEqual(allowed.map((e) => e.name).sort(), Object.keys(REVIEWED).sort());
  const direct = { ...pkg.dependencies, ...pkg.optionalDependencies, ...pkg.devDependencies };
  for (const e of allowed) {
    const reviewed = REVIEWED[e.name]!;
    assert.equal(direct[e.name], reviewed, `${e.name}: package.json must pin the reviewed version ${reviewed} exactly`);
    for (const p of withScripts.filter((q) => q.name === e.name)) {
      assert.equal(p.version, reviewed, `${e.name}@${p.version} in the lockfile: read its install script again, then update REVIEWED`);
    }
  }
});

test('a lockfile without resolved URLs gets name-only keys: npm refuses a pinned allow whose version it cannot verify', () => {
  // @npmcli/arborist lib/script-allowed.js (npm 11.16+): the trusted version comes from the
  // `resolved` URL; without it ("omit-lockfile-registry-resolved") an allow `pkg@1.2.3` matches
  // nothing and the package is listed as unreviewed again.
  for (const e of policy.filter((q) => q.value === true && q.versions !== null)) {
    const unresolved = withScripts.filter((p) => p.name === e.name && p.resolved === undefined);
    assert.deepEqual(unresolved.map((p) => `${p.name}@${p.version}`), [], `allowScripts["${e.key}"]: the lockfile has no resolved URL for it, so write the name only`);
  }
});
