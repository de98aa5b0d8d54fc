/**
 * The daemon's HTTP endpoints (node:http), for probes and Prometheus:
 *   GET /healthz  200 when every target is healthy, else 503; JSON (health.ts's HealthReport)
 *   GET /metrics  Prometheus text format
 * Anything else is 404 (405 for another method on these paths). It only reads what the daemon
 * already knows: a scrape lists no storage and runs no query.
 */
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../core/driver.js';
import { OperationError, errorMessage } from '../core/errors.js';
import type { HealthReport } from './health.js';

export interface Endpoints {
  health(): HealthReport;
  metrics(): Promise<{ contentType: string; body: string }>;
}

export interface HttpServer {
  /** The address it listens on, with the real port: `http://127.0.0.1:9180`. */
  url: string;
  close(): Promise<void>;
}

export async function startHttpServer(listen: { host: string; port: number }, endpoints: Endpoints, log: Logger): Promise<HttpServer> {
  const server: Server = createServer((request, response) => {
    handle(request, response, endpoints).catch((error: unknown) => {
      log.error(`${request.method} ${request.url}: ${errorMessage(error)}`);
      if (!response.headersSent) send(response, 500, 'text/plain; charset=utf-8', 'internal error\n');
      else response.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      const where = `${listen.host.includes(':') ? `[${listen.host}]` : listen.host}:${listen.port}`;
      const why = error.code === 'EADDRINUSE' ? 'the address is in use' : error.code === 'EADDRNOTAVAIL' ? 'no such address on this host' : errorMessage(error);
      reject(new OperationError(`cannot listen on ${where}: ${why}`, { cause: error, hint: 'Change "daemon.listen" in the config (port 0 picks a free port).' }));
    });
    server.listen(listen.port, listen.host, () => resolve());
  });
  server.on('error', (error) => log.error(`HTTP server: ${errorMessage(error)}`));
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' || address.address.includes(':') ? `[${address.address}]` : address.address;
  return {
    url: `http://${host}:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function handle(request: IncomingMessage, response: ServerResponse, endpoints: Endpoints): Promise<void> {
  const pathname = new URL(request.url ?? '/', 'http://localhost').pathname;
  if (pathname !== '/healthz' && pathname !== '/metrics') {
    send(response, 404, 'text/plain; charset=utf-8', 'not found: try /healthz or /metrics\n');
    return;
  }
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    response.setHeader('Allow', 'GET, HEAD');
    send(response, 405, 'text/plain; charset=utf-8', 'method not allowed\n');
    return;
  }
  if (pathname === '/healthz') {
    const report = endpoints.health();
    send(response, report.ok ? 200 : 503, 'application/json; charset=utf-8', `${JSON.stringify(report, null, 2)}\n`, request.method === 'HEAD');
  } else {
    const { contentType, body } = await endpoints.metrics();
    send(response, 200, contentType, body, request.method === 'HEAD');
  }
}

function send(response: ServerResponse, status: number, contentType: string, body: string, headOnly = false): void {
  response.writeHead(status, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' });
  response.end(headOnly ? undefined : body);
}
