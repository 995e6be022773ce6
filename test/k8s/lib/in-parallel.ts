// Runs an async step over many items, `width` at a time (creating a thousand objects against the
// apiserver without a thousand requests in flight). No node:test import: benches load it too.

export async function inParallel<T>(items: readonly T[], width: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.max(1, width) }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}
