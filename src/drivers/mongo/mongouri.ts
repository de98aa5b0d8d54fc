/**
 * MongoDB connection strings: parsed far enough to name the database and hosts without the
 * password, and to hand the full URI to the tools in a 0600 YAML file (never argv).
 */
import { writeFile, rm } from 'node:fs/promises';
import { z } from 'zod';
import type { Source } from '../../core/manifest.js';
import { badEscapeProblem } from '../connection.js';

/** The config keys both MongoDB drivers take. */
export const mongoOptionsSchema = z.object({
  uri: z.string().min(1),
  database: z.string().min(1).optional(),
  collections: z.array(z.string().min(1)).optional(),
  excludeCollections: z.array(z.string().min(1)).optional(),
  emptyCheck: z.string().min(1).optional(),
});
export type MongoOptions = z.infer<typeof mongoOptionsSchema>;

const MONGO_URI = /^(mongodb(?:\+srv)?):\/\/(?:([^:@/]*)(?::([^@/]*))?@)?([^/?]+)(?:\/([^?]*))?(?:\?(.*))?$/;

export interface MongoUri {
  scheme: string;
  user: string | undefined;
  password: string | undefined;
  hosts: string;
  database: string | undefined;
  query: string | undefined;
}

export function parseMongoUri(uri: string): MongoUri | undefined {
  const match = MONGO_URI.exec(uri);
  if (!match) return undefined;
  return {
    scheme: match[1]!,
    user: match[2] ? decodeURIComponent(match[2]) : undefined,
    password: match[3] ? decodeURIComponent(match[3]) : undefined,
    hosts: match[4]!,
    database: match[5] ? decodeURIComponent(match[5]) : undefined,
    query: match[6],
  };
}

export function checkMongoUri(uri: string | undefined): string[] {
  if (!uri) return ['uri: required (mongodb://user:password@host:port/database)'];
  try {
    return parseMongoUri(uri) ? [] : ['uri: not a MongoDB connection string (expected mongodb:// or mongodb+srv://)'];
  } catch (error) {
    if (error instanceof URIError) return [badEscapeProblem('uri')];
    throw error;
  }
}

export function describeMongo(uri: string, database: string | undefined): Source {
  const parsed = parseMongoUri(uri);
  const first = parsed?.hosts.split(',')[0] ?? '';
  const [host, port] = first.startsWith('[') ? [first.slice(0, first.indexOf(']') + 1), first.slice(first.indexOf(']') + 2)] : first.split(':');
  const db = database ?? parsed?.database;
  return {
    ...(db ? { database: db } : {}),
    ...(host ? { host } : {}),
    ...(port ? { port: Number(port) } : parsed?.scheme === 'mongodb' ? { port: 27017 } : {}),
  };
}

/**
 * Write the URI into a YAML file for the tools' `--config` option (mode 0600), run `fn`, remove
 * the file whatever happens.
 */
export async function withToolConfig<T>(file: string, uri: string, fn: (file: string) => Promise<T>): Promise<T> {
  // A JSON string is a valid YAML double-quoted scalar.
  await writeFile(file, `uri: ${JSON.stringify(uri)}\n`, { mode: 0o600, flag: 'wx' });
  try {
    return await fn(file);
  } finally {
    await rm(file, { force: true });
  }
}

export const MONGO_TOOLS_HINT = [
  'Install the MongoDB Database Tools (mongodump, mongorestore):',
  '  Debian/Ubuntu: add the MongoDB apt repository, then apt-get install mongodb-database-tools',
  '  RHEL/Fedora:   add the MongoDB yum repository, then dnf install mongodb-database-tools',
  '  macOS:         brew install mongodb/brew/mongodb-database-tools',
  '  Windows:       choco install mongodb-database-tools, or the MSI from mongodb.com/try/download/database-tools',
].join('\n');
