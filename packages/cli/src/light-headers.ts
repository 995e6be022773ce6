// The global `Headers` of every ztwim command (see useLightHeaders).
import { Headers as LightHeaders } from 'headers-polyfill';

/**
 * Node's global `Headers` is undici's, and the first touch of it loads all of undici: +13 MiB of
 * resident memory in a bare node (40 → 53 MiB), more than the rest of the agent's own code. The
 * gRPC layers (connect, @ztwim/proto) need only a plain header map, so every ztwim command gets the
 * small `headers-polyfill` class (mswjs, a spec-following Headers) as the global instead, set by
 * run-main.ts before any command module is loaded (@ztwim/proto builds ConnectErrors, whose metadata
 * is a Headers, as it is imported). `fetch` keeps working: it loads undici's own Headers when first used.
 * Skipped if something already created the global (undici loaded anyway; mixing the two classes
 * would break `instanceof Headers`).
 */
export function useLightHeaders(): void {
  const d = Object.getOwnPropertyDescriptor(globalThis, 'Headers');
  // Node defines the global as a lazy accessor that loads undici; a data property means it is
  // already loaded (or already replaced).
  if (d !== undefined && d.get === undefined) return;
  Object.defineProperty(globalThis, 'Headers', { value: LightHeaders, writable: true, configurable: true, enumerable: false });
}
