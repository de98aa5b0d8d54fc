/** help: `backupkit --help` against a bare Node start-up, for reference. */
import { type Bench, CLI, REPO } from '../bench.js';
import { measure } from '../measure.js';
import type { Row } from '../report.js';
import { type Contender, runPair, sideOf } from '../rounds.js';
import { HELP_MAX_MS, checks, row } from '../targets.js';

export async function pairHelp(bench: Bench): Promise<Row[]> {
  const a: Contender = {
    label: 'node -e ""',
    command: 'node -e ""',
    async run() {
      return { m: await measure({ command: process.execPath, args: ['-e', ''], cwd: REPO }), outputBytes: null };
    },
  };
  const b: Contender = {
    label: 'backupkit --help',
    command: 'node bin/backupkit.js --help',
    async run() {
      return { m: await measure({ command: process.execPath, args: [CLI, '--help'], cwd: REPO, env: { CI: '1' } }), outputBytes: null };
    },
  };
  const samples = await runPair(bench, 'help', [a, b], { rounds: bench.sizes.helpRuns, cold: false });
  const sa = sideOf(a, samples.get(a)!);
  const sb = sideOf(b, samples.get(b)!);
  return [row('help', sa, sb, '< 300 ms (A: bare Node start-up, for reference)', () => [checks.under(sb, HELP_MAX_MS)])];
}
