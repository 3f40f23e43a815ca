// An account address is the 32-byte Ed25519 public key itself: a client in any language
// can compute it without a hashing convention, and a signature check needs no lookup.
// In JSON it is 64 lowercase hex characters.
import { fromHex, toHex } from './codec/binary.js';
import { PUBLIC_KEY_BYTES } from './keys.js';

export type Address = Uint8Array;
export const ADDRESS_BYTES = PUBLIC_KEY_BYTES;
const ADDRESS_HEX = /^[0-9a-fA-F]{64}$/;

export const addressToHex = (a: Address): string => toHex(a);

/** Parses a 64-hex-char address; null when malformed. */
export function addressFromHex(s: string): Address | null {
  if (typeof s !== 'string' || !ADDRESS_HEX.test(s)) return null;
  return fromHex(s);
}

export const isAddressHex = (s: unknown): s is string => typeof s === 'string' && ADDRESS_HEX.test(s);
