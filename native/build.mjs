// Builds the native addon when the toolchain allows it. A failed build never fails `npm install`:
// the proxy then runs on its JavaScript pump and says so once at startup. node-gyp's ~50 lines go
// to native/build.log, not to the terminal: `npm install` prints one line, and the log's path
// when the build failed.
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
if (!existsSync(join(here, 'binding.gyp'))) process.exit(0);
if (process.platform !== 'linux') {
  console.warn(`enclaver-proxy: native addon skipped on ${process.platform} (Linux only); the JS pump will be used`);
  process.exit(0);
}

// npm tells lifecycle scripts where its bundled node-gyp is; outside npm, use the one next to
// this node's npm, else whatever is on PATH.
function nodeGypCommand() {
  const candidates = [
    process.env.npm_config_node_gyp,
    join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  ];
  for (const script of candidates) {
    if (script && existsSync(script)) return [process.execPath, [script]];
  }
  return ['node-gyp', []];
}

// Build against the headers of the node that runs us when they are installed next to it (official
// tarballs and distro packages ship them), so no header download is needed.
function nodedirArgs() {
  if (process.env.npm_config_nodedir) return [];
  const prefix = join(dirname(process.execPath), '..');
  return existsSync(join(prefix, 'include', 'node', 'node_api.h')) ? [`--nodedir=${prefix}`] : [];
}

const logFile = join(here, 'build.log');
const log = openSync(logFile, 'w');
const [command, prefix] = nodeGypCommand();
const r = spawnSync(command, [...prefix, 'rebuild', ...nodedirArgs()], { cwd: here, stdio: ['ignore', log, log] });
closeSync(log);
if (r.status === 0) {
  console.log(`enclaver-proxy: native addon built for node ${process.version} (splice pump, vsock)`);
} else {
  const why = r.error ? r.error.message : `node-gyp exited with ${r.status ?? r.signal}`;
  console.warn(`enclaver-proxy: native addon build failed (${why}); the JS pump will be used. Build log: ${logFile}`);
}
