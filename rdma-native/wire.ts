// Wire formats of the RDMA transport.
//
// Two-sided messages (fi_send) start with [type u8][dst conn id u32]: the id is the one
// the receiver assigned, and the receiver also checks the fabric source address, so a
// peer can only address its own connections. HELLO/ACCEPT set a connection up (the
// fabric is connectionless: FI_EP_RDM), DATA carries a chunk of the framed byte stream
// on the `msg` data path, CREDIT returns receive capacity, PING keeps an idle
// connection alive, BYE ends it.
//
// On the `rma` data path a chunk is one fi_writedata into the receiver's ring for this
// peer; the 64-bit remote CQ data names it: [ring token u40][length u24]. The token is a
// random secret the ring's owner handed out with the ring: tcp;ofi_rxm (1.17) does not
// report a reliable source address for remote-write completions when several peers
// are connected, so the token, not the source, says whose ring was written. The offset
// is not announced: both sides derive it from the ring position (placeChunk).
// A chunk is [credit u32][sequence u32][stream bytes]; both paths carry the stream of
// [u32 length][payload] frames that node/transport/frame.ts decodes.
import { decodeWith, type Reader, type Result, Writer } from '../ledger/codec/binary.js';

export const MSG_HELLO = 1;
export const MSG_ACCEPT = 2;
export const MSG_DATA = 3;
export const MSG_CREDIT = 4;
export const MSG_BYE = 5;
export const MSG_PING = 6;
export const MSG_REJECT = 7;

export const PROTOCOL_VERSION = 1;
export const HEADER_BYTES = 5;
/**
 * DATA: header + credit u32 + chunk sequence u32. Providers match sends to posted
 * receives in order but may complete them out of order (tcp;ofi_rxm completes a large
 * rendezvous message after a small eager one sent behind it), so the receiver puts
 * chunks back in sequence.
 */
export const DATA_HEADER_BYTES = HEADER_BYTES + 8;
/** RMA chunk: credit u32 and chunk sequence u32 before the stream bytes. */
export const RMA_CHUNK_HEADER_BYTES = 8;
export const RMA_ALIGN_BYTES = 8;
export const RMA_CONN_ID_MAX = 0xffff;
export const RMA_CHUNK_BYTES_MAX = 0xffffff;
export const RMA_RING_BYTES_MAX = 0xffffff * RMA_ALIGN_BYTES;
const NAME_BYTES_MAX = 1024;
const CONTROL_BYTES_MAX = 2048;

export type DataPath = 'rma' | 'msg';

export interface RingGrant {
  addr: bigint;
  key: bigint;
  /** Names the ring in remote CQ data (RMA_TOKEN_BITS random bits; 0 on the msg path). */
  token: bigint;
  bytes: number;
}

export const RMA_TOKEN_BITS = 40n;
export const RMA_TOKEN_MASK = (1n << RMA_TOKEN_BITS) - 1n;

export interface Hello {
  connId: number;
  dataPath: DataPath;
  /** Chunks the sender of HELLO lets us have in flight (msg path). */
  msgCredits: number;
  /** Our ring on the HELLO sender's side (rma path; bytes 0 on msg path). */
  ring: RingGrant;
  /** The HELLO sender's fabric address, to insert into our AV. */
  name: Uint8Array;
}

export interface Accept {
  clientConnId: number;
  serverConnId: number;
  msgCredits: number;
  ring: RingGrant;
}

export function encodeHello(h: Hello): Buffer {
  const w = new Writer(64 + h.name.length)
    .u8(MSG_HELLO)
    .u32(0)
    .u8(PROTOCOL_VERSION)
    .u32(h.connId)
    .u8(h.dataPath === 'rma' ? 1 : 0)
    .u32(h.msgCredits);
  writeRingGrant(w, h.ring).bytes(h.name);
  return Buffer.from(w.finish());
}

export function decodeHello(b: Uint8Array): Result<Hello> {
  return decodeWith(b, CONTROL_BYTES_MAX, (r) => {
    r.u8('type');
    r.u32('dst');
    const version = r.u8('version');
    if (version !== PROTOCOL_VERSION) throw new RangeError(`protocol version ${version}`);
    const connId = r.u32('connId');
    const path = r.u8('dataPath');
    if (path > 1) throw new RangeError(`data path ${path}`);
    const msgCredits = r.u32('msgCredits');
    const ring = readRingGrant(r);
    const name = r.bytes(NAME_BYTES_MAX, 'name');
    return { connId, dataPath: path === 1 ? 'rma' : 'msg', msgCredits, ring, name } as const;
  });
}

/** A ring token wider than RMA_TOKEN_BITS is refused, not masked: two encodings must never mean one value. */
function readRingGrant(r: Reader): RingGrant {
  const addr = r.u64('ring.addr');
  const key = r.u64('ring.key');
  const token = r.u64('ring.token');
  if (token > RMA_TOKEN_MASK) throw new RangeError(`ring.token exceeds ${RMA_TOKEN_BITS} bits`);
  return { addr, key, token, bytes: r.u32('ring.bytes') };
}

