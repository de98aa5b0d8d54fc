/**
 * Wire-level tests for the in-memory MongoDB test server: raw OP_QUERY and
 * OP_MSG messages (checksum trailer, document sequences) over a socket.
 */
import { connect } from 'node:net';
import { BSON } from 'bson';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMongoTestServer, type MongoTestServer } from './server.js';

/** Sends one wire message on a fresh socket and resolves with the first reply message. */
function roundTrip(port: number, message: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(message));
    let got: Buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      got = Buffer.concat([got, chunk]);
      if (got.length >= 4 && got.length >= got.readInt32LE(0)) {
        socket.destroy();
        resolve(got.subarray(0, got.readInt32LE(0)));
      }
    });
    socket.on('error', reject);
  });
}

function wireHeader(length: number, requestId: number, opCode: number): Buffer {
  const h = Buffer.alloc(16);
  h.writeInt32LE(length, 0);
  h.writeInt32LE(requestId, 4);
  h.writeInt32LE(opCode, 12);
  return h;
}

describe('mongo test server wire protocol', () => {
  let server: MongoTestServer;
  beforeAll(async () => {
    server = await startMongoTestServer();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('answers a legacy OP_QUERY isMaster with OP_REPLY', async () => {
    const query = Buffer.from(BSON.serialize({ isMaster: 1 }));
    const body = Buffer.concat([Buffer.alloc(4), Buffer.from('admin.$cmd\0'), Buffer.from([0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]), query]);
    const reply = await roundTrip(server.port, Buffer.concat([wireHeader(16 + body.length, 7, 2004), body]));
    expect(reply.readInt32LE(8)).toBe(7); // responseTo
    expect(reply.readInt32LE(12)).toBe(1); // OP_REPLY
    expect(reply.readInt32LE(32)).toBe(1); // numberReturned
    expect(BSON.deserialize(reply.subarray(36))).toMatchObject({ ismaster: true, maxWireVersion: 17, ok: 1 });
  });

  it('accepts OP_MSG with a checksum trailer and document sequences', async () => {
    const body = Buffer.from(BSON.serialize({ insert: 'c', $db: 'wire' }));
    const docs = [{ _id: 1 }, { _id: 2 }].map((d) => Buffer.from(BSON.serialize(d)));
    const seqBody = Buffer.concat([Buffer.from('documents\0'), ...docs]);
    const seqSize = Buffer.alloc(4);
    seqSize.writeInt32LE(4 + seqBody.length, 0);
    const flags = Buffer.alloc(4);
    flags.writeUInt32LE(1, 0); // checksumPresent
    const payload = Buffer.concat([flags, Buffer.from([0]), body, Buffer.from([1]), seqSize, seqBody, Buffer.alloc(4)]);
    const reply = await roundTrip(server.port, Buffer.concat([wireHeader(16 + payload.length, 9, 2013), payload]));
    expect(reply.readInt32LE(12)).toBe(2013);
    expect(BSON.deserialize(reply.subarray(21))).toEqual({ n: 2, ok: 1 });
  });
});
