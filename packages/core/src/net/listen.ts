// Listening on a TCP port with a promise: the one place that waits for 'listening' or the first
// 'error' (EADDRINUSE, EACCES) and reads back the port the kernel picked for port 0.
import type { Server } from 'node:net';

/**
 * Starts `server` listening on host:port (host undefined: every interface) and resolves with the
 * bound port, or rejects with the listen error. Later errors are left to the server's own
 * listeners.
 */
export async function listenTcp(server: Server, port: number, host?: string): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address();
  return typeof addr === 'object' && addr !== null ? addr.port : port;
}
