/**
 * The sqlite driver's consistency promise, in rollback-journal mode: while the file is being
 * copied, a writer on another connection waits (here it is refused at once, with no busy
 * timeout), and the counts in the manifest are those of the copied file.
 */
import { createHash } from 'node:crypto';
import { createReadStream, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import type { DriverContext, EntrySink } from '../../src/core/driver.js';
import { createRunner } from '../../src/drivers/spawn.js';
import { sqliteDriver } from '../../src/drivers/sqlite/sqlite.js';
import { quietLog } from '../support/app.js';
import { tempDir } from '../support/cli.js';

describe('sqlite driver, rollback-journal mode', () => {
  it('holds writers off for the whole copy and counts what it copied', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'shop.sqlite');
    const setup = new Database(file);
    setup.exec('CREATE TABLE orders (id INTEGER PRIMARY KEY, note TEXT NOT NULL)');
    const insert = setup.prepare('INSERT INTO orders (note) VALUES (?)');
    setup.transaction(() => {
      for (let i = 0; i < 20_000; i++) insert.run(`order ${i} `.repeat(20));
    })();
    setup.close();
    expect(new Database(file, { readonly: true }).pragma('journal_mode', { simple: true })).toBe('delete');

    const writer = new Database(file, { timeout: 0 });
    const refusals: string[] = [];
    let copied: Buffer | undefined;
    const sink: EntrySink = {
      addFile(name, file) {
        return sink.add(name, createReadStream(file), { compressed: false });
      },
      async add(name, stream: Readable) {
        const chunks: Buffer[] = [];
        for await (const chunk of stream as AsyncIterable<Buffer>) {
          if (chunks.length === 0) {
            // Mid-copy: a write from another connection must not get in.
            try {
              writer.prepare("INSERT INTO orders (note) VALUES ('late')").run();
            } catch (error) {
              refusals.push((error as { code: string }).code);
            }
          }
          chunks.push(chunk);
        }
        copied = Buffer.concat(chunks);
        return { path: name, size: copied.length, sha256: createHash('sha256').update(copied).digest('hex') };
      },
    };
    const ctx: DriverContext = {
      target: 'shop',
      signal: new AbortController().signal,
      log: quietLog,
      runner: createRunner(quietLog, (t) => t),
      env: {},
      bin: undefined,
      tempPath: (name) => path.join(dir, `.${name}.tmp`),
    };
    const result = await sqliteDriver.dump(ctx, { path: file }, sink);

    expect(refusals).toEqual(['SQLITE_BUSY']);
    expect(result.units).toEqual([{ name: 'orders', kind: 'table', count: 20_000 }]);
    const copy = path.join(dir, 'copy.sqlite');
    writeFileSync(copy, copied!);
    expect(new Database(copy, { readonly: true }).prepare('SELECT count(*) AS n FROM orders').get()).toEqual({ n: 20_000 });
    // Once the copy is done, the writer gets in.
    writer.prepare("INSERT INTO orders (note) VALUES ('late')").run();
    writer.close();
  });
});
