/**
 * `enclaver-proxy doctor`: what this machine and build give the data plane. Answers the questions
 * an operator has when throughput or vsock misbehaves: is the addon loaded, which pump runs, does
 * the kernel splice our sockets, how big are the pipes, is there a vsock transport and our CID.
 */
import { describePump } from '../../shared/pump/index.js';
import { messageOf } from '../../shared/errors/index.js';
import { vsockSettings } from '../../shared/transport/vsock.js';
import { errnoName, loadNativeAddon, nativeAddonStatus, type NativeAddonStatus } from '../../shared/native/addon.js';
import { choosePumpSettings, readPipeLimits, type PipeLimits } from '../../shared/native/pump-settings.js';

export interface DoctorReport {
  platform: string;
  node: string;
  addon: NativeAddonStatus;
  pump: {
    kind: 'js' | 'native';
    summary: string;
    /** Native pump settings (what it runs with, or will at its first connection). */
    threads?: number;
    pipeSize?: number;
    /** What the kernel really gave the last pipe, once the pump has made one. */
    pipeCapacity?: number;
    pipeBudgetPages?: number;
  };
  /** null without the addon (the JS pump never splices). */
  splice: { supported: boolean; error?: string } | null;
  pipeLimits: PipeLimits;
  vsock: {
    /** Emulation directory in use, if vsock is emulated by Unix sockets. */
    emulationDir: string | null;
    /** Can this kernel create AF_VSOCK sockets? null without the addon. */
    socketSupported: boolean | null;
    localCid: number | null;
    localCidError?: string;
  };
}

export function doctorReport(): DoctorReport {
  const addon = loadNativeAddon();
  const pump = describePump();
  const report: DoctorReport = {
    platform: `${process.platform}-${process.arch}`,
    node: process.version,
    addon: nativeAddonStatus(),
    pump: { kind: pump.kind, summary: pump.summary },
    splice: null,
    pipeLimits: readPipeLimits(),
    vsock: { emulationDir: vsockSettings().emulationDir ?? null, socketSupported: null, localCid: null },
  };
  if (!addon) return report;

  if (pump.kind === 'native') {
    const stats = addon.pumpStats();
    const settings = stats.running
      ? { threads: stats.threads, pipeSize: stats.pipeSizeWanted, pipeBudgetPages: stats.pipeBudgetPages }
      : choosePumpSettings(report.pipeLimits);
    report.pump = {
      ...report.pump,
      threads: settings.threads,
      pipeSize: settings.pipeSize,
      pipeBudgetPages: settings.pipeBudgetPages,
      ...(stats.pipeCapacity > 0 ? { pipeCapacity: stats.pipeCapacity } : {}),
    };
  }
  const probe = addon.spliceProbe();
  report.splice = probe.supported ? { supported: true } : { supported: false, error: errnoName(probe.errno ?? 0) };
  report.vsock.socketSupported = addon.vsockSocketSupported();
  try {
    report.vsock.localCid = addon.vsockLocalCid();
  } catch (err) {
    report.vsock.localCidError = messageOf(err);
  }
  return report;
}

function kib(bytes: number | undefined | null): string {
  return bytes == null ? 'unknown' : `${Math.round(bytes / 1024)} KiB`;
}

/** The report as aligned `name: value` lines for a terminal. */
export function formatDoctorReport(r: DoctorReport): string {
  const rows: [string, string][] = [
    ['platform', `${r.platform}, Node ${r.node}`],
    ['native addon', r.addon.loaded ? `loaded from ${r.addon.path}` : `not loaded (${r.addon.reason}: ${r.addon.detail})`],
    ['pump', r.pump.summary],
  ];
  if (r.pump.kind === 'native') {
    rows.push(['pump threads', String(r.pump.threads)]);
    rows.push(['pipe size', `${kib(r.pump.pipeSize)} asked${r.pump.pipeCapacity ? `, ${kib(r.pump.pipeCapacity)} given` : ''}`]);
    rows.push(['pipe budget', `${r.pump.pipeBudgetPages} pages`]);
  }
  rows.push(['splice', r.splice === null ? 'n/a (no addon)' : r.splice.supported ? 'supported' : `refused (${r.splice.error})`]);
  const l = r.pipeLimits;
  rows.push(['pipe-max-size', kib(l.pipeMaxSize)]);
  rows.push([
    'pipe-user-pages',
    `soft ${l.pipeUserPagesSoft ?? 'unknown'}, hard ${l.pipeUserPagesHard ?? 'unknown'}${l.exemptFromPipeLimits ? ' (this process is exempt: CAP_SYS_RESOURCE/ADMIN)' : ''}`,
  ]);
  rows.push(['vsock emulation', r.vsock.emulationDir ?? 'off (real AF_VSOCK)']);
  rows.push([
    'AF_VSOCK sockets',
    r.vsock.socketSupported === null ? 'n/a (no addon)' : r.vsock.socketSupported ? 'supported' : 'not supported by this kernel',
  ]);
  rows.push(['local CID', r.vsock.localCid !== null ? String(r.vsock.localCid) : (r.vsock.localCidError ?? 'n/a (no addon)')]);
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n');
}
