// A minimal HTTP/1.1 client for load generation: keep-alive sockets, one request in flight
// per socket, responses framed by Content-Length. The benchmark's load generator shares the
// machine's cores with the validators it measures; node:http spent about 330 us of CPU per
// request here, most of it in its own machinery, and every microsecond it spends is taken
// from the validators. The server still sees ordinary HTTP/1.1 requests over TCP.
import net from 'node:net';

export interface HttpResponse {
  status: number;
  body: string;
}

export class HttpLoadError extends Error {
  override readonly name = 'HttpLoadError';
}

interface Pending {
  resolve: (r: HttpResponse) => void;
  reject: (e: Error) => void;
}

const HEADER_END = Buffer.from('\r\n\r\n');
/** Largest response this client buffers (the API's answers are a few hundred bytes). */
const RESPONSE_BYTES_MAX = 1 << 20;

/** One keep-alive connection; requests wait for the one in flight. */
class Connection {
  private readonly socket: net.Socket;
  private buf: Buffer = Buffer.alloc(0);
  private current: Pending | null = null;
  closed = false;

  constructor(host: string, port: number, onClose: () => void) {
    this.socket = net.connect({ host, port, noDelay: true });
    this.socket.on('data', (d: Buffer) => this.onData(d));
    const fail = (e?: Error): void => {
      if (this.closed) return;
      this.closed = true;
      this.current?.reject(e ?? new HttpLoadError('connection closed'));
      this.current = null;
      onClose();
    };
    this.socket.on('error', fail);
    this.socket.on('close', () => fail());
  }

  request(head: string, body: string, p: Pending): void {
    this.current = p;
    this.socket.write(head + body);
  }

  private onData(d: Buffer): void {
    this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d]);
    if (this.buf.length > RESPONSE_BYTES_MAX) {
      this.socket.destroy(new HttpLoadError('response too large'));
      return;
    }
    const end = this.buf.indexOf(HEADER_END);
    if (end < 0) return;
    const head = this.buf.subarray(0, end).toString('latin1');
    const m = /^HTTP\/1\.1 (\d{3})/.exec(head);
    const len = /\r\ncontent-length:\s*(\d+)/i.exec(head);
    if (!m || !len) {
      this.socket.destroy(new HttpLoadError(`unframed response: ${head.split('\r\n')[0]}`));
      return;
    }
    const total = end + 4 + Number(len[1]);
    if (this.buf.length < total) return;
    const body = this.buf.subarray(end + 4, total).toString('utf8');
    this.buf = this.buf.subarray(total);
    const p = this.current;
    this.current = null;
    p?.resolve({ status: Number(m[1]), body });
  }

  close(): void {
    this.closed = true;
    this.socket.destroy();
  }
}

/** Keep-alive connections to one origin (http://host:port), up to `connectionsMax`. */
export class HttpLoadClient {
  private readonly host: string;
  private readonly port: number;
  private readonly idle: Connection[] = [];
  private readonly waiting: (() => void)[] = [];
  private open = 0;

  constructor(
    origin: string,
    private readonly connectionsMax = 64,
  ) {
    const u = new URL(origin);
    if (u.protocol !== 'http:') throw new HttpLoadError(`only http:// origins: ${origin}`);
    this.host = u.hostname;
    this.port = Number(u.port || 80);
  }

  private async connection(): Promise<Connection> {
    for (;;) {
      const c = this.idle.pop();
      if (c && !c.closed) return c;
      if (c) continue;
      if (this.open < this.connectionsMax) {
        this.open++;
        return new Connection(this.host, this.port, () => {
          this.open--;
          this.waiting.shift()?.();
        });
      }
      await new Promise<void>((r) => this.waiting.push(r));
    }
  }

  private release(c: Connection): void {
    if (c.closed) return;
    this.idle.push(c);
    this.waiting.shift()?.();
  }

  async postJson(path: string, json: string): Promise<HttpResponse> {
    const c = await this.connection();
    const head =
      `POST ${path} HTTP/1.1\r\nHost: ${this.host}:${this.port}\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(json)}\r\nConnection: keep-alive\r\n\r\n`;
    try {
      return await new Promise<HttpResponse>((resolve, reject) => c.request(head, json, { resolve, reject }));
    } finally {
      this.release(c);
    }
  }

  close(): void {
    for (const c of this.idle) c.close();
    this.idle.length = 0;
  }
}
