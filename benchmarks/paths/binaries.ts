/** Whether a baseline's program is installed. */
import { execFileSync } from 'node:child_process';

export function which(program: string): string | null {
  try {
    return execFileSync('sh', ['-c', `command -v ${program}`], { encoding: 'utf8' }).trim() || null;
  } catch {
    return null;
  }
}
