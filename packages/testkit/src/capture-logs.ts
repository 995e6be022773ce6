// A logger whose JSON lines a test reads back, parsed, in the order they were written.
import { createLogger, type Logger, type LogLevel } from '@ztwim/core';

export type LogLine = Record<string, unknown>;

export interface CapturedLogs {
  readonly log: Logger;
  /** Every line written so far (empty it with `lines.length = 0`). */
  readonly lines: LogLine[];
}

export function captureLogs(level: LogLevel = 'debug'): CapturedLogs {
  const lines: LogLine[] = [];
  const log = createLogger({ level, destination: { write: (s: string) => void lines.push(JSON.parse(s) as LogLine) } });
  return { log, lines };
}