function writeRingGrant(w: Writer, g: RingGrant): Writer {
  return w.u64(g.addr).u64(g.key).u64(g.token).u32(g.bytes);
}

export function encodeAccept(a: Accept): Buffer {
  const w = new Writer(48).u8(MSG_ACCEPT).u32(a.clientConnId).u32(a.serverConnId).u32(a.msgCredits);
  writeRingGrant(w, a.ring);
  return Buffer.from(w.finish());
}

export function decodeAccept(b: Uint8Array): Result<Accept> {
  return decodeWith(b, CONTROL_BYTES_MAX, (r) => {
    r.u8('type');
    const clientConnId = r.u32('clientConnId');
    const serverConnId = r.u32('serverConnId');
    const msgCredits = r.u32('msgCredits');
    const ring = readRingGrant(r);
    return { clientConnId, serverConnId, msgCredits, ring };
  });
}

/** A header-only message (BYE, PING, REJECT) or CREDIT (with its u32 amount). */
export function encodeControl(type: number, dst: number, credit?: number): Buffer {
  const b = Buffer.allocUnsafe(credit === undefined ? HEADER_BYTES : HEADER_BYTES + 4);
  b[0] = type;
  b.writeUInt32BE(dst, 1);
  if (credit !== undefined) b.writeUInt32BE(credit, HEADER_BYTES);
  return b;
}

/** Remote CQ data of an RMA chunk: the ring's token and the chunk's length. */
export function encodeCqData(token: bigint, length: number): bigint {
  return ((token & RMA_TOKEN_MASK) << 24n) | BigInt(length & RMA_CHUNK_BYTES_MAX);
}

export function decodeCqData(cq: bigint): { token: bigint; length: number } {
  return { token: (cq >> 24n) & RMA_TOKEN_MASK, length: Number(cq & 0xffffffn) };
}

export const alignUp = (n: number): number => Math.ceil(n / RMA_ALIGN_BYTES) * RMA_ALIGN_BYTES;

/**
 * Where the next chunk of `length` bytes goes in a ring of `ringBytes` whose write
 * position is `pos`, and how many ring bytes it uses (including the skipped tail when
 * the chunk does not fit before the end: chunks never wrap). Shared by the writer and
 * by the reader, which refuses any other offset.
 */
export function placeChunk(
  pos: number,
  length: number,
  ringBytes: number,
): { offset: number; usedBytes: number } {
  const aligned = alignUp(length);
  if (pos + aligned <= ringBytes) return { offset: pos, usedBytes: aligned };
  return { offset: 0, usedBytes: ringBytes - pos + aligned };
}

/**
 * Endpoint strings: `rdma+<provider>://host:port` (socket providers, and shm endpoints named
 * after a host:port, see shmNodeName) or `rdma+<provider>://<base64url name>`.
 */
export function formatEndpoint(provider: string, name: Buffer): string {
  const sock = sockaddrIn(name) ?? shmSocketOf(name);
  return `rdma+${provider}://${sock ?? name.toString('base64url')}`;
}

// ---- shm endpoint names ----
//
// The shm provider names an endpoint after the `node` it is given (plus ":<domain>:<ep>"
// or, in later libfabric releases, ":<uid>:<domain>:<ep>") and keeps its receive queues
// in /dev/shm/<that name>. Genesis and `hybster testnet` write every validator's endpoint
// as `rdma+shm://host:port`, so a socket-style shm endpoint stands for the node name
// shmNodeName(host, port): unique per validator on a host (ports are), and the same after
// a restart, so peers reconnect to the name they knew.
//
// Peers dial the genesis form directly instead of waiting for libp2p discovery to tell
// them the exact fabric name: shm only ever reaches processes on the same host, whose
// /dev/shm the dialer can read, so the dialer finds the region named after the node and
// takes its suffix from there (the transport's resolveShmTarget). That also works where
// the suffix is not ":0:0" (the second shm endpoint of a process, a newer libfabric) and
// refuses at once a peer that is not running, instead of waiting for a HELLO timeout.

/** The prefix the shm provider puts before endpoint names (fi_getname, AV insert). */
export const SHM_NAME_PREFIX = 'fi_shm://';
const SHM_NODE_PREFIX = 'hyb-ep-';
/** Region names of one node: the node, then two or three numbers (see above). */
const SHM_SUFFIX_RE = /^(?::\d+){2,3}$/;

/** The shm node name a socket-style endpoint `rdma+shm://host:port` stands for. */
export function shmNodeName(host: string, port: number): string {
  return `${SHM_NODE_PREFIX}${host}-${port}`;
}

/** Whether `region` (a /dev/shm entry) is the region of shm node `node`. */
export function isShmRegionOf(region: string, node: string): boolean {
  return region.startsWith(node) && SHM_SUFFIX_RE.test(region.slice(node.length));
}

/** The fabric name of the region file `region`, byte for byte as fi_getname reports it. */
export function shmFabricName(region: string): Buffer {
  return Buffer.from(`${SHM_NAME_PREFIX}${region}\0`);
}

