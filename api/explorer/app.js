// The block explorer: a plain ES module, no framework. Hash routes (#/block/12,
// #/tx/<hash>, #/account/<address>), live updates over Server-Sent Events from
// /v1/stream/blocks, data from the node's own REST API. Everything from the chain is
// inserted as text (never as HTML).

const $ = (sel) => document.querySelector(sel);
const view = $('#view');
const HEX64 = /^(0x)?[0-9a-fA-F]{64}$/;
const LATEST_ROWS = 20;

/** h('a', { href: '#/' }, 'text', child) -> element. Strings become text nodes. */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

async function api(path) {
  const res = await fetch(path, { headers: { accept: 'application/json' } });
  const body = await res.json().catch(() => null);
  if (!res.ok) {
    const err = new Error(body?.error?.message ?? `HTTP ${res.status}`);
    err.status = res.status;
    err.code = body?.error?.code;
    throw err;
  }
  return body;
}

const short = (hex, n = 10) =>
  hex && hex.length > 2 * n ? `${hex.slice(0, n)}…${hex.slice(-6)}` : (hex ?? '');
const ago = (ms) => {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  return `${Math.floor(s / 3600)}h ago`;
};
const blockLink = (height) => h('a', { href: `#/block/${height}` }, String(height));
const txLink = (hash, full = false) =>
  h('a', { href: `#/tx/${hash}`, class: 'hash' }, full ? hash : short(hash));
const acctLink = (addr, full = false) =>
  h('a', { href: `#/account/${addr}`, class: 'hash' }, full ? addr : short(addr));
const resultBadge = (r) =>
  r.ok ? h('span', { class: 'badge ok' }, 'ok') : h('span', { class: 'badge bad', title: r.message }, r.code);
const card = (title, sub, ...body) =>
  h(
    'section',
    { class: 'card' },
    h('h2', null, title, sub ? h('span', { class: 'sub' }, sub) : null),
    ...body,
  );
const dl = (rows) =>
  h(
    'dl',
    { class: 'kv' },
    rows.filter(Boolean).flatMap(([k, v]) => [h('dt', null, k), h('dd', null, v)]),
  );
const utf8 = new TextDecoder('utf-8', { fatal: true });
/** Hex bytes as quoted text when printable, else shortened hex. */
function bytesText(hex) {
  try {
    const bytes = new Uint8Array(hex.match(/../g)?.map((b) => Number.parseInt(b, 16)) ?? []);
    const t = utf8.decode(bytes);
    if (!/[\u0000-\u001f\u007f]/.test(t)) return `"${t}"`;
  } catch {}
  return short(hex, 16);
}
const notice = (text, err = false) => h('div', { class: err ? 'notice err' : 'notice' }, text);

function txSummary(tx) {
  if (!tx) return [h('span', { class: 'muted' }, 'undecodable')];
  const p = tx.payload;
  switch (p.type) {
    case 'transfer':
      return ['transfer ', h('b', null, p.amount), ' → ', acctLink(p.to)];
    case 'kv.put':
      return [
        'kv.put ',
        h('span', { class: 'mono' }, bytesText(p.key)),
        ' = ',
        h('span', { class: 'mono' }, bytesText(p.value)),
      ];
    case 'kv.delete':
      return ['kv.delete ', h('span', { class: 'mono' }, bytesText(p.key))];
    case 'kv.cas':
      return [
        'kv.cas ',
        h('span', { class: 'mono' }, bytesText(p.key)),
        ` @v${p.expectedVersion} = `,
        h('span', { class: 'mono' }, bytesText(p.value)),
      ];
    default:
      return [p.type];
  }
}

// ---- network status panel ------------------------------------------------------

let status = null;
function stat(k, v, sub, testid) {
  return h(
    'div',
    { class: 'stat', 'data-testid': testid },
    h('div', { class: 'k' }, k),
    h('div', { class: 'v' }, v),
    h('div', { class: 's' }, sub ?? ''),
  );
}

