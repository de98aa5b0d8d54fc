/**
 * The dump tool killed (SIGKILL) while it runs, on the shared MariaDB server: exit 1 saying the
 * tool was killed, nothing listed, no partial archive and no option file left. (pg_dump killed
 * mid-data is in postgres.test.ts.) The tool is held mid-dump by a table lock another session
 * holds, so the kill lands while it runs, on any machine.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { runCli, tempDir, writeConfig } from '../support/cli.js';
import { childrenOf, lockFiles, partialFiles, startCli, storageFiles, until } from '../support/faults.js';
import { createDatabase, mysql, mysqlInfo, mysqlTargetConfig, seedVariedTypes } from '../support/mysqldb.js';

/** A session holding `LOCK TABLES <table> WRITE` until it is killed. */
function holdWriteLock(database: string, table: string): ChildProcess {
  const info = mysqlInfo();
  const args = ['--no-defaults', '--protocol=TCP', `--host=${info.host}`, `--port=${info.port}`, `--user=${info.user}`, database];
  const session = spawn('mariadb', args, { env: { ...process.env, MYSQL_PWD: info.password }, stdio: ['pipe', 'ignore', 'ignore'] });
  session.stdin.end(`LOCK TABLES ${table} WRITE; SELECT 'held', SLEEP(600);`);
  onTestFinished(() => {
    session.kill('SIGKILL');
  });
  return session;
}

/** Sessions other than the asking one that match `condition`. */
async function processlist(condition: string): Promise<number> {
  const [[count]] = (await mysql(undefined, `SELECT COUNT(*) FROM information_schema.processlist WHERE id <> CONNECTION_ID() AND ${condition}`)) as [[string]];
  return Number(count);
}

describe('the dump tool is killed', () => {
  it('mariadb-dump SIGKILLed while it runs: exit 1 saying it was killed, nothing listed, nothing left behind', async () => {
    const dir = tempDir();
    const database = await createDatabase('killed');
    await seedVariedTypes(database, 100);
    const config = writeConfig(dir, { storage: { path: './store' }, targets: { shop: mysqlTargetConfig(database) } });
    const store = path.join(dir, 'store');

    holdWriteLock(database, 'events');
    // The server keeps a killed client's session (the lock holder's SLEEP, the dump's wait) running:
    // end them, so that the lock is not held for the rest of the suite.
    onTestFinished(async () => {
      for (const [id] of await mysql(undefined, `SELECT id FROM information_schema.processlist WHERE id <> CONNECTION_ID() AND db = '${database}'`)) {
        await mysql(undefined, `KILL CONNECTION ${Number(id)}`).catch(() => undefined);
      }
    });
    await until('the lock to be held', async () => (await processlist(`info LIKE '%SLEEP(600)%'`)) === 1);
    const run = startCli(['-c', config, '--json', 'backup', 'shop'], { cwd: dir });
    await until('the dump to wait on the locked table', async () => (await processlist(`db = '${database}' AND state LIKE 'Waiting for table%'`)) > 0);
    const [tool] = childrenOf(run.pid).filter((c) => /^(mariadb-dump|mysqldump)$/.test(c.name));
    expect(tool).toBeDefined();
    expect(storageFiles(store).some((f) => f.includes('my.cnf'))).toBe(true); // its option file, while it runs
    process.kill(tool!.pid, 'SIGKILL');

    const result = await run.done;
    expect(result.code, result.stderr).toBe(1);
    expect(result.json().failures[0].error).toMatch(/^(mariadb-dump|mysqldump) .* was killed by SIGKILL/);
    expect(result.json().failures[0].error).not.toContain(mysqlInfo().password);
    expect((await runCli(['-c', config, '--json', 'list'], { cwd: dir })).json().stats.count).toBe(0);
    expect(partialFiles(store)).toEqual([]);
    expect(storageFiles(store)).toEqual(['history.jsonl']);
    expect(lockFiles(store)).toEqual([]);
  });
});
