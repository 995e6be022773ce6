// Messages that come with their wire encoding already made. A handler that keeps the encoded
// form of what it answers (e.g. 1,000 authorised entries, unchanged between agent syncs) hands
// the message out with its bytes; the direct unary path writes those bytes instead of encoding
// the message again. The message itself stays complete and valid (connect-node, interceptors and
// tests see an ordinary message), so the bytes must be exactly toBinary(message): callers build
// both from the same data and never change the message afterwards.
import type { Message } from '@bufbuild/protobuf';

const encodings = new WeakMap<Message, Uint8Array>();

/** Records `bytes` as the encoding of `msg` (which must not be modified afterwards); returns msg. */
export function withEncoding<T extends Message>(msg: T, bytes: Uint8Array): T {
  encodings.set(msg, bytes);
  return msg;
}

/** The encoding recorded for this very message object, if any. */
export function encodingOf(msg: Message): Uint8Array | undefined {
  return encodings.get(msg);
}