async function refreshStatus() {
  try {
    const [st, vals] = await Promise.all([api('/v1/status'), api('/v1/validators')]);
    status = st;
    $('#chain-id').textContent = st.chainId;
    const up = vals.validators.filter((v) => v.connected !== false).length;
    const lat = st.commitLatency;
    $('#status').replaceChildren(
      stat(
        'Height',
        blockLink(st.height),
        st.latestBlockTimeMs ? ago(st.latestBlockTimeMs) : '',
        'stat-height',
      ),
      stat('View', String(st.view), null, 'stat-view'),
      stat('Leader', st.leaderName ?? `#${st.leader}`, `#${st.leader}`, 'stat-leader'),
      stat('Validators', `${up}/${vals.validators.length}`, `f=${vals.f}`, 'stat-validators'),
      stat(
        'Commit latency',
        lat ? `${lat.p50Ms.toFixed(1)} ms` : '–',
        lat ? `p99 ${lat.p99Ms.toFixed(1)}` : '',
        'stat-latency',
      ),
      stat('Mempool', String(st.mempool.txs), 'txs', 'stat-mempool'),
      stat(
        'This node',
        st.selfName ?? `#${st.selfId}`,
        st.syncing ? 'syncing' : st.ready ? 'ready' : 'not ready',
      ),
    );
  } catch (e) {
    $('#status').replaceChildren(notice(`status unavailable: ${e.message}`, true));
  }
}

// ---- live stream ---------------------------------------------------------------

const blockListeners = new Set();
let source = null;
function connectStream() {
  source = new EventSource('/v1/stream/blocks');
  source.addEventListener('open', () => $('#live').classList.add('on'));
  source.addEventListener('error', () => $('#live').classList.remove('on'));
  source.addEventListener('block', (ev) => {
    const header = JSON.parse(ev.data);
    for (const l of blockListeners) l(header);
    scheduleStatus();
  });
}
let statusTimer = null;
function scheduleStatus() {
  // Coalesce: at most one status refresh per 500 ms however fast blocks come.
  if (statusTimer !== null) return;
  statusTimer = setTimeout(() => {
    statusTimer = null;
    void refreshStatus();
  }, 500);
}

// ---- views ---------------------------------------------------------------------

function blockRow(b, fresh) {
  return h(
    'tr',
    { 'data-height': b.height, class: fresh ? 'fresh' : undefined },
    h('td', null, blockLink(b.height)),
    h('td', null, h('a', { href: `#/block/${b.hash}`, class: 'hash' }, short(b.hash))),
    h('td', null, String(b.txCount)),
    h('td', null, `#${b.proposer}`),
    h('td', null, String(b.view)),
    h('td', { title: b.time, 'data-ts': b.timestampMs }, ago(b.timestampMs)),
  );
}

async function homeView() {
  const tbody = h('tbody', { id: 'latest-blocks' });
  const table = h(
    'table',
    null,
    h(
      'thead',
      null,
      h(
        'tr',
        null,
        ['Height', 'Hash', 'Txs', 'Proposer', 'View', 'Time'].map((t) => h('th', null, t)),
      ),
    ),
    tbody,
  );
  const validators = h('tbody', { id: 'validators' });
  view.replaceChildren(
    card('Latest blocks', 'live', table),
    card(
      'Validators',
      null,
      h(
        'table',
        null,
        h(
          'thead',
          null,
          h(
            'tr',
            null,
            ['#', 'Name', 'Public key', 'Role', 'Link'].map((t) => h('th', null, t)),
          ),
        ),
        validators,
      ),
    ),
  );
  void api('/v1/validators').then((vals) =>
    validators.replaceChildren(
      ...vals.validators.map((v) =>
        h(
          'tr',
          null,
          h('td', null, String(v.id)),
          h('td', null, v.name),
          h('td', { class: 'hash', title: v.publicKey }, short(v.publicKey)),
          h('td', null, v.id === vals.leader ? h('span', { class: 'badge ok' }, 'leader') : 'follower'),
          h(
            'td',
            null,
            v.connected === null
              ? h('span', { class: 'muted' }, 'this node')
              : v.connected
                ? h('span', { class: 'badge ok' }, 'connected')
                : h('span', { class: 'badge bad' }, 'down'),
          ),
        ),
      ),
    ),
  );
  const page = await api(`/v1/blocks?limit=${LATEST_ROWS}`);
  if (page.blocks.length === 0)
    tbody.append(h('tr', { class: 'empty' }, h('td', { colspan: 6 }, 'No blocks yet')));
  for (const b of page.blocks) tbody.append(blockRow(b, false));
  const onBlock = (b) => {
    if (tbody.querySelector(`tr[data-height="${b.height}"]`)) return;
    tbody.querySelector('tr.empty')?.remove();
    tbody.prepend(blockRow(b, true));
    while (tbody.children.length > LATEST_ROWS) tbody.lastElementChild.remove();
  };
  blockListeners.add(onBlock);
  const tick = setInterval(() => {
    for (const td of tbody.querySelectorAll('td[data-ts]')) td.textContent = ago(Number(td.dataset.ts));
  }, 1000);
  return () => {
    blockListeners.delete(onBlock);
    clearInterval(tick);
  };
}

