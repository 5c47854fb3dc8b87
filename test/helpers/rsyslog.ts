/**
 * A real rsyslogd for the audit syslog tests: started in the foreground (`-n`) with its own config,
 * pid file and work directory, listening with imtcp on a free loopback port (optionally TLS via
 * gtls), writing each message's MSG part as one line to a file.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { freePort } from './ports.js';

export const RSYSLOGD = ['/usr/sbin/rsyslogd', '/usr/bin/rsyslogd'].find((p) => fs.existsSync(p));
/** rsyslog's TLS driver (Debian package rsyslog-gnutls), in its multiarch module folder. */
export const RSYSLOG_GTLS =
  fs.existsSync('/usr/lib') && fs.readdirSync('/usr/lib').some((d) => fs.existsSync(path.join('/usr/lib', d, 'rsyslog', 'lmnsd_gtls.so')));

export interface Rsyslog {
  port: number;
  /** Where the received messages' MSG parts are written, one per line. */
  outFile: string;
  lines(): string[];
  stop(): Promise<void>;
}

export interface RsyslogTls {
  certFile: string;
  keyFile: string;
}

export async function startRsyslog(dir: string, opts: { tls?: RsyslogTls; port?: number } = {}): Promise<Rsyslog> {
  if (!RSYSLOGD) throw new Error('rsyslogd is not installed');
  fs.mkdirSync(path.join(dir, 'work'), { recursive: true });
  const port = opts.port ?? (await freePort());
  const outFile = path.join(dir, 'received.log');
  const conf = path.join(dir, 'rsyslog.conf');
  const tls = opts.tls;
  fs.writeFileSync(
    conf,
    [
      // Audit lines carry an attestation document (~7 KB): above rsyslog's 8 KiB default with room.
      `global(workDirectory="${path.join(dir, 'work')}" maxMessageSize="64k"${
        tls
          ? ` defaultNetstreamDriver="gtls" defaultNetstreamDriverCertFile="${tls.certFile}" defaultNetstreamDriverKeyFile="${tls.keyFile}"`
          : ''
      })`,
      tls ? 'module(load="imtcp" streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon")' : 'module(load="imtcp")',
      `input(type="imtcp" address="127.0.0.1" port="${port}")`,
      'template(name="msgonly" type="string" string="%msg%\\n")',
      `*.* action(type="omfile" file="${outFile}" template="msgonly" flushOnTXEnd="on" asyncWriting="off")`,
      '',
    ].join('\n'),
  );
  const child: ChildProcess = spawn(RSYSLOGD, ['-n', '-f', conf, '-i', path.join(dir, 'rsyslogd.pid')], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (c: Buffer) => {
    output += c.toString();
  });
  child.stderr!.on('data', (c: Buffer) => {
    output += c.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await waitListening(port, child, () => output);
  return {
    port,
    outFile,
    lines: () =>
      fs.existsSync(outFile)
        ? fs
            .readFileSync(outFile, 'utf8')
            .split('\n')
            .filter((l) => l.length > 0)
        : [],
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/** Resolves once rsyslogd accepts connections (bounded; fails early if it exited). */
async function waitListening(port: number, child: ChildProcess, output: () => string): Promise<void> {
  const until = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`rsyslogd exited with ${child.exitCode}: ${output()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`rsyslogd never listened on ${port}: ${output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
