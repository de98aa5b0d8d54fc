/** The driver registry, built in main. A duplicate name is a programming error caught at start. */
import type { Driver, DriverRegistry } from '../core/driver.js';
import { djangoDriver } from './django/django.js';
import { mongodumpDriver } from './mongo/mongodump.js';
import { mongoJsonDriver } from './mongo/mongojson.js';
import { mysqlDumpDriver } from './mysql/mysqldump.js';
import { pgDumpDriver } from './postgres/pgdump.js';
import { sqliteDriver } from './sqlite/sqlite.js';

export function createDriverRegistry(drivers: Driver[] = [pgDumpDriver, sqliteDriver, mongodumpDriver, mongoJsonDriver, djangoDriver, mysqlDumpDriver]): DriverRegistry {
  const byName = new Map<string, Driver>();
  for (const driver of drivers) {
    if (byName.has(driver.name)) throw new Error(`duplicate driver name: ${driver.name}`);
    byName.set(driver.name, driver);
  }
  return {
    get: (name) => byName.get(name),
    names: () => [...byName.keys()].sort(),
  };
}
