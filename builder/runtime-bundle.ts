/**
 * The inner proxy's runtime, added to the app's rootfs under /opt/enclaver-proxy so it runs
 * whatever the image holds (glibc, musl, static-only, distroless, no shell):
 *   bin/node       the Node.js binary (the builder's own, `--node FILE`, or `--runtime-dir DIR`)
 *   lib/…          the dynamic loader and every shared library node needs, from the same place
 *   app/…          package.json, the compiled JS the inner needs, production node_modules and the
 *                  native addon when it was built
 * The enclave command starts node through *our* loader with `--library-path` (see `innerArgv`),
 * so the image's /lib is never consulted for the proxy, and the app, started by the proxy as a
 * normal child, uses the image's own libc. No shell, no patching of binaries.
 *
 * Reproducibility: the bundle's bytes are those of its inputs. The same node binary and
 * libraries give the same PCR2 on any machine; `--runtime-dir` pins them across hosts.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BuildError } from './errors.js';
import type { Arch } from './blobs.js';

export const RUNTIME_ROOT = 'opt/enclaver-proxy';

export interface BundleFile {
  /** Path in the rootfs, relative, e.g. `opt/enclaver-proxy/bin/node`. */
  path: string;
  source: string;
  mode: number;
}

export interface RuntimeBundle {
  files: BundleFile[];
  /** Absolute path of the loader inside the enclave. */
  loader: string;
}

/** JS directories the CLI imports (tests and benchmarks stay out). */
const DIST_DIRS = ['bin', 'builder', 'shared', 'proxy-inner', 'proxy-outer'];

function walk(dir: string, keep: (file: string) => boolean): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...walk(full, keep));
    else if (entry.isFile() && keep(full)) out.push(full);
  }
  return out;
}

