/**
 * The in-memory MongoDB wire-protocol test server (test/support/mongo-server) in a process of its
 * own, so that serving mongodump and the Node driver does not share an event loop (or a core) with
 * the harness that times them. Prints `{"uri": ..., "port": ...}` on stdout once listening; stops
 * when its stdin closes (the harness ended, however it ended) or on SIGTERM/SIGINT.
 */
import { startMongoTestServer } from '../test/support/mongo-server/server.js';

const server = await startMongoTestServer({ log: (line) => process.stderr.write(`[mongo test server] ${line}\n`) });
process.stdout.write(`${JSON.stringify({ uri: server.uri, port: server.port })}\n`);

let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  server.stop().finally(() => process.exit(0));
};
process.stdin.on('end', stop);
process.stdin.on('close', stop);
process.stdin.resume();
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
