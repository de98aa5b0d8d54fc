// Crash points for the fault tests, preloaded into the CLI with --import (see faults.ts startCli).
// BACKUPKIT_CRASH_AFTER="<op>|<regex>[|<n>]": right after the n-th (default first) call of
// fs/promises <op> whose path (for rename: the new path) matches <regex>, the process SIGKILLs
// itself, as a power cut or the OOM killer would stop it there.
import { createRequire, syncBuiltinESMExports } from 'node:module';

const spec = process.env.BACKUPKIT_CRASH_AFTER;
if (spec) {
  const [op, pattern, nth = '1'] = spec.split('|');
  const fsp = createRequire(import.meta.url)('node:fs/promises');
  const original = fsp[op];
  if (typeof original !== 'function') throw new Error(`crash.mjs: fs/promises has no ${op}`);
  const matches = new RegExp(pattern);
  let seen = 0;
  fsp[op] = async function crashingAfter(...args) {
    const result = await original.apply(this, args);
    const file = String(args[op === 'rename' || op === 'link' ? 1 : 0]);
    if (matches.test(file) && ++seen === Number(nth)) process.kill(process.pid, 'SIGKILL');
    return result;
  };
  syncBuiltinESMExports();
}
