// Creates examples/demo.sqlite, the quick start's database, when it does not exist yet.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';

const file = fileURLToPath(new URL('./demo.sqlite', import.meta.url));
if (!existsSync(file)) {
  const db = new Database(file);
  db.exec(`
    CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT UNIQUE, created_at TEXT NOT NULL);
    CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers(id), total_cents INTEGER NOT NULL, note TEXT);
    CREATE INDEX orders_customer ON orders(customer_id);
  `);
  const names = ['Ada Lovelace', 'Grace Hopper', 'Edsger Dijkstra', 'Barbara Liskov', 'Ken Thompson', 'Margaret Hamilton', 'Donald Knuth', 'Frances Allen'];
  const addCustomer = db.prepare('INSERT INTO customers (name, email, created_at) VALUES (?, ?, ?)');
  const addOrder = db.prepare('INSERT INTO orders (customer_id, total_cents, note) VALUES (?, ?, ?)');
  db.transaction(() => {
    names.forEach((name, i) => {
      const { lastInsertRowid } = addCustomer.run(name, `${name.split(' ')[0].toLowerCase()}@example.com`, new Date(Date.UTC(2026, 0, 1 + i)).toISOString());
      for (let n = 0; n < 3 + i; n++) addOrder.run(lastInsertRowid, 1000 + 250 * n + i, n % 2 ? 'gift wrap' : null);
    });
  })();
  db.close();
  console.error(`created ${file}`);
}
