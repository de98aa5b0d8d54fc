/** The backupkit side that most pairs share: one backup into a fresh storage folder, and what is kept of it. */
import { rmSync } from 'node:fs';
import { type Bench, type StoredBackup } from '../bench.js';
import { type Measurement, measure } from '../measure.js';
import { type Contender } from '../rounds.js';

/** The last JSON document a `--json` run printed. */
export function jsonOut<T>(m: Measurement): T {
  return JSON.parse(m.stdout) as T;
}

interface BackupJson {
  backups: { id: string; size: number; file: string; storages: string[] }[];
  failures: { target: string; error: string }[];
}

export type BackupRecord = BackupJson['backups'][number];

function backupRecord(m: Measurement): BackupRecord {
  const doc = jsonOut<BackupJson>(m);
  const record = doc.backups[0];
  if (!record || doc.failures.length > 0) throw new Error(`backup failed: ${JSON.stringify(doc.failures)}`);
  return record;
}

/**
 * `env` is added to the command's environment; `after` runs untimed once the backup is made (to
 * check and clear what it wrote elsewhere than the storage folder).
 */
export function backupContender(
  bench: Bench,
  label: string,
  config: string,
  target: string,
  keep: (s: StoredBackup) => void,
  options: { env?: Record<string, string>; after?: (record: BackupRecord) => Promise<void> } = {},
): Contender {
  return {
    label,
    command: `backupkit backup ${target}`,
    async run() {
      const storage = bench.fresh(`storage-${target}`);
      const m = await measure(bench.backupkit(config, storage, ['--json', 'backup', target], { captureStdout: true, env: options.env }));
      const record = backupRecord(m);
      await options.after?.(record);
      keep({ dir: storage, id: record.id, size: record.size });
      return { m, outputBytes: record.size };
    },
  };
}

/** Keeps only the newest storage of a contender (the one before is removed); `slot` remembers it for later pairs. */
export function keeper(bench: Bench, slot: 'pgStorage' | 'pgAgeStorage' | 'sqliteStorage' | 'sqlite0Storage' | null): (s: StoredBackup) => void {
  let previous: string | undefined;
  return (s) => {
    if (previous) rmSync(previous, { recursive: true, force: true });
    previous = s.dir;
    if (slot) {
      const old = bench[slot];
      if (old && old.dir !== s.dir) rmSync(old.dir, { recursive: true, force: true });
      bench[slot] = s;
    }
  };
}
