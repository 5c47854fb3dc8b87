/**
 * nitro-cli failures as one clear message with the fix. nitro-cli prints `[ Exx ] <what>` on stderr
 * (codes from aws-nitro-enclaves-cli's document_errors.rs) followed by a help link and the path of
 * an error log; the operator needs the cause and the command or file that fixes it, not the
 * backtrace. Unknown codes keep nitro-cli's own first line.
 */
import { ProxyError } from '../../shared/errors/index.js';
import { groupOf } from '../../shared/util/checked.js';

export type NitroCliErrorKind =
  'not_installed' | 'no_device' | 'eif_unreadable' | 'not_enough_cpus' | 'memory_below_eif' | 'not_enough_memory' | 'boot_failed' | 'other';

export class NitroCliError extends ProxyError {
  readonly kind: NitroCliErrorKind;
  /** nitro-cli's error code (E19, E27, …) when it printed one. */
  readonly nitroCode: string | undefined;

  constructor(
    kind: NitroCliErrorKind,
    message: string,
    context: { command: string; nitroCode?: string; exitCode?: number | null; stderr?: string },
  ) {
    super(`nitro_cli_${kind}`, message, context);
    this.kind = kind;
    this.nitroCode = context.nitroCode;
  }
}

const ALLOCATOR = '/etc/nitro_enclaves/allocator.yaml';
const RESTART_ALLOCATOR = 'sudo systemctl restart nitro-enclaves-allocator.service';

/** The `[ Exx ] text` line of nitro-cli's stderr, if any. */
export function nitroErrorLine(stderr: string): { code: string; text: string } | undefined {
  const m = /\[\s*(E[0-9]{2})\s*\]\s*([^\n]*)/.exec(stderr);
  return m ? { code: groupOf(m, 1), text: groupOf(m, 2).trim() } : undefined;
}

export interface LaunchRequest {
  eif: string;
  cpuCount: number;
  memoryMib: number;
}

/** One NitroCliError for a failed nitro-cli command, explained for `request` when it was a launch. */
export function explainNitroCliFailure(command: string, exitCode: number | null, stderr: string, request?: LaunchRequest): NitroCliError {
  const line = nitroErrorLine(stderr);
  const context = { command, exitCode, stderr: stderr.slice(0, 4000), ...(line ? { nitroCode: line.code } : {}) };
  const said = line
    ? `nitro-cli ${command} failed: [ ${line.code} ] ${line.text}`
    : `nitro-cli ${command} failed (exit ${exitCode}): ${firstLine(stderr)}`;
  switch (line?.code) {
    case 'E19':
      if (/\/dev\/nitro_enclaves/.test(stderr)) {
        return new NitroCliError(
          'no_device',
          `${said}\n  cause: /dev/nitro_enclaves is missing or not accessible: this instance was not launched with Nitro Enclaves enabled, ` +
            'the nitro_enclaves driver is not loaded, or this user is not in the `ne` group.\n' +
            '  fix: launch the instance with `--enclave-options Enabled=true` (a Nitro instance with ≥ 4 vCPUs), install aws-nitro-enclaves-cli, ' +
            '`sudo usermod -aG ne $USER` and log in again (in a container: pass the device, `--device /dev/nitro_enclaves`).',
          context,
        );
      }
      return new NitroCliError(
        'eif_unreadable',
        `${said}\n  fix: check that ${request?.eif ?? 'the EIF'} exists and is readable by this user.`,
        context,
      );
    case 'E21':
    case 'E22':
      return new NitroCliError(
        'not_enough_cpus',
        `${said}\n  cause: the enclave CPU pool is smaller than the ${request?.cpuCount ?? 'requested'} CPUs asked for (enclave.cpu_count).\n` +
          `  fix: set \`cpu_count: ${request?.cpuCount ?? 'N'}\` (or more) in ${ALLOCATOR}, then \`${RESTART_ALLOCATOR}\`; or lower enclave.cpu_count.`,
        context,
      );
    case 'E26':
      return new NitroCliError(
        'memory_below_eif',
        `${said}\n  cause: enclave.memory_mib (${request?.memoryMib ?? '?'} MiB) is less than the enclave image needs.\n` +
          "  fix: raise enclave.memory_mib to at least the size nitro-cli names (and about 4× the EIF size for the app's own memory: the root filesystem lives in RAM).",
        context,
      );
    case 'E27':
      return new NitroCliError(
        'not_enough_memory',
        `${said}\n  cause: the allocator has reserved less hugepage memory than the ${request?.memoryMib ?? 'requested'} MiB asked for (enclave.memory_mib), ` +
          'or it is not configured at all.\n' +
          `  fix: set \`memory_mib: ${request?.memoryMib ?? 'N'}\` (or more) in ${ALLOCATOR}, then \`${RESTART_ALLOCATOR}\` (and \`sudo systemctl enable nitro-enclaves-allocator.service\`).`,
        context,
      );
    case 'E36':
    case 'E39':
      return new NitroCliError(
        'boot_failed',
        `${said}\n  cause: the enclave did not boot.\n` +
          `  fix: run with enclave.debug_mode: true to see its console; check the EIF with \`enclaver-proxy describe-eif ${request?.eif ?? 'EIF'}\`.`,
        context,
      );
    default:
      return new NitroCliError('other', said, context);
  }
}

function firstLine(text: string): string {
  return (
    text
      .split('\n')
      .map((l) => l.trim())
      .find((l) => l.length > 0) ?? '(no output)'
  );
}
