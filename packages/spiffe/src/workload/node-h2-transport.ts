/**
 * `node:http2` as a GrpcChannel transport (the option `transport: 'node:http2'`): one
 * ClientHttp2Session per connection, ref'd while it has open streams.
 */
import * as http2 from 'node:http2';
import type { HeaderMap, RequestHead, StreamEvents, Transport, TransportSession, TransportStream } from './transport.ts';

const { NGHTTP2_CANCEL, NGHTTP2_REFUSED_STREAM } = http2.constants;

/** The first value of each header (node gives arrays for repeated ones). */
function headerMap(h: http2.IncomingHttpHeaders): HeaderMap {
  const out: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(h)) out[k] = Array.isArray(v) ? v[0] : v === undefined ? undefined : String(v);
  return out;
}

class NodeH2Session implements TransportSession {
  readonly #h2: http2.ClientHttp2Session;
  #active = 0;
  #gone = false;
  /** The last stream id of the server's GOAWAY: streams above it were never processed. */
  #goawayLast = Infinity;

  constructor(h2: http2.ClientHttp2Session) {
    this.#h2 = h2;
    const drop = (): void => {
      this.#gone = true;
    };
    // Errors reach the streams as their own 'error'/'close'; the session only has to be forgotten.
    h2.on('error', drop);
    h2.on('goaway', (_code: number, lastStreamId: number) => {
      this.#goawayLast = Math.min(this.#goawayLast, lastStreamId);
      drop();
    });
    h2.on('close', drop);
    // An idle session does not keep the process alive (as connect-node's session manager).
    h2.unref();
  }

  get usable(): boolean {
    return !this.#gone && !this.#h2.closed && !this.#h2.destroyed;
  }

  request(head: RequestHead, body: Buffer, events: StreamEvents): TransportStream {
    const h: http2.OutgoingHttpHeaders = { ':method': 'POST', ':path': head.path };
    for (const [k, v] of head.fields) h[k] = v;
    const s = this.#h2.request(h);
    if (this.#active++ === 0) this.#h2.ref();
    let error: unknown;
    s.on('response', (r) => events.response(headerMap(r)));
    s.on('data', (chunk: Buffer) => events.data(chunk));
    s.on('trailers', (t) => events.trailers(headerMap(t)));
    s.on('error', (e) => {
      error ??= e;
    });
    s.on('close', () => {
      if (--this.#active === 0) this.#h2.unref();
      // A stream the server refused, or one above the GOAWAY's last id, was never processed: it ends
      // refused, without node's stream error (or the session's, which node fails such streams with
      // when the GOAWAY's code is not NO_ERROR), so the channel may send it again.
      if (s.rstCode === NGHTTP2_REFUSED_STREAM || (s.id !== undefined && s.id > this.#goawayLast)) {
        events.close({ rstCode: NGHTTP2_REFUSED_STREAM, lost: true });
        return;
      }
      const h2 = this.#h2;
      const lost = h2.destroyed || h2.closed;
      events.close(error === undefined ? { rstCode: s.rstCode, lost } : { rstCode: s.rstCode, lost, error });
    });
    s.end(body);
    return {
      cancel: () => {
        if (!s.closed) s.close(NGHTTP2_CANCEL);
      },
      pause: () => s.pause(),
      resume: () => s.resume(),
    };
  }

  destroy(): void {
    this.#h2.destroy();
  }
}

/** `node:http2` sessions over the channel's sockets. */
export function nodeHttp2Transport(): Transport {
  return {
    connect: (dial, authority) => new NodeH2Session(http2.connect(`http://${authority}`, { createConnection: () => dial() })),
  };
}
