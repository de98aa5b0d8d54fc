/**
 * The S3 test server (test/support/s3server: s3rver on loopback) in a process of its own, so that
 * receiving, hashing and storing the uploads does not share an event loop (or a core) with the
 * harness that times them. Its data goes under $TMPDIR (the harness gives it a folder of its work
 * folder). Prints `{"endpoint", "bucket", "region", "accessKeyId", "secretAccessKey"}` on stdout once
 * listening; stops when its stdin closes (the harness ended, however it ended) or on SIGTERM/SIGINT.
 */
import { startS3Server } from '../test/support/s3server.js';

// The bench always runs on the local s3rver: a real service would measure the network instead.
delete process.env.BACKUPKIT_TEST_S3_URL;
const server = await startS3Server();
const { endpoint, bucket, region, accessKeyId, secretAccessKey } = server;
process.stdout.write(`${JSON.stringify({ endpoint, bucket, region, accessKeyId, secretAccessKey })}\n`);

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
