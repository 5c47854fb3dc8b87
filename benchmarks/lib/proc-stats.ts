/** CPU time, memory and open fds of processes, from /proc (Linux). */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

let clockTicks: number | undefined;

function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** Fields of /proc/PID/stat (or of one thread's stat file) after the command name (which may contain spaces). */
function statFields(pid: number, tid?: number): string[] | null {
  try {
    const s = fs.readFileSync(tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`, 'utf8');
    return s.slice(s.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/**
 * CPU seconds of a process: user + system, plus those of its children that have exited and been
 * reaped (socat forks a child per connection).
 */
export function cpuSeconds(pid: number): number {
  const f = statFields(pid);
  if (!f) return 0;
  // After the name: state(0) ppid(1) … utime(11) stime(12) cutime(13) cstime(14).
  const ticks = Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
  return ticks / ticksPerSecond();
}

/**
 * CPU seconds of a process's main thread alone (for Node: the event loop, where JavaScript runs),
 * to tell it from the pump and V8 helper threads that cpuSeconds() includes.
 */
export function mainThreadCpuSeconds(pid: number): number {
  const f = statFields(pid, pid);
  return f ? (Number(f[11]) + Number(f[12])) / ticksPerSecond() : 0;
}

/** CPU seconds of the children of a process that have exited and been reaped (cutime + cstime). */
export function reapedChildrenCpuSeconds(pid: number): number {
  const f = statFields(pid);
  return f ? (Number(f[13]) + Number(f[14])) / ticksPerSecond() : 0;
}

export function parentOf(pid: number): number | null {
  const f = statFields(pid);
  return f ? Number(f[1]) : null;
}

/** Live descendants of a process. */
export function descendants(pid: number): number[] {
  const byParent = new Map<number, number[]>();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(entry)) continue;
    const ppid = parentOf(Number(entry));
    if (ppid === null) continue;
    const list = byParent.get(ppid) ?? [];
    list.push(Number(entry));
    byParent.set(ppid, list);
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const c of byParent.get(p) ?? []) {
      out.push(c);
      walk(c);
    }
  };
  walk(pid);
  return out;
}

/** CPU seconds of a process and every live descendant (exited ones are in the parent's figures). */
export function treeCpuSeconds(pid: number): number {
  return [pid, ...descendants(pid)].reduce((sum, p) => sum + cpuSeconds(p), 0);
}

export function rssKiB(pid: number): number {
  try {
    const m = /^VmRSS:\s+([0-9]+) kB$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

export function fdCount(pid: number): number {
  try {
    return fs.readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return 0;
  }
}