/** The production dependency closure, by reading package.json files (what `npm ls --omit=dev` lists). */
export function productionPackages(packageRoot: string): string[] {
  const seen = new Set<string>();
  const visit = (name: string, from: string) => {
    // Node's resolution: nearest node_modules up from the requiring package.
    for (let dir = from; ; dir = path.dirname(dir)) {
      const candidate = path.join(dir, 'node_modules', name);
      if (fs.existsSync(path.join(candidate, 'package.json'))) {
        if (seen.has(candidate)) return;
        seen.add(candidate);
        const pkg = JSON.parse(fs.readFileSync(path.join(candidate, 'package.json'), 'utf8')) as {
          dependencies?: Record<string, string>;
          optionalDependencies?: Record<string, string>;
        };
        for (const dep of Object.keys({ ...pkg.dependencies, ...pkg.optionalDependencies })) visit(dep, candidate);
        return;
      }
      if (dir === packageRoot || dir === path.dirname(dir)) return;
    }
  };
  const root = JSON.parse(fs.readFileSync(path.join(packageRoot, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
  for (const dep of Object.keys(root.dependencies ?? {})) visit(dep, packageRoot);
  return [...seen].sort();
}

/** `ldd` output → the loader and library files node needs. */
export function parseLdd(text: string): { loader: string | undefined; libraries: string[] } {
  let loader: string | undefined;
  const libraries: string[] = [];
  for (const line of text.split('\n')) {
    const library = /=>\s+(\/\S+)/.exec(line)?.[1];
    if (library !== undefined) libraries.push(library);
    else loader = /^\s*(\/\S*ld-linux\S*)/.exec(line)?.[1] ?? loader;
  }
  return { loader, libraries };
}

function hostArch(): Arch {
  return process.arch === 'arm64' ? 'aarch64' : 'x86_64';
}

function nodeAndLibraries(opts: { node?: string; runtimeDir?: string; arch: Arch }): { node: string; loader: string; libraries: string[] } {
  if (opts.runtimeDir) {
    const node = path.join(opts.runtimeDir, 'bin', 'node');
    const libDir = path.join(opts.runtimeDir, 'lib');
    if (!fs.existsSync(node) || !fs.existsSync(libDir))
      throw new BuildError(
        'runtime_missing',
        `--runtime-dir ${opts.runtimeDir}: expected bin/node and lib/ (the loader and libraries) in it`,
        { dir: opts.runtimeDir },
      );
    const libraries = fs
      .readdirSync(libDir)
      .sort()
      .map((f) => path.join(libDir, f));
    const loader = libraries.find((f) => /ld-linux/.test(path.basename(f)));
    if (!loader)
      throw new BuildError('runtime_missing', `--runtime-dir ${opts.runtimeDir}: lib/ has no ld-linux* loader`, { dir: opts.runtimeDir });
    return { node, loader, libraries: libraries.filter((f) => f !== loader) };
  }
  if (opts.arch !== hostArch()) {
    throw new BuildError(
      'runtime_missing',
      `building for ${opts.arch} on a ${hostArch()} host: pass --runtime-dir DIR with an ${opts.arch} bin/node and lib/`,
      { arch: opts.arch },
    );
  }
  const node = fs.realpathSync(opts.node ?? process.execPath);
  let ldd: string;
  try {
    ldd = execFileSync('ldd', [node], { encoding: 'utf8' });
  } catch (err) {
    throw new BuildError(
      'runtime_missing',
      `cannot list the libraries of ${node} with ldd (${(err as Error).message.split('\n')[0]}); pass --runtime-dir DIR`,
      { node },
      { cause: err },
    );
  }
  const { loader, libraries } = parseLdd(ldd);
  if (!loader)
    throw new BuildError(
      'runtime_missing',
      `${node} is not a dynamically linked glibc binary (no ld-linux loader in ldd's output); pass --runtime-dir DIR`,
      { node },
    );
  return { node, loader, libraries };
}

export function runtimeBundle(packageRoot: string, opts: { node?: string; runtimeDir?: string; arch: Arch }): RuntimeBundle {
  const { node, loader, libraries } = nodeAndLibraries(opts);
  const files: BundleFile[] = [{ path: `${RUNTIME_ROOT}/bin/node`, source: node, mode: 0o755 }];
  const loaderName = path.basename(loader);
  files.push({ path: `${RUNTIME_ROOT}/lib/${loaderName}`, source: fs.realpathSync(loader), mode: 0o755 });
  for (const lib of libraries) files.push({ path: `${RUNTIME_ROOT}/lib/${path.basename(lib)}`, source: fs.realpathSync(lib), mode: 0o755 });
  const app = `${RUNTIME_ROOT}/app`;
  files.push({ path: `${app}/package.json`, source: path.join(packageRoot, 'package.json'), mode: 0o644 });
  for (const dir of DIST_DIRS) {
    const root = path.join(packageRoot, 'dist', dir);
    if (!fs.existsSync(root)) throw new BuildError('runtime_missing', `${root} is missing: run npm run build first`, { dir: root });
    // .cjs: the config validators compiled at build time (shared/config/validators.generated.cjs).
    for (const file of walk(root, (f) => f.endsWith('.js') || f.endsWith('.cjs')))
      files.push({ path: `${app}/${path.relative(packageRoot, file)}`, source: file, mode: 0o644 });
  }
  for (const pkg of productionPackages(packageRoot)) {
    for (const file of walk(pkg, (f) => !f.endsWith('.map') && !f.endsWith('.md') && !f.endsWith('.d.ts') && !f.endsWith('.ts'))) {
      files.push({
        path: `${app}/${path.relative(packageRoot, file)}`,
        source: file,
        mode: fs.statSync(file).mode & 0o111 ? 0o755 : 0o644,
      });
    }
  }
  const addon = path.join(packageRoot, 'native', 'build', 'Release', 'enclaver_native.node');
  if (fs.existsSync(addon) && opts.arch === hostArch() && !opts.runtimeDir)
    files.push({ path: `${app}/native/build/Release/enclaver_native.node`, source: addon, mode: 0o755 });
  return { files, loader: `/${RUNTIME_ROOT}/lib/${loaderName}` };
}

/** The enclave command: our loader runs our node, which runs the inner, which runs the app. */
export function innerArgv(bundle: RuntimeBundle, configPath: string): string[] {
  return [
    bundle.loader,
    '--library-path',
    `/${RUNTIME_ROOT}/lib`,
    `/${RUNTIME_ROOT}/bin/node`,
    `/${RUNTIME_ROOT}/app/dist/bin/enclaver-proxy.js`,
    '--config',
    configPath,
  ];
}
