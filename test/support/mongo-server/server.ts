/**
 * In-memory MongoDB wire-protocol server for tests: a stand-in for mongod
 * that the `mongodb` Node driver and mongodump/mongorestore 100.7 accept.
 * See README.md for what is (not) implemented.
 */
import { createServer, type Socket } from 'node:net';
import { EJSON } from 'bson';
import { MAX_MESSAGE_SIZE } from './admin-commands.js';
import { commandName, runCommand } from './commands.js';
import type { CommandContext } from './context.js';
import { CursorRegistry } from './cursors.js';
import { Store } from './store.js';
import {
  buildOpMsg, buildOpReply, MessageReader, OP_MSG, OP_QUERY, parseOpMsg, parseOpQuery, readHeader,
  type IncomingCommand,
} from './wire.js';

export interface MongoTestServerOptions {
  /** TCP port on 127.0.0.1; 0 (default) picks a free one. */
  port?: number;
  /** Receives diagnostics: unknown commands, unsupported features, protocol errors. */
  log?: (line: string) => void;
  /** Also log every command received (name and db). */
  trace?: boolean;
}

export interface MongoTestServer {
  /** `mongodb://127.0.0.1:<port>` */
  uri: string;
  port: number;
  /** Closes the listener and every open connection. */
  stop(): Promise<void>;
}

/** Shared state of one running server. */
interface ServerState {
  store: Store;
  cursors: CursorRegistry;
  startedAt: Date;
  log: (line: string) => void;
  trace: boolean;
  nextConnectionId: number;
  nextRequestId: number;
}

/** Parses one complete message into a command, or undefined for unsupported opcodes. */
function parseMessage(msg: Buffer, state: ServerState): IncomingCommand | undefined {
  const { opCode } = readHeader(msg);
  if (opCode === OP_MSG) return parseOpMsg(msg);
  if (opCode === OP_QUERY) return parseOpQuery(msg);
  state.log(`mongo-test-server: unsupported opcode ${opCode}; closing connection`);
  return undefined;
}

/** One-line summary of a command for trace logs (bulk document payloads elided). */
function describeCommand(cmd: IncomingCommand): string {
  const { documents: _d, updates: _u, deletes: _x, ...rest } = cmd.body;
  const seqs = [...cmd.sequences.entries()].map(([id, docs]) => ` +${id}[${docs.length}]`).join('');
  const text = EJSON.stringify(rest, { relaxed: true });
  return `${commandName(cmd.body)} ${text.length > 400 ? `${text.slice(0, 400)}…` : text}${seqs}`;
}

/** Handles one message; returns the reply bytes, null for no reply, undefined to close. */
function handleMessage(msg: Buffer, ctx: CommandContext, state: ServerState): Buffer | null | undefined {
  const cmd = parseMessage(msg, state);
  if (!cmd) return undefined;
  if (state.trace) state.log(`mongo-test-server: conn ${ctx.connectionId} ${cmd.legacy ? 'OP_QUERY' : 'OP_MSG'} ${describeCommand(cmd)}`);
  const body = runCommand(cmd, ctx);
  if (cmd.moreToCome) return null;
  const requestId = state.nextRequestId++;
  return cmd.legacy ? buildOpReply(body, requestId, cmd.header.requestID) : buildOpMsg(body, requestId, cmd.header.requestID);
}

/** Serves one client connection: frames messages and answers them in order. */
function serveConnection(socket: Socket, state: ServerState): void {
  const ctx: CommandContext = {
    store: state.store,
    cursors: state.cursors,
    connectionId: state.nextConnectionId++,
    client: `${socket.remoteAddress ?? '127.0.0.1'}:${socket.remotePort ?? 0}`,
    startedAt: state.startedAt,
    log: state.log,
  };
  const reader = new MessageReader(MAX_MESSAGE_SIZE);
  socket.setNoDelay(true);
  socket.on('error', () => socket.destroy());
  socket.on('data', (chunk: Buffer) => {
    try {
      for (const msg of reader.push(chunk)) {
        const reply = handleMessage(msg, ctx, state);
        if (reply === undefined) { socket.destroy(); return; }
        if (reply) socket.write(reply);
      }
    } catch (err) {
      state.log(`mongo-test-server: protocol error on conn ${ctx.connectionId}: ${err instanceof Error ? err.message : String(err)}`);
      socket.destroy();
    }
  });
}

/** Starts a server on 127.0.0.1. Resolves once it is listening. */
export async function startMongoTestServer(options: MongoTestServerOptions = {}): Promise<MongoTestServer> {
  const state: ServerState = {
    store: new Store(),
    cursors: new CursorRegistry(),
    startedAt: new Date(),
    log: options.log ?? (() => undefined),
    trace: options.trace ?? false,
    nextConnectionId: 1,
    nextRequestId: 1,
  };
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    serveConnection(socket, state);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('mongo-test-server: unexpected listen address');
  const port = address.port;
  return {
    uri: `mongodb://127.0.0.1:${port}`,
    port,
    stop: () =>
      new Promise<void>((resolve, reject) => {
        for (const s of sockets) s.destroy();
        state.cursors.clear();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}
