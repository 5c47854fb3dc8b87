// Builds the native addon when the toolchain allows it. A failed build never fails `npm install`:
// the proxy then runs on its JavaScript pump and says so once at startup.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
if (!existsSync(join(here, 'binding.gyp'))) process.exit(0);
if (process.platform !== 'linux') {
  console.warn(`enclaver-proxy: native addon skipped on ${process.platform} (Linux only); the JS pump will be used`);
  process.exit(0);
}
const r = spawnSync('node-gyp', ['rebuild'], { cwd: here, stdio: 'inherit', shell: process.platform === 'win32' });
if (r.status !== 0) {
  console.warn('enclaver-proxy: native addon build failed; the JS pump will be used (see the output above)');
}
