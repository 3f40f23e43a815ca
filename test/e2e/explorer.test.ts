// The explorer page in a real browser (Debian's headless Chromium driven by
// playwright-core; never a downloaded browser) against a real 3-validator network
// (separate processes over TCP, from test/helpers/testnet.ts): the page lists blocks,
// the live list grows as blocks commit, and search finds a submitted tx. The final
// screenshot is kept under test-artifacts/ at the repo root.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, chromium } from 'playwright-core';
import { ApiClient } from '../../api/client.js';
import { repoRoot } from '../../api/static.js';
import { toHex } from '../../ledger/codec/binary.js';
import { encodeTx, signTx, txHash } from '../../ledger/tx.js';
import { loadAccounts } from '../helpers/client.js';
import { CLI_PATH, startTestnet, type Testnet } from '../helpers/testnet.js';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

describe('explorer page (browser, 3-validator network)', function () {
  this.timeout(120_000);
  let net: Testnet | undefined;
  let browser: Browser | undefined;

  before(function () {
    for (const [what, path] of [
      ['Chromium', CHROMIUM],
      ['the validator CLI', CLI_PATH],
    ] as const) {
      if (existsSync(path)) continue;
      if (process.env.CI) throw new Error(`${what} missing at ${path}: the browser test cannot run`);
      console.log(`    (skipped: ${what} missing at ${path}; set CI to make this a failure)`);
      this.skip();
    }
  });

  after(async () => {
    await browser?.close();
    await net?.stop();
  });

  it('shows blocks, grows the live list, and finds a submitted tx by search', async () => {
    net = await startTestnet({ validators: 3, transport: 'tcp' });
    const url = net.apiUrls[0]!;
    const api = new ApiClient(url);
    const { chainId } = await api.status();
    const [alice, bob] = loadAccounts(net.dir);
    assert.ok(alice && bob, 'testnet has funded accounts');
    const send = async (amount: bigint) => {
      const nonce = alice.nonce++;
      const tx = encodeTx(
        signTx(
          { chainId, from: alice.address, nonce, payload: { type: 'transfer', to: bob.address, amount } },
          alice.secretKey,
        ),
      );
      const r = await api.submitTx(tx, { mode: 'commit', timeoutMs: 15_000 });
      assert.equal(r.status, 'committed', `tx ${nonce} committed`);
      return { hash: toHex(txHash(tx)), height: r.location!.height };
    };
    const first = await send(1n);

    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(`${url}/`);
    await page.waitForSelector(`#latest-blocks tr[data-height="${first.height}"]`, { timeout: 20_000 });
    const topBefore = Number(await page.locator('#latest-blocks tr').first().getAttribute('data-height'));
    assert.ok(topBefore >= first.height);
    assert.equal(await page.locator('#chain-id').textContent(), chainId);

    // Live: new blocks appear at the top without a reload.
    const later = await send(2n);
    await page.waitForSelector(`#latest-blocks tr[data-height="${later.height}"]`, { timeout: 20_000 });
    const topAfter = Number(await page.locator('#latest-blocks tr').first().getAttribute('data-height'));
    assert.ok(topAfter > topBefore, `live list grew from ${topBefore} to ${topAfter}`);
    // The status panel follows (a string: this file is compiled without DOM types).
    await page.waitForFunction(
      `Number(document.querySelector('[data-testid=stat-height] .v')?.textContent) >= ${topAfter}`,
      undefined,
      { timeout: 10_000 },
    );

    // Network status: the leader is named and all three validators are listed.
    assert.equal(await page.locator('#validators tr').count(), 3);
    assert.match((await page.locator('[data-testid=stat-validators] .v').textContent()) ?? '', /^\d\/3$/);
    assert.ok(((await page.locator('[data-testid=stat-leader] .v').textContent()) ?? '').length > 0);

    // Search by tx hash lands on the tx page with its block.
    await page.fill('#search', first.hash);
    await page.press('#search', 'Enter');
    const detail = page.locator('[data-testid=tx-detail]');
    await detail.waitFor({ timeout: 10_000 });
    const text = (await detail.textContent()) ?? '';
    assert.ok(text.includes(first.hash), 'tx page shows the hash');
    assert.ok(text.includes('committed'), 'tx page shows committed');
    assert.ok(text.includes(toHex(bob.address)), 'tx page shows the recipient');

    // Search by height lands on the block page listing the tx.
    await page.fill('#search', String(first.height));
    await page.press('#search', 'Enter');
    await page.waitForSelector('#block-txs');
    assert.ok(((await page.locator('#block-txs').textContent()) ?? '').includes(first.hash.slice(0, 10)));

    await page.goto(`${url}/#/`);
    await page.waitForSelector(`#latest-blocks tr[data-height="${later.height}"]`);
    const dir = join(repoRoot(), 'test-artifacts');
    mkdirSync(dir, { recursive: true });
    const shot = join(dir, 'explorer-e2e.png');
    await page.screenshot({ path: shot, fullPage: true });
    console.log(`    screenshot: ${shot}`);
    assert.deepEqual(pageErrors, [], 'no script errors on the page');
  });
});