function certView(title, c) {
  if (!c) return card(title, null, notice('not collected yet'));
  return card(
    title,
    null,
    dl([
      ['Height', blockLink(c.height)],
      ['Block hash', c.blockHash],
      [
        'Verified',
        c.verified
          ? h('span', { class: 'badge ok' }, 'f+1 valid signatures')
          : h('span', { class: 'badge bad' }, 'no'),
      ],
      ['Signers', c.signatures.map((s) => `#${s.validator}`).join(', ')],
    ]),
  );
}

async function blockView(id) {
  const b = HEX64.test(id) ? await api(`/v1/blocks/by-hash/${id}`) : await api(`/v1/blocks/${id}`);
  const hd = b.header;
  const nav = h(
    'span',
    { class: 'sub' },
    hd.height > 1 ? h('a', { href: `#/block/${hd.height - 1}` }, '← prev') : null,
    ' ',
    status && hd.height < status.height ? h('a', { href: `#/block/${hd.height + 1}` }, 'next →') : null,
  );
  const rows = b.txs.map((t) =>
    h(
      'tr',
      null,
      h('td', null, String(t.index)),
      h('td', null, txLink(t.hash)),
      h('td', null, t.tx ? acctLink(t.tx.from) : '–'),
      h('td', null, ...txSummary(t.tx)),
      h('td', null, resultBadge(t.result)),
    ),
  );
  view.replaceChildren(
    card(
      `Block ${hd.height}`,
      nav,
      dl([
        ['Hash', hd.hash],
        ['Previous', h('a', { href: `#/block/${hd.prevHash}`, class: 'hash' }, hd.prevHash)],
        ['Time', `${hd.time} (${ago(hd.timestampMs)})`],
        ['Proposer', `#${hd.proposer}`],
        ['View / order', `${hd.view} / ${hd.order}`],
        ['Tx root', hd.txRoot],
        ['Results hash', hd.resultsHash],
        ['State digest', hd.stateDigest],
        ['Transactions', String(hd.txCount)],
      ]),
    ),
    card(
      'Transactions',
      `${b.txs.length}`,
      rows.length === 0
        ? notice('empty block')
        : h(
            'table',
            null,
            h(
              'thead',
              null,
              h(
                'tr',
                null,
                ['#', 'Hash', 'From', 'What', 'Result'].map((t) => h('th', null, t)),
              ),
            ),
            h('tbody', { id: 'block-txs' }, rows),
          ),
    ),
    h(
      'div',
      { class: 'grid2' },
      certView('Commit certificate', b.commit),
      certView('Parent commit', b.parentCommit),
    ),
  );
}

async function txView(hash) {
  const t = await api(`/v1/txs/${hash}`);
  const badge =
    t.status === 'committed'
      ? resultBadge(t.result ?? { ok: true })
      : h('span', { class: t.status === 'pending' ? 'badge pending' : 'badge bad' }, t.status);
  if (t.status !== 'committed') {
    view.replaceChildren(
      card(
        'Transaction',
        null,
        dl([
          ['Hash', t.hash],
          ['Status', badge],
        ]),
      ),
    );
    if (t.status === 'pending') {
      // Re-render once it lands in a block.
      const onBlock = () => route();
      blockListeners.add(onBlock);
      return () => blockListeners.delete(onBlock);
    }
    return undefined;
  }
  const p = t.tx?.payload ?? {};
  view.replaceChildren(
    card(
      'Transaction',
      null,
      h(
        'div',
        { 'data-testid': 'tx-detail' },
        dl([
          ['Hash', t.hash],
          ['Status', h('span', null, h('span', { class: 'badge ok' }, 'committed'), ' ', badge)],
          t.result && !t.result.ok ? ['Failure', `${t.result.code}: ${t.result.message}`] : null,
          ['Block', h('span', null, blockLink(t.location.height), ` · index ${t.location.index}`)],
          ['Block hash', t.location.blockHash],
          ['From', t.tx ? acctLink(t.tx.from, true) : '–'],
          ['Nonce', t.tx?.nonce ?? '–'],
          ['Type', p.type ?? '–'],
          p.to ? ['To', acctLink(p.to, true)] : null,
          p.amount ? ['Amount', p.amount] : null,
          p.key ? ['Key', `${p.key}  ${bytesText(p.key)}`] : null,
          p.expectedVersion ? ['Expected version', p.expectedVersion] : null,
          p.value !== undefined ? ['Value', p.value ? `${p.value}  ${bytesText(p.value)}` : '(empty)'] : null,
          ['Chain', t.tx?.chainId ?? '–'],
          ['Signature', t.tx?.signature ?? '–'],
        ]),
      ),
    ),
    t.proof
      ? card(
          'Merkle inclusion proof',
          `leaf ${t.proof.index} of ${t.proof.leafCount}`,
          dl([['Tx root', t.proof.root], ...t.proof.siblings.map((s, i) => [`Sibling ${i}`, s])]),
        )
      : null,
    card(
      'Encoded',
      `${t.encoded.length / 2} bytes`,
      h('div', { class: 'mono', style: 'word-break:break-all' }, t.encoded),
    ),
  );
  return undefined;
}

