import { ExitCode } from '../core/errors.js';

/** Over several targets: the failures' exit code when they agree, else 1. */
export function failureExitCode(failures: { code: number }[]): number {
  if (failures.length === 0) return ExitCode.ok;
  const codes = new Set(failures.map((f) => f.code));
  return codes.size === 1 ? [...codes][0]! : ExitCode.failed;
}
