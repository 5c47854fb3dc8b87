/**
 * A real registry for pull and push tests: Debian's docker-registry (distribution 2.8) on
 * 127.0.0.1 on a free port, storage in a temp dir, optionally with htpasswd (bcrypt)
 * authentication or token authentication against a token service (the test's
 * ../emulators/registry-token). Stopped by PID when the test ends.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { freePort } from './ports.js';

export interface Registry {
  host: string;
  stop(): Promise<void>;
}

/** How the registry authenticates: htpasswd Basic, or bearer tokens from a token service. */
export type RegistryAuth =
  | { kind: 'htpasswd'; user: string; password: string }
  | { kind: 'token'; realm: string; service: string; issuer: string; /** PEM of the certificate that signs tokens. */ rootCert: string };

export function registryAvailable(): boolean {
  try {
    execFileSync('docker-registry', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function bcrypt(password: string): string {
  return execFileSync(
    'python3',
    ['-c', 'import crypt,sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH)))', password],
    { encoding: 'utf8' },
  ).trim();
}

function authYaml(dir: string, auth: RegistryAuth | undefined): string {
  if (!auth) return '';
  if (auth.kind === 'htpasswd') {
    fs.writeFileSync(path.join(dir, 'htpasswd'), `${auth.user}:${bcrypt(auth.password)}\n`);
    return `auth:\n  htpasswd:\n    realm: test-registry\n    path: ${path.join(dir, 'htpasswd')}\n`;
  }
  fs.writeFileSync(path.join(dir, 'token-root.pem'), auth.rootCert);
  return (
    `auth:\n  token:\n    realm: ${auth.realm}\n    service: ${auth.service}\n    issuer: ${auth.issuer}\n` +
    `    rootcertbundle: ${path.join(dir, 'token-root.pem')}\n`
  );
}

export async function startRegistry(dir: string, auth?: RegistryAuth): Promise<Registry> {
  const port = await freePort();
  fs.mkdirSync(dir, { recursive: true });
  const config = path.join(dir, 'config.yml');
  fs.writeFileSync(
    config,
    `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${path.join(dir, 'data')}\nhttp:\n  addr: 127.0.0.1:${port}\n${authYaml(dir, auth)}`,
  );
  const child: ChildProcess = spawn('docker-registry', ['serve', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const host = `127.0.0.1:${port}`;
  // Ready when /v2/ answers at all (200, or 401 with auth); the loop ends on exit or after ~60 s.
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited: ${stderr}`);
    try {
      const res = await fetch(`http://${host}/v2/`);
      await res.body?.cancel();
      if (res.status === 200 || res.status === 401) break;
    } catch {
      /* not listening yet */
    }
    if (i > 600) throw new Error(`docker-registry did not answer on ${host}: ${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    host,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
