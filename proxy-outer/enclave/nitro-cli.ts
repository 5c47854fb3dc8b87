/**
 * The parts of `nitro-cli` the supervisor drives, with its documented arguments and JSON answers:
 * run-enclave, describe-enclaves, terminate-enclave and console. The binary is found on PATH like
 * any program (`ENCLAVER_NITRO_CLI` names another one, e.g. a test double). Every failure is one
 * NitroCliError with the fix (nitro-cli-errors.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { NitroCliError, explainNitroCliFailure, type LaunchRequest } from './nitro-cli-errors.js';

export const ENV_NITRO_CLI = 'ENCLAVER_NITRO_CLI';

/** run-enclave's answer (EnclaveRunInfo). */
export interface RunInfo {
  enclaveId: string;
  enclaveCid: number;
  cpuCount: number;
  memoryMib: number;
}

/** One entry of describe-enclaves (EnclaveDescribeInfo). */
export interface DescribeInfo {
  enclaveId: string;
  enclaveCid: number;
  state: string;
  flags: string;
}

export interface RunRequest extends LaunchRequest {
  cid: number;
  debugMode: boolean;
  name?: string;
}

interface Outcome {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The JSON document nitro-cli prints after its progress lines ("Start allocating memory...", …). */
export function jsonAnswer(stdout: string): unknown {
  const start = stdout.search(/^[[{]/m);
  if (start < 0) throw new Error('no JSON in its output');
  return JSON.parse(stdout.slice(start));
}

function field<T>(o: Record<string, unknown>, key: string, type: 'string' | 'number'): T {
  const v = o[key];
  if (typeof v !== type) throw new Error(`"${key}" is missing or not a ${type}`);
  return v as T;
}

export class NitroCli {
  readonly binary: string;

  constructor(binary: string = process.env[ENV_NITRO_CLI] || 'nitro-cli') {
    this.binary = binary;
  }

  private run(command: string, args: string[]): Promise<Outcome> {
    return new Promise((resolve, reject) => {
      const child = spawn(this.binary, [command, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => {
        stdout += d.toString();
      });
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
      });
      child.once('error', (err: NodeJS.ErrnoException) => {
        reject(
          err.code === 'ENOENT'
            ? new NitroCliError(
                'not_installed',
                `${this.binary} not found on PATH\n  fix: install the AWS Nitro Enclaves CLI (\`sudo dnf install aws-nitro-enclaves-cli\` ` +
                  'on Amazon Linux 2023), or run the release image, which carries it',
                { command },
              )
            : new NitroCliError('other', `cannot run ${this.binary}: ${err.message}`, { command }),
        );
      });
      child.once('close', (code) => resolve({ code, stdout, stderr }));
    });
  }

  private parse<T>(command: string, out: Outcome, read: (doc: unknown) => T): T {
    try {
      return read(jsonAnswer(out.stdout));
    } catch (err) {
      throw new NitroCliError('other', `nitro-cli ${command} answered something unexpected: ${(err as Error).message}`, {
        command,
        stderr: out.stdout.slice(0, 2000),
      });
    }
  }

  async runEnclave(req: RunRequest): Promise<RunInfo> {
    const args = [
      '--eif-path',
      req.eif,
      '--cpu-count',
      String(req.cpuCount),
      '--memory',
      String(req.memoryMib),
      '--enclave-cid',
      String(req.cid),
    ];
    if (req.debugMode) args.push('--debug-mode');
    if (req.name) args.push('--enclave-name', req.name);
    const out = await this.run('run-enclave', args);
    if (out.code !== 0) throw explainNitroCliFailure('run-enclave', out.code, out.stderr, req);
    return this.parse('run-enclave', out, (doc) => {
      const o = doc as Record<string, unknown>;
      return {
        enclaveId: field(o, 'EnclaveID', 'string'),
        enclaveCid: field(o, 'EnclaveCID', 'number'),
        cpuCount: field(o, 'NumberOfCPUs', 'number'),
        memoryMib: field(o, 'MemoryMiB', 'number'),
      };
    });
  }

  async describeEnclaves(): Promise<DescribeInfo[]> {
    const out = await this.run('describe-enclaves', []);
    if (out.code !== 0) throw explainNitroCliFailure('describe-enclaves', out.code, out.stderr);
    return this.parse('describe-enclaves', out, (doc) => {
      if (!Array.isArray(doc)) throw new Error('not a list');
      return doc.map((e: Record<string, unknown>) => ({
        enclaveId: field(e, 'EnclaveID', 'string'),
        enclaveCid: field(e, 'EnclaveCID', 'number'),
        state: field(e, 'State', 'string'),
        flags: field(e, 'Flags', 'string'),
      }));
    });
  }

  async terminateEnclave(enclaveId: string): Promise<boolean> {
    const out = await this.run('terminate-enclave', ['--enclave-id', enclaveId]);
    if (out.code !== 0) throw explainNitroCliFailure('terminate-enclave', out.code, out.stderr);
    return this.parse('terminate-enclave', out, (doc) => (doc as Record<string, unknown>).Terminated === true);
  }

  /** `nitro-cli console`: the enclave's serial console (debug mode only) until it ends. */
  console(enclaveId: string): ChildProcess {
    return spawn(this.binary, ['console', '--enclave-id', enclaveId], { stdio: ['ignore', 'pipe', 'pipe'] });
  }
}