/** The /dev/shm region a fabric name stands for (prefix and NUL stripped); undefined if none. */
export function shmRegionOf(name: Buffer): string | undefined {
  const nul = name.indexOf(0);
  let s = name.subarray(0, nul < 0 ? undefined : nul).toString();
  if (s.startsWith(SHM_NAME_PREFIX)) s = s.slice(SHM_NAME_PREFIX.length);
  // A region is a file name in /dev/shm: nothing that could reach another directory.
  return s.length > 0 && s.length <= 255 && !s.includes('/') && s !== '.' && s !== '..' ? s : undefined;
}

/** "host:port" for the fabric name of a node named by shmNodeName, else undefined. */
function shmSocketOf(name: Buffer): string | undefined {
  const region = shmRegionOf(name);
  const m = region && /^hyb-ep-(\d{1,3}(?:\.\d{1,3}){3})-(\d{1,5})((?::\d+){2,3})$/.exec(region);
  if (!m) return undefined;
  const hp = parseHostPort(`${m[1]}:${m[2]}`);
  return hp && hp.port > 0 ? `${hp.host}:${hp.port}` : undefined;
}

function parseHostPort(s: string): { host: string; port: number; octets: number[] } | undefined {
  const hp = /^(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})$/.exec(s);
  if (!hp) return undefined;
  const port = Number(hp[2]);
  const octets = hp[1]!.split('.').map(Number);
  if (port > 65535 || octets.some((o) => o > 255)) return undefined;
  return { host: octets.join('.'), port, octets };
}

export interface ParsedEndpoint {
  provider: string;
  /**
   * The fabric address to insert into the AV. For an shm endpoint in host:port form this is
   * the name a validator's only endpoint gets (suffix ":0:0"); the transport looks up the
   * real one in /dev/shm (see shmNode).
   */
  name: Buffer;
  /** shm, host:port form: the node name (shmNodeName) whose region the dialer looks up. */
  shmNode?: string;
}

export function parseEndpoint(endpoint: string): ParsedEndpoint | undefined {
  const m = /^rdma\+([a-z0-9_;]+):\/\/(.*)$/.exec(endpoint);
  if (!m) return undefined;
  const provider = m[1]!;
  const rest = m[2]!;
  const hostPort = /^[\d.]+:\d+$/.test(rest);
  const hp = hostPort ? parseHostPort(rest) : undefined;
  if (hostPort && !hp) return undefined;
  if (hp && provider === 'shm') {
    // Port 0 names no endpoint: an shm listener on port 0 gets a process-unique name.
    if (hp.port === 0) return undefined;
    const node = shmNodeName(hp.host, hp.port);
    return { provider, name: shmFabricName(`${node}:0:0`), shmNode: node };
  }
  if (hp) {
    const { port, octets } = hp;
    const b = Buffer.alloc(16);
    b.writeUInt16LE(2, 0); // AF_INET, host order (little-endian here)
    b.writeUInt16BE(port, 2);
    octets.forEach((o, i) => {
      b[4 + i] = o;
    });
    return { provider, name: b };
  }
  if (!/^[A-Za-z0-9_-]+$/.test(rest)) return undefined;
  const name = Buffer.from(rest, 'base64url');
  return name.length > 0 && name.length <= NAME_BYTES_MAX ? { provider, name } : undefined;
}

function sockaddrIn(name: Buffer): string | undefined {
  if (name.length !== 16 || name.readUInt16LE(0) !== 2) return undefined;
  return `${name[4]}.${name[5]}.${name[6]}.${name[7]}:${name.readUInt16BE(2)}`;
}

/**
 * Parses a listen endpoint: `rdma+<provider>://` (any address), `rdma+<provider>://host:port`,
 * or an endpoint string `listen()` returned before (to listen again at the same address
 * after a restart; for shm, the name of the shared-memory region).
 */
export function parseListenEndpoint(
  endpoint: string,
): { provider: string; host?: string; port?: number } | undefined {
  const bare = /^rdma\+([a-z0-9_;]+):\/\/$/.exec(endpoint);
  if (bare) return { provider: bare[1]! };
  // Port 0 (any free port; for shm a process-unique name): parseEndpoint refuses it for shm.
  const zero = /^rdma\+([a-z0-9_;]+):\/\/(\d{1,3}(?:\.\d{1,3}){3}):0$/.exec(endpoint);
  const zeroHost = zero ? parseHostPort(`${zero[2]}:0`) : undefined;
  if (zero && zeroHost) return { provider: zero[1]!, host: zeroHost.host, port: 0 };
  const parsed = parseEndpoint(endpoint);
  if (!parsed) return undefined;
  const sock = sockaddrIn(parsed.name) ?? shmSocketOf(parsed.name);
  if (sock) {
    const [host, port] = sock.split(':');
    return { provider: parsed.provider, host: host!, port: Number(port) };
  }
  // A named address (shm): the provider appends ":<domain>:<endpoint>" to the node it is
  // given, so binding the name without that suffix gets the same name again.
  const nul = parsed.name.indexOf(0);
  const name = parsed.name.subarray(0, nul < 0 ? undefined : nul).toString();
  const base = /^(.*?)(?::\d+:\d+)$/.exec(name);
  return { provider: parsed.provider, host: base ? base[1]! : name };
}
