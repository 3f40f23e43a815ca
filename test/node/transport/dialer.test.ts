import assert from 'node:assert/strict';
import {
  BACKOFF_DEFAULT,
  backoffDelayMs,
  type DialerEvent,
  ReconnectingDialer,
} from '../../../node/transport/dialer.js';
import { TcpTransport } from '../../../node/transport/tcp.js';

describe('reconnect backoff', () => {
  const options = { delayMsMin: 100, delayMsMax: 1_000, factor: 2 };

  it('grows exponentially from the minimum and stops at the maximum', () => {
    const ceiling = (attempt: number) => backoffDelayMs(attempt, options, () => 1);
    assert.deepEqual(
      [0, 1, 2, 3, 4, 5, 50, 10_000].map(ceiling),
      [100, 200, 400, 800, 1000, 1000, 1000, 1000],
    );
  });

  it('keeps jittered delays between half the ceiling and the ceiling', () => {
    assert.equal(
      backoffDelayMs(2, options, () => 0),
      200,
    );
    assert.equal(
      backoffDelayMs(2, options, () => 0.5),
      300,
    );
    for (let i = 0; i < 1_000; i++) {
      const d = backoffDelayMs(i % 8, BACKOFF_DEFAULT, Math.random);
      assert.ok(d >= BACKOFF_DEFAULT.delayMsMin / 2 && d <= BACKOFF_DEFAULT.delayMsMax, `${d}`);
    }
  });
});

describe('ReconnectingDialer', () => {
  it('retries a dead endpoint with the injected jitter and gives up after attemptsMax', async () => {
    const probe = new TcpTransport();
    const endpoint = await probe.listen('tcp://127.0.0.1:0');
    await probe.close(); // nothing listens there now
    const transport = new TcpTransport();
    const dialer = new ReconnectingDialer(transport, endpoint, () => {}, {
      backoff: { delayMsMin: 10, delayMsMax: 40, factor: 2 },
      random: () => 0,
      attemptsMax: 4,
    });
    const events: DialerEvent[] = [];
    const gaveUp = new Promise<void>((resolve) =>
      dialer.onEvent((e) => {
        events.push(e);
        if (e.type === 'gave-up') resolve();
      }),
    );
    dialer.start();
    await gaveUp;
    const delays = events.flatMap((e) => (e.type === 'failed' ? [e.retryInMs] : []));
    assert.deepEqual(delays, [5, 10, 20]);
    assert.deepEqual(events.at(-1), { type: 'gave-up', attempts: 4 });
    await dialer.close();
    await transport.close();
  });

  it('closes a connection whose setup fails and tries again', async () => {
    const server = new TcpTransport();
    let accepted = 0;
    server.onConnection(() => {
      accepted += 1;
    });
    const endpoint = await server.listen('tcp://127.0.0.1:0');
    const client = new TcpTransport();
    let setups = 0;
    const dialer = new ReconnectingDialer(
      client,
      endpoint,
      () => {
        setups += 1;
        if (setups < 3) throw new Error('handshake refused');
      },
      { backoff: { delayMsMin: 5, delayMsMax: 5, factor: 1 } },
    );
    const connected = new Promise<void>((resolve) =>
      dialer.onEvent((e) => {
        if (e.type === 'connected') resolve();
      }),
    );
    dialer.start();
    await connected;
    assert.equal(setups, 3);
    assert.equal(accepted, 3);
    assert.ok(dialer.connection);
    await dialer.close();
    assert.equal(client.connectionCount, 0, 'failed and final connections are all closed');
    await Promise.all([client.close(), server.close()]);
  });
});
