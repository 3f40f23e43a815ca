// Structured logs with pino. Secrets (keys, seeds, session keys) are redacted by
// path, so a careless `log.info({ key })` cannot leak them.
import { type Logger, pino } from 'pino';

export type { Logger };

export const REDACT_PATHS = [
  'key',
  'secretKey',
  'privateKey',
  'seed',
  'sessionKey',
  'trinxKey',
  '*.key',
  '*.secretKey',
  '*.privateKey',
  '*.seed',
  '*.sessionKey',
  '*.trinxKey',
];

export interface LoggerOptions {
  level: string;
  format: 'json' | 'pretty';
  /** Bound into every line, e.g. { validator: 0 }. */
  base?: Record<string, unknown>;
  /** Defaults to stdout (fd 1). */
  destination?: NodeJS.WritableStream;
}

const LEVEL_NAMES: Record<number, string> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
};

/** A minimal human formatter (no extra dependency): `HH:MM:SS.mmm INFO [v0] msg key=value`. */
function prettyStream(out: NodeJS.WritableStream): NodeJS.WritableStream & { write(s: string): boolean } {
  return {
    write(line: string): boolean {
      try {
        const o = JSON.parse(line) as Record<string, unknown>;
        const { level, time, msg, pid: _pid, hostname: _h, validator, ...rest } = o;
        const t = new Date(Number(time)).toISOString().slice(11, 23);
        const lv = LEVEL_NAMES[Number(level)] ?? String(level);
        const tag = validator === undefined ? '' : ` [v${String(validator)}]`;
        const kv = Object.entries(rest)
          .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
          .join(' ');
        return out.write(`${t} ${lv.padEnd(5)}${tag} ${String(msg ?? '')}${kv ? ` ${kv}` : ''}\n`);
      } catch {
        return out.write(line);
      }
    },
  } as NodeJS.WritableStream & { write(s: string): boolean };
}

export function createLogger(opts: LoggerOptions): Logger {
  const dest = opts.destination ?? process.stdout;
  const stream = opts.format === 'pretty' ? prettyStream(dest) : dest;
  return pino(
    {
      level: opts.level,
      base: opts.base ?? {},
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.epochTime,
    },
    stream as pino.DestinationStream,
  );
}
