import assert from 'node:assert/strict';
import {
  type GenesisJson,
  genesisHash,
  parseGenesis,
  parseGenesisText,
  peerIdFor,
} from '../../genesis/genesis.js';
import { toHex } from '../../ledger/codec/binary.js';
import { keyPairFromSeed } from '../../ledger/keys.js';

const keys = [1, 2, 3].map((i) => keyPairFromSeed(new Uint8Array(32).fill(i)));

function valid(): GenesisJson {
  return {
    chainId: 'test-net',
    genesisTime: '2026-01-01T00:00:00.000Z',
    validators: keys.map((k, i) => ({
      name: `v${i}`,
      publicKey: toHex(k.publicKey),
      peerId: peerIdFor(k.publicKey)!,
      endpoints: { tcp: `127.0.0.1:${9000 + i}`, libp2p: [`/ip4/127.0.0.1/tcp/${8000 + i}`] },
    })),
    consensus: {
      f: 1,
      pillars: 2,
      batchTxsMax: 1000,
      batchBytesMax: 1 << 20,
      checkpointInterval: 100,
      window: 200,
      requestTimeoutMs: 2000,
      viewChangeTimeoutMs: 2000,
    },
    accounts: [
      { address: toHex(keys[0]!.publicKey), balance: '1000' },
      { address: toHex(keys[1]!.publicKey), balance: '5' },
    ],
  };
}

/** The messages of a genesis that must fail, each "field: why". */
function issues(g: unknown): string[] {
  const r = parseGenesis(g);
  assert.equal(r.ok, false, 'expected the genesis to be refused');
  return r.ok ? [] : r.error.issues.map((i) => `${i.field}: ${i.message}`);
}

const mutate = (f: (g: GenesisJson) => void): GenesisJson => {
  const g = structuredClone(valid());
  f(g);
  return g;
};

describe('genesis/genesis', () => {
  it('accepts a valid genesis and derives times, keys and balances', () => {
    const r = parseGenesis(valid());
    assert.ok(r.ok);
    assert.equal(r.value.genesisTimeMs, BigInt(Date.parse('2026-01-01T00:00:00.000Z')));
    assert.deepEqual(r.value.validators[2]!.publicKey, keys[2]!.publicKey);
    assert.equal(r.value.accounts[0]!.balance, 1000n);
    assert.equal(r.value.consensus.timestampDriftMsMax, 30_000, 'default applied');
  });

  it('names the field and the reason for each error', () => {
    assert.deepEqual(
      issues(
        mutate((g) => {
          g.validators[1]!.publicKey = 'abc';
        }),
      ).filter((m) => m.startsWith('validators[1].publicKey')),
      ['validators[1].publicKey: must be 64 hex chars'],
    );
    assert.ok(
      issues(
        mutate((g) => {
          g.validators.pop();
        }),
      ).includes('validators: has 2 entries but consensus.f = 1 needs n = 2f + 1 = 3'),
    );
    const wrongPeer = issues(
      mutate((g) => {
        g.validators[0]!.peerId = peerIdFor(keys[1]!.publicKey)!;
      }),
    );
    assert.ok(wrongPeer.some((m) => m.startsWith('validators[0].peerId: does not match publicKey')));
    assert.ok(
      issues(
        mutate((g) => {
          g.accounts![1]!.address = g.accounts![0]!.address;
        }),
      ).includes('accounts[1].address: duplicates accounts[0].address'),
    );
    assert.ok(
      issues(
        mutate((g) => {
          g.accounts![0]!.balance = '18446744073709551615';
        }),
      ).includes('accounts: total balance exceeds u64 (2^64 - 1)'),
    );
    assert.ok(
      issues(
        mutate((g) => {
          g.accounts![0]!.balance = '-1';
        }),
      ).includes('accounts[0].balance: must be a decimal integer string'),
    );
    assert.ok(
      issues(
        mutate((g) => {
          g.genesisTime = 'yesterday';
        }),
      ).some((m) => m.startsWith('genesisTime: must be an RFC 3339')),
    );
    assert.ok(
      issues(
        mutate((g) => {
          g.validators[2]!.endpoints.tcp = g.validators[0]!.endpoints.tcp;
        }),
      ).includes('validators[2].endpoints.tcp: duplicates validators[0].endpoints.tcp'),
    );
    assert.ok(
      issues(
        mutate((g) => {
          g.consensus.window = 10;
        }),
      ).some((m) => m.startsWith('consensus.window: must be >= checkpointInterval')),
    );
    assert.ok(issues({ ...valid(), extra: 1 }).some((m) => m.includes('extra')));
    assert.ok(
      issues(mutate((g) => Reflect.deleteProperty(g, 'chainId'))).some((m) => m.startsWith('chainId:')),
    );
    const text = parseGenesisText('{ not json');
    assert.ok(!text.ok && text.error.message.startsWith('(root): not JSON'));
  });

  it('hashes deterministically, independent of JSON key order, account order and endpoints', () => {
    const g = parseGenesis(valid());
    assert.ok(g.ok);
    const h = genesisHash(g.value);
    const reverseKeys = (v: unknown): unknown =>
      Array.isArray(v)
        ? v.map(reverseKeys)
        : v !== null && typeof v === 'object'
          ? Object.fromEntries(
              Object.entries(v)
                .reverse()
                .map(([k, x]) => [k, reverseKeys(x)]),
            )
          : v;
    const reordered = reverseKeys(valid());
    assert.notEqual(JSON.stringify(reordered), JSON.stringify(valid()));
    const r2 = parseGenesis(reordered);
    assert.ok(r2.ok);
    assert.deepEqual(genesisHash(r2.value), h);
    const swapped = parseGenesis(mutate((x) => x.accounts!.reverse()));
    assert.ok(swapped.ok);
    assert.deepEqual(genesisHash(swapped.value), h);
    const moved = parseGenesis(
      mutate((x) => {
        x.validators[0]!.endpoints.tcp = '10.0.0.1:9000';
      }),
    );
    assert.ok(moved.ok);
    assert.deepEqual(genesisHash(moved.value), h);
    for (const change of [
      (x: GenesisJson) => {
        x.chainId = 'other';
      },
      (x: GenesisJson) => {
        x.accounts![0]!.balance = '1001';
      },
      (x: GenesisJson) => {
        x.consensus.pillars = 3;
      },
      (x: GenesisJson) => {
        x.validators.reverse();
      },
    ]) {
      const r = parseGenesis(mutate(change));
      assert.ok(r.ok);
      assert.notDeepEqual(genesisHash(r.value), h);
    }
  });
});
