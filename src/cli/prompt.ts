/** Confirmations on a terminal: restore's two (y/N, then the database name typed back), delete's one. */
import { createInterface } from 'node:readline/promises';
import type { DeletePlanItem } from '../app/delete.js';
import type { RestorePlanSummary } from '../app/restore.js';
import { formatAge, formatBytes } from '../core/format.js';

export function terminalConfirm(stdin: NodeJS.ReadStream, stderr: NodeJS.WriteStream, now: () => Date) {
  return async (plan: RestorePlanSummary): Promise<boolean> => {
    const rl = createInterface({ input: stdin, output: stderr, terminal: Boolean(stdin.isTTY) });
    try {
      const where = plan.host ? ` on ${plan.host}` : '';
      stderr.write(
        `\nRestore ${plan.id} (${formatAge(new Date(plan.createdAt), now())}, ${formatBytes(plan.size)})\n` +
          `  into ${plan.database}${where} (target ${plan.target})\n` +
          `  units: ${plan.units.map((u) => u.name).join(', ') || '(none)'}\n` +
          (plan.files.length > 0 ? `  files: ${plan.files.map((f) => f.path).join(', ')}\n` : '') +
          `This replaces the data there${plan.snapshot ? ' (a pre-restore snapshot is taken first)' : ''}.\n`,
      );
      const first = (await rl.question('Continue? [y/N] ')).trim().toLowerCase();
      if (first !== 'y' && first !== 'yes') return false;
      const typed = (await rl.question(`Type the database name (${plan.database}) to confirm: `)).trim();
      return typed === plan.database;
    } finally {
      rl.close();
    }
  };
}

/** The one delete confirmation on a terminal: y/N, naming each backup (id, age, size, storages). */
export function terminalConfirmDelete(stdin: NodeJS.ReadStream, stderr: NodeJS.WriteStream, now: () => Date) {
  return async (plan: DeletePlanItem[]): Promise<boolean> => {
    const rl = createInterface({ input: stdin, output: stderr, terminal: Boolean(stdin.isTTY) });
    try {
      const lines = plan.map(
        (item) =>
          `  ${item.id}  (${item.createdAt ? formatAge(new Date(item.createdAt), now()) : 'incomplete'}, ${formatBytes(item.size)})  from ${item.storages.join(', ')}\n`,
      );
      stderr.write(`\nDelete ${plan.length === 1 ? 'this backup' : `these ${plan.length} backups`}:\n${lines.join('')}`);
      const answer = (await rl.question('Delete? [y/N] ')).trim().toLowerCase();
      return answer === 'y' || answer === 'yes';
    } finally {
      rl.close();
    }
  };
}
