// What must never reach a log line: field names that hold secrets (for pino's `redact`)
// and a scanner that looks for the secret bytes themselves in any text (for tests over
// real logs, which catch a secret logged under an innocent name or inside a string).

/** Field names that hold secret material anywhere in the project. */
export const SECRET_FIELD_NAMES = [
  'key',
  'secretKey',
  'privateKey',
  'seed',
  'sessionKey',
  'sessionKeys',
  'sendKey',
  'recvKey',
  'macKey',
  'trinxKey',
  'sharedSecret',
  'ephemeralSecret',
  'password',
  'authorization',
] as const;

/**
 * pino `redact.paths` for secret fields at the top level and up to `depth` levels down
 * (pino's `*` matches exactly one level, so nesting has to be spelled out).
 */
export function secretRedactPaths(depth = 3): string[] {
  const paths: string[] = [];
  for (let d = 0; d <= depth; d++) {
    const prefix = '*.'.repeat(d);
    for (const name of SECRET_FIELD_NAMES) paths.push(`${prefix}${name}`);
  }
  return paths;
}

/** The textual forms a secret could take in a log line. */
export function secretEncodings(secret: Uint8Array): string[] {
  const b = Buffer.from(secret.buffer, secret.byteOffset, secret.byteLength);
  const hex = b.toString('hex');
  return [
    hex,
    hex.toUpperCase(),
    b.toString('base64'),
    b.toString('base64url'),
    // A Node Buffer printed by util.inspect: "<Buffer 0a 1b ...>" (first 50 bytes shown).
    Array.from(b.subarray(0, 16), (x) => x.toString(16).padStart(2, '0')).join(' '),
    // A Uint8Array serialised by JSON.stringify: {"0":10,"1":27,...} or [10,27,...].
    Array.from(b.subarray(0, 16)).join(','),
  ].filter((s) => s.length >= 16);
}

export interface SecretLeak {
  secretName: string;
  encoding: string;
  line: number;
}

/**
 * Finds any form of any secret in `text`. Also matches an 8-byte window of each secret in
 * hex, so a key that was sliced or truncated before logging is still found.
 */
export function findSecrets(text: string, secrets: Record<string, Uint8Array>): SecretLeak[] {
  const leaks: SecretLeak[] = [];
  const lower = text.toLowerCase();
  const lineOf = (index: number): number => text.slice(0, index).split('\n').length;
  for (const [secretName, secret] of Object.entries(secrets)) {
    if (secret.length < 8) throw new RangeError(`secret ${secretName} is too short to search for`);
    const needles = new Set(secretEncodings(secret));
    const hex = Buffer.from(secret).toString('hex');
    for (let i = 0; i + 16 <= hex.length; i += 16) needles.add(hex.slice(i, i + 16));
    for (const needle of needles) {
      const at = /^[0-9a-f]+$/i.test(needle) ? lower.indexOf(needle.toLowerCase()) : text.indexOf(needle);
      if (at >= 0) leaks.push({ secretName, encoding: needle.slice(0, 12), line: lineOf(at) });
    }
  }
  return leaks;
}
