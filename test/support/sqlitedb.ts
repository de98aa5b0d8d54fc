/** A small SQLite database and a folder of files, as the demo target has, to back up and compare. */
import { mkdirSync, utimesSync, writeFileSync, chmodSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';

export function makeSqlite(file: string, rows = 200): void {
  const db = new Database(file);
  db.exec(`
    CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, price REAL, data BLOB, note TEXT);
    CREATE TABLE tags (item_id INTEGER REFERENCES items(id), tag TEXT);
    CREATE INDEX tags_item ON tags(item_id);
  `);
  const add = db.prepare('INSERT INTO items (name, price, data, note) VALUES (?, ?, ?, ?)');
  const tag = db.prepare('INSERT INTO tags VALUES (?, ?)');
  db.transaction(() => {
    for (let i = 1; i <= rows; i++) {
      add.run(`item ${i} ✓ ünïcode`, i * 1.25, Buffer.from([i % 256, 0, 255, 7]), i % 3 ? null : `note ${i}`);
      tag.run(i, i % 2 ? 'odd' : 'even');
    }
  })();
  db.close();
}

/** Every table's rows, in order: equal dumps, equal data. */
export function sqliteRows(file: string): Record<string, unknown[]> {
  const db = new Database(file, { readonly: true });
  try {
    const tables = db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name").all() as { name: string }[];
    return Object.fromEntries(tables.map(({ name }) => [name, db.prepare(`SELECT * FROM "${name}" ORDER BY rowid`).all()]));
  } finally {
    db.close();
  }
}

/** A folder with nested files, a binary file, an empty folder, odd modes and fixed mtimes. */
export function makeFiles(dir: string): void {
  mkdirSync(path.join(dir, 'a', 'b'), { recursive: true });
  mkdirSync(path.join(dir, 'empty'));
  writeFileSync(path.join(dir, 'top.txt'), 'top level\n');
  writeFileSync(path.join(dir, 'a', 'b', 'deep.bin'), Buffer.from(Array.from({ length: 70_000 }, (_, i) => (i * 31) % 256)));
  writeFileSync(path.join(dir, 'a', 'script.sh'), '#!/bin/sh\necho hi\n');
  chmodSync(path.join(dir, 'a', 'script.sh'), 0o750);
  symlinkSync('top.txt', path.join(dir, 'link-to-top'));
  const when = new Date('2025-03-04T05:06:07.891Z');
  for (const f of ['top.txt', 'a/b/deep.bin', 'a/script.sh']) utimesSync(path.join(dir, f), when, when);
}