async function accountView(addr) {
  const [a, page] = await Promise.all([
    api(`/v1/accounts/${addr}`),
    api(`/v1/accounts/${addr}/txs?limit=25`),
  ]);
  const tbody = h('tbody', { id: 'account-txs' });
  const addRows = (txs, atTop) => {
    const rows = txs.map((t) =>
      h(
        'tr',
        { class: atTop ? 'fresh' : undefined },
        h('td', null, txLink(t.hash)),
        h('td', null, blockLink(t.height)),
        h('td', null, t.tx && t.tx.from === addr ? 'out' : 'in'),
        h('td', null, ...txSummary(t.tx)),
        h('td', null, resultBadge(t.result)),
      ),
    );
    if (atTop) tbody.prepend(...rows);
    else tbody.append(...rows);
  };
  addRows(page.txs, false);
  let next = page.next;
  const more = h('button', { class: 'more', type: 'button' }, 'Older');
  more.hidden = next === null;
  more.addEventListener('click', async () => {
    const p = await api(`/v1/accounts/${addr}/txs?limit=25&cursor=${encodeURIComponent(next)}`);
    addRows(p.txs, false);
    next = p.next;
    more.hidden = next === null;
  });
  const balance = h('span', null, a.balance);
  const nonce = h('span', null, a.nonce);
  view.replaceChildren(
    card(
      'Account',
      null,
      dl([
        ['Address', addr],
        ['Balance', balance],
        ['Nonce', nonce],
      ]),
    ),
    card(
      'Transactions',
      'newest first, live',
      h(
        'table',
        null,
        h(
          'thead',
          null,
          h(
            'tr',
            null,
            ['Hash', 'Block', 'Dir', 'What', 'Result'].map((t) => h('th', null, t)),
          ),
        ),
        tbody,
      ),
      more,
    ),
  );
  // A per-account stream: `tx` events for this account's new txs.
  const es = new EventSource(`/v1/stream/blocks?account=${addr}`);
  es.addEventListener('tx', async (ev) => {
    addRows([JSON.parse(ev.data)], true);
    const fresh = await api(`/v1/accounts/${addr}`);
    balance.textContent = fresh.balance;
    nonce.textContent = fresh.nonce;
  });
  return () => es.close();
}

// ---- search and routing ------------------------------------------------------

async function search(q) {
  q = q.trim();
  if (q === '') return;
  if (/^\d+$/.test(q)) return go(`#/block/${Number(q)}`);
  if (!HEX64.test(q)) return showError(`"${q}" is not a height, hash or address`);
  const hex = q.replace(/^0x/i, '').toLowerCase();
  const t = await api(`/v1/txs/${hex}`).catch(() => null);
  if (t && t.status !== 'unknown') return go(`#/tx/${hex}`);
  const b = await api(`/v1/blocks/by-hash/${hex}`).catch(() => null);
  if (b) return go(`#/block/${hex}`);
  return go(`#/account/${hex}`);
}

function go(hash) {
  if (location.hash === hash) void route();
  else location.hash = hash;
}

function showError(msg) {
  view.replaceChildren(card('Not found', null, notice(msg, true)));
}

let cleanup = null;
async function route() {
  cleanup?.();
  cleanup = null;
  const [, kind, id] = (location.hash || '#/').split('/');
  try {
    if (kind === 'block' && id) cleanup = await blockView(id);
    else if (kind === 'tx' && id) cleanup = await txView(id);
    else if (kind === 'account' && id) cleanup = await accountView(id);
    else cleanup = await homeView();
  } catch (e) {
    showError(
      e.status === 404 || e.code === 'not-found' ? `Nothing found: ${e.message}` : `Error: ${e.message}`,
    );
  }
  cleanup ??= null;
}

$('#search-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  void search($('#search').value);
});
window.addEventListener('hashchange', () => void route());
connectStream();
void refreshStatus();
setInterval(() => void refreshStatus(), 5000);
void route();
