// Test helper: the HandlerContext a service method sees when the server's interceptors have run,
// for calling a service implementation directly (no transport).
import { createContextValues, createHandlerContext, type HandlerContext } from '@connectrpc/connect';
import type { DescMethod, DescService } from '@bufbuild/protobuf';
import { callerKey, type Caller } from './caller.ts';

export function handlerContext(
  service: DescService,
  method: DescMethod,
  opts: { readonly caller?: Caller; readonly signal?: AbortSignal } = {},
): HandlerContext {
  const values = createContextValues();
  if (opts.caller !== undefined) values.set(callerKey, opts.caller);
  return createHandlerContext({
    service,
    method,
    protocolName: 'grpc',
    requestMethod: 'POST',
    url: 'http://x/',
    contextValues: values,
    ...(opts.signal === undefined ? {} : { requestSignal: opts.signal }),
  });
}
