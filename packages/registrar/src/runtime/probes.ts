// controller-runtime's health probe server: GET /healthz (the process answers) and GET /readyz
// (informers synced; with leader election a non-leader is ready too, as in controller-runtime).
import { createServer, type Server } from 'node:http';
import { listenTcp } from '@ztwim/core';

export interface ProbeServer {
  readonly port: number;
  close(): Promise<void>;
}

/** `address` is host:port (`:8083` = all interfaces). */
export async function serveProbes(address: string, ready: () => boolean): Promise<ProbeServer> {
  const i = address.lastIndexOf(':');
  const host = i <= 0 ? '0.0.0.0' : address.slice(0, i).replace(/^\[|\]$/g, '');
  const port = Number(address.slice(i + 1));
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path === '/healthz') res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    else if (path === '/readyz') {
      if (ready()) res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      else res.writeHead(500, { 'content-type': 'text/plain' }).end('informers not synced');
    } else res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  });
  return {
    port: await listenTcp(server, port, host),
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
