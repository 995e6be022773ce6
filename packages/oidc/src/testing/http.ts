/** Test-only HTTP helpers (not exported from the package index). */
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';

export interface TestResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  /** TLS peer certificate fingerprint (https only). */
  readonly peerFingerprint256?: string;
}

export interface TestRequestOptions {
  readonly method?: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly ca?: string;
  readonly socketPath?: string;
  readonly servername?: string;
}

/** One request on a fresh connection; resolves with the whole response. */
export function get(url: string, o: TestRequestOptions = {}): Promise<TestResponse> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const isTls = u.protocol === 'https:';
    const req = (isTls ? httpsRequest : httpRequest)(
      u,
      {
        method: o.method ?? 'GET',
        headers: o.headers ?? {},
        agent: false,
        ...(o.socketPath === undefined ? {} : { socketPath: o.socketPath }),
        ...(isTls && o.ca !== undefined ? { ca: o.ca } : {}),
        ...(o.servername === undefined ? {} : { servername: o.servername }),
      },
      (res) => {
        const chunks: Buffer[] = [];
        let fp: string | undefined;
        const sock = res.socket as { getPeerCertificate?: () => { fingerprint256?: string } };
        if (isTls) fp = sock.getPeerCertificate?.().fingerprint256;
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
            ...(fp === undefined ? {} : { peerFingerprint256: fp }),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}
