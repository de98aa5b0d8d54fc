/**
 * Handshake, server-information and session commands. The server presents
 * itself as a standalone MongoDB 6.0 (wire version 17) without auth.
 */
import { hostname } from 'node:os';
import { Int32, Long, type Document } from 'bson';
import { OK, type CommandContext, type Handler } from './context.js';
import { CommandError } from './errors.js';

export const SERVER_VERSION = '6.0.0';
/** MongoDB 6.0. The Node driver 7 needs >= 9 (4.4); mongodump 100.7's Go driver accepts 6..17+. */
export const MAX_WIRE_VERSION = 17;
export const MAX_BSON_OBJECT_SIZE = 16 * 1024 * 1024;
export const MAX_MESSAGE_SIZE = 48_000_000;

/** `hello`/`isMaster` reply for a writable standalone. No topologyVersion, so no streaming hellos. */
function hello(ctx: CommandContext): Document {
  return {
    ismaster: true,
    isWritablePrimary: true,
    helloOk: true,
    maxBsonObjectSize: new Int32(MAX_BSON_OBJECT_SIZE),
    maxMessageSizeBytes: new Int32(MAX_MESSAGE_SIZE),
    maxWriteBatchSize: new Int32(100_000),
    localTime: new Date(),
    logicalSessionTimeoutMinutes: new Int32(30),
    connectionId: new Int32(ctx.connectionId),
    minWireVersion: new Int32(0),
    maxWireVersion: new Int32(MAX_WIRE_VERSION),
    readOnly: false,
    ok: OK,
  };
}

function buildInfo(): Document {
  return {
    version: SERVER_VERSION,
    gitVersion: 'backupkit-test-server',
    modules: [],
    allocator: 'system',
    javascriptEngine: 'none',
    sysInfo: 'deprecated',
    versionArray: [new Int32(6), new Int32(0), new Int32(0), new Int32(0)],
    openssl: { running: 'disabled', compiled: 'disabled' },
    buildEnvironment: {},
    bits: new Int32(64),
    debug: false,
    maxBsonObjectSize: new Int32(MAX_BSON_OBJECT_SIZE),
    storageEngines: ['wiredTiger'],
    ok: OK,
  };
}

/** Known server parameters for getParameter. */
function parameters(): Document {
  return {
    featureCompatibilityVersion: { version: '6.0' },
    authenticationMechanisms: ['SCRAM-SHA-1', 'SCRAM-SHA-256'],
    internalQueryMaxBlockingSortMemoryUsageBytes: Long.fromNumber(100 * 1024 * 1024),
  };
}

function getParameter(body: Document): Document {
  const all = parameters();
  if (body.getParameter === '*') return { ...all, ok: OK };
  const wanted = Object.keys(body).filter((k) => !k.startsWith('$') && k !== 'getParameter' && k !== 'lsid' && k !== 'comment');
  const out: Document = {};
  for (const name of wanted) {
    if (!(name in all)) throw new CommandError(72, 'InvalidOptions', `no option found to get: ${name}`);
    out[name] = all[name];
  }
  return { ...out, ok: OK };
}

function serverStatus(ctx: CommandContext): Document {
  const uptimeMs = Date.now() - ctx.startedAt.getTime();
  return {
    host: hostname(),
    version: SERVER_VERSION,
    process: 'mongod',
    pid: Long.fromNumber(process.pid),
    uptime: Math.floor(uptimeMs / 1000),
    uptimeMillis: Long.fromNumber(uptimeMs),
    localTime: new Date(),
    connections: { current: new Int32(1), available: new Int32(1000), totalCreated: new Int32(ctx.connectionId) },
    storageEngine: { name: 'wiredTiger', supportsCommittedReads: true, persistent: true, readOnly: false },
    ok: OK,
  };
}

function hostInfo(): Document {
  return {
    system: { currentTime: new Date(), hostname: hostname(), cpuAddrSize: new Int32(64), numCores: new Int32(1), cpuArch: 'x86_64', memSizeMB: Long.fromNumber(1024) },
    os: { type: 'Linux', name: 'test', version: '1' },
    extra: {},
    ok: OK,
  };
}

const ok: Handler = () => ({ ok: OK });

/** Admin/handshake command handlers by command name. */
export const adminCommands: Record<string, Handler> = {
  hello: (_cmd, ctx) => hello(ctx),
  isMaster: (_cmd, ctx) => hello(ctx),
  ismaster: (_cmd, ctx) => hello(ctx),
  ping: ok,
  buildInfo: () => buildInfo(),
  buildinfo: () => buildInfo(),
  getParameter: (cmd) => getParameter(cmd.body),
  serverStatus: (_cmd, ctx) => serverStatus(ctx),
  hostInfo: () => hostInfo(),
  getCmdLineOpts: () => ({ argv: ['mongod'], parsed: {}, ok: OK }),
  getFreeMonitoringStatus: () => ({ state: 'disabled', ok: OK }),
  whatsmyuri: (_cmd, ctx) => ({ you: ctx.client, ok: OK }),
  connectionStatus: () => ({ authInfo: { authenticatedUsers: [], authenticatedUserRoles: [] }, ok: OK }),
  getLog: () => ({ totalLinesWritten: new Int32(0), log: [], ok: OK }),
  /** Non-Atlas mongod answers CommandNotFound; mongodump probes it and expects exactly that. */
  atlasVersion: () => {
    throw new CommandError(59, 'CommandNotFound', "no such command: 'atlasVersion'");
  },
  replSetGetStatus: () => {
    throw new CommandError(76, 'NoReplicationEnabled', 'not running with --replSet');
  },
  endSessions: ok,
  refreshSessions: ok,
  startSession: ok,
  killSessions: ok,
  killAllSessions: ok,
  abortTransaction: ok,
  commitTransaction: ok,
  logout: ok,
  getLastError: () => ({ n: new Int32(0), err: null, ok: OK }),
};
