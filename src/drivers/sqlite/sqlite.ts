/**
 * sqlite driver, through the embedded SQLite engine (better-sqlite3): no server and no sqlite3
 * command needed. Manual: https://www.sqlite.org/backup.html
 *
 * Config keys:
 *   path        the database file
 *   emptyCheck  a table whose emptiness means "the database is empty" (for auto)
 *
 * Backup: in rollback-journal mode the file is streamed straight into the archive while a read
 * transaction holds SQLite's shared lock, so writers wait and the copy is consistent, with no
 * temporary copy. In WAL mode the database is not one file, so SQLite's online backup API writes
 * a consistent snapshot to a temporary file in the storage folder first (removed right after).
 * Restore writes the file beside the database and renames it into place.
 */
import { createWriteStream, existsSync } from 'node:fs';
import { chmod, open, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type Database from 'better-sqlite3';
import { z } from 'zod';
import type { Driver } from '../../core/driver.js';
import { OperationError, errorMessage } from '../../core/errors.js';
import { formatBytes } from '../../core/format.js';
import type { Unit } from '../../core/manifest.js';

const optionsSchema = z.object({
  path: z.string().min(1),
  emptyCheck: z.string().min(1).optional(),
});
export type SqliteOptions = z.infer<typeof optionsSchema>;

const ENTRY = 'db/database.sqlite';

function quote(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** The embedded engine, loaded when a SQLite target is first used. */
let engine: typeof Database | undefined;
async function loadEngine(): Promise<void> {
  engine ??= (await import('better-sqlite3')).default;
}

function openDatabase(file: string, readonly: boolean): Database.Database {
  try {
    return new engine!(file, { readonly, fileMustExist: true, timeout: 30_000 });
  } catch (error) {
    throw new OperationError(`cannot open SQLite database ${file}: ${errorMessage(error)}`, { cause: error });
  }
}

function tableUnits(db: Database.Database, schema = 'main'): Unit[] {
  const tables = db
    .prepare(`SELECT name FROM ${schema}.sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name`)
    .all() as { name: string }[];
  return tables.map(({ name }) => ({
    name,
    kind: 'table',
    count: Number((db.prepare(`SELECT count(*) AS n FROM ${schema}.${quote(name)}`).get() as { n: number }).n),
  }));
}

export const sqliteDriver: Driver<SqliteOptions> = {
  name: 'sqlite',
  optionsSchema,
  pathKeys: ['path'],

  describe: (options) => ({ path: options.path, database: path.basename(options.path) }),

  withInto: (options, into, cwd) => ({ ...options, path: path.resolve(cwd, into) }),

  prepare: loadEngine,

  /** No tool to install: SQLite is embedded (better-sqlite3). */
  async tools() {
    await loadEngine();
    const db = new engine!(':memory:');
    try {
      return [{ name: 'sqlite (embedded)', version: (db.prepare('SELECT sqlite_version() AS v').get() as { v: string }).v }];
    } finally {
      db.close();
    }
  },

  /** The file exists, opens read-only and reads as a SQLite database. */
  async ping(ctx, options) {
    if (!existsSync(options.path)) {
      throw new OperationError(`SQLite database ${options.path} does not exist`, { hint: `Check the target's "path"; a restore creates the file: backupkit restore ${ctx.target}` });
    }
    await loadEngine();
    const db = openDatabase(options.path, true);
    try {
      const tables = (db.prepare("SELECT count(*) AS n FROM sqlite_schema WHERE type = 'table'").get() as { n: number }).n;
      return `SQLite database ${options.path}, ${tables} table${tables === 1 ? '' : 's'}, ${formatBytes((await stat(options.path)).size)}`;
    } catch (error) {
      throw new OperationError(`cannot read SQLite database ${options.path}: ${errorMessage(error)}`, { cause: error, hint: 'Check the target\'s "path": it names a file that is not a SQLite database, or a damaged one.' });
    } finally {
      db.close();
    }
  },

  scratch: () => ({ kind: 'file' }),

  async countUnits(_ctx, options, units) {
    await loadEngine();
    const db = openDatabase(options.path, true);
    try {
      const present = new Set((db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table'").all() as { name: string }[]).map((t) => t.name));
      return units.map((u) => (present.has(u.name) ? Number((db.prepare(`SELECT count(*) AS n FROM ${quote(u.name)}`).get() as { n: number }).n) : null));
    } finally {
      db.close();
    }
  },

  async dump(ctx, options, sink) {
    await loadEngine();
    if (!existsSync(options.path)) {
      throw new OperationError(`SQLite database ${options.path} does not exist`, { hint: 'Check the target\'s "path".' });
    }
    const db = openDatabase(options.path, true);
    const version = (db.prepare('SELECT sqlite_version() AS v').get() as { v: string }).v;
    try {
      const mode = String(db.pragma('journal_mode', { simple: true }));
      if (mode !== 'wal') {
        db.exec('BEGIN');
        try {
          db.prepare('SELECT count(*) FROM sqlite_schema').get(); // the first read takes the shared lock, held until COMMIT
          await sink.addFile(ENTRY, options.path, { compressed: false });
          // Counted after the copy, in the same transaction: the pages are in memory by now.
          return { units: tableUnits(db), tool: { name: 'sqlite', version } };
        } finally {
          db.exec('COMMIT');
        }
      }
      const temp = ctx.tempPath('sqlite');
      try {
        await db.backup(temp);
        const snapshot = openDatabase(temp, true);
        let units: Unit[];
        try {
          units = tableUnits(snapshot);
        } finally {
          snapshot.close();
        }
        await sink.addFile(ENTRY, temp, { compressed: false });
        return { units, tool: { name: 'sqlite', version } };
      } finally {
        await rm(temp, { force: true });
      }
    } finally {
      db.close();
    }
  },

  async restore(ctx, options, archive, plan) {
    await loadEngine();
    const dest = options.path;
    const temp = path.join(path.dirname(dest), `.${path.basename(dest)}.backupkit-${process.pid}.tmp`);
    await removeDeadCopies(dest);
    try {
      await pipeline(await archive.open(ENTRY), createWriteStream(temp, { mode: 0o600 }));
      await fsync(temp);
      if (plan.only && existsSync(dest)) {
        copyTables(dest, temp, plan.only);
        return;
      }
      // The old database's journal or WAL must not be replayed onto the new file.
      for (const suffix of ['-wal', '-shm', '-journal']) await rm(dest + suffix, { force: true });
      const old = await stat(dest).catch(() => undefined);
      if (old) await chmod(temp, old.mode & 0o7777);
      await rename(temp, dest);
      await fsync(path.dirname(dest));
      ctx.log.debug({ path: dest }, 'database file replaced');
    } finally {
      await rm(temp, { force: true });
    }
  },

  async isEmpty(_ctx, options) {
    if (!existsSync(options.path) || (await stat(options.path)).size === 0) return true;
    await loadEngine();
    const db = openDatabase(options.path, true);
    try {
      if (options.emptyCheck) {
        const exists = db.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?").get(options.emptyCheck);
        if (!exists) return true;
        return db.prepare(`SELECT 1 FROM ${quote(options.emptyCheck)} LIMIT 1`).get() === undefined;
      }
      return tableUnits(db).length === 0;
    } finally {
      db.close();
    }
  },
};

/** `restore --only`: replace just these tables (with their indexes and triggers) from the snapshot. */
function copyTables(dest: string, snapshotFile: string, tables: string[]): void {
  const db = openDatabase(dest, false);
  try {
    db.pragma('foreign_keys = OFF');
    db.prepare('ATTACH DATABASE ? AS snap').run(snapshotFile);
    db.transaction(() => {
      for (const table of tables) {
        const objects = db
          .prepare("SELECT type, name, sql FROM snap.sqlite_schema WHERE tbl_name = ? AND sql IS NOT NULL ORDER BY type = 'table' DESC")
          .all(table) as { type: string; name: string; sql: string }[];
        db.exec(`DROP TABLE IF EXISTS main.${quote(table)}`);
        for (const object of objects) db.exec(object.sql);
        db.exec(`INSERT INTO main.${quote(table)} SELECT * FROM snap.${quote(table)}`);
      }
    })();
    db.exec('DETACH DATABASE snap');
  } finally {
    db.close();
  }
}

/**
 * The copies that killed restores left beside `dest` (`.<name>.backupkit-<pid>.tmp` of a process
 * that is gone), each a whole database: removed before a restore writes its own, so none outlives
 * the next restore.
 */
async function removeDeadCopies(dest: string): Promise<void> {
  const prefix = `.${path.basename(dest)}.backupkit-`;
  for (const name of await readdir(path.dirname(dest)).catch(() => [] as string[])) {
    const pid = name.startsWith(prefix) && name.endsWith('.tmp') ? Number(name.slice(prefix.length, -'.tmp'.length)) : NaN;
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && !isAlive(pid)) await rm(path.join(path.dirname(dest), name), { force: true });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function fsync(file: string): Promise<void> {
  const handle = await open(file, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
