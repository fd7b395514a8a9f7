// Scope challenges through a real client: mcp-remote 0.15.1 (its bundled TypeScript SDK does
// the SEP-2350 step-up) against its own mcpgate, with chromium signing in and consenting.
//
// Issue 9 §2: through mcp-remote, two refused calls opened the browser four times and ended in
// "Unauthorized". Here the fake browser records every authorization URL mcp-remote opens, and
// the test counts them:
//   - the first connection opens it once (sign in, consent);
//   - a call that step-up CAN fix (policy would grant the scope on re-consent) opens it at most
//     once more: one 403 insufficient_scope naming the scope, the person consents, mcp-remote
//     retries with the new token and the call succeeds;
//   - a call that step-up can NOT fix (no policy gives this user the scope) opens it zero times,
//     however often it is made: the answer is a tool result with isError that names the scope,
//     the policy that would grant it and whom to ask;
//   - tools/list shows what the token can use (the scope hierarchy included), before and after;
//   - a client that re-authorizes and still lacks the scope (mcp-remote with a pinned scope) gets
//     one browser round trip for the first refused call, then words: the second refusal for the
//     same token lineage is no challenge.
// Config: server `sc` offers mcp:base and mcp:all; mcp:all covers mcp:more and mcp:admin
// (scope_hierarchy); echo needs mcp:base, whoami mcp:more (policy `staff` grants it to the
// demo user, who is in group staff), test_simple_text mcp:admin (policy `admins` only).
// The upstream is the suite's mcpfixture (E2E_FIXTURE_URL).
import fs from 'node:fs';
import path from 'node:path';
import {
  ALLOW, NODE, OUT, SIGN_IN, TOOLS, WORK, assert, check, env, info, launchBrowser, main, must, rel, run,
  screenshot, submitAndWait, waitFor, waitOutput,
} from './lib.mjs';

const FIXTURE_URL = env('E2E_FIXTURE_URL');
const MCPGATE = path.resolve(process.env.E2E_MCPGATE || 'bin/mcpgate');
const PROXY = path.join(TOOLS, 'mcp-remote/dist/proxy.js');
const USER = { username: 'sc-demo', password: 'demo-password', hash: '$2a$10$xreFS6xzxJ2xCdQJOe.hz.R12v/jNPh0flsU/N0FZApStjcxzaJeu' };
const CONTACT = 'it-help@example.com';

const dir = fs.mkdtempSync(path.join(WORK, 'scope-challenge-'));
const home = path.join(dir, 'home');
const configDir = path.join(dir, 'config');
const fakeBin = path.join(dir, 'bin');
const opened = path.join(dir, 'opened-urls.txt');
for (const d of [home, configDir, fakeBin]) fs.mkdirSync(d, { recursive: true });
// The fake browser (see mcp-remote.mjs): records "<how> <url>" and succeeds.
for (const [name, how] of [['xdg-open', 'PATH-xdg-open'], ['fake-browser', 'BROWSER']]) {
  fs.writeFileSync(path.join(fakeBin, name), `#!/bin/sh\nprintf '%s %s\\n' '${how}' "$1" >> '${opened}'\n`, { mode: 0o755 });
}
const openedURLs = () => (fs.existsSync(opened) ? fs.readFileSync(opened, 'utf8').split('\n').filter(Boolean) : [])
  .map((l) => new URL(l.split(' ')[1]));

function writeConfig() {
  const file = path.join(OUT, 'scope-challenge.yaml');
  fs.writeFileSync(file, `# Written by test/e2e/scope-challenge.mjs for one run.
listen: 127.0.0.1:0
store: {sqlite: "${path.join(dir, 'mcpgate.db')}"}
access_contact: ${CONTACT}
users:
  - {username: ${USER.username}, email: sc-demo@example.com, password_hash: "${USER.hash}", groups: [staff]}
servers:
  - name: sc
    upstream: {url: "${FIXTURE_URL}"}
    scopes: [mcp:base, mcp:all]
    scope_hierarchy: {"mcp:all": [mcp:more, mcp:admin]}
    tools:
      - {match: echo, scope: mcp:base}
      - {match: whoami, scope: mcp:more}
      - {match: test_simple_text, scope: mcp:admin}
      - {match: "*", scope: mcp:base}
policies:
  - name: staff
    when: '"staff" in user.groups'
    allow: [{servers: [sc], scopes: [mcp:base, mcp:more]}]
  - name: admins
    when: '"admins" in user.groups'
    allow: [{servers: [sc], scopes: [mcp:admin]}]
`);
  return file;
}

function startBridge(name, resource, extra = [], cfgDir = configDir) {
  fs.mkdirSync(cfgDir, { recursive: true });
  const e = { ...process.env, PATH: `${fakeBin}:${process.env.PATH}`, BROWSER: path.join(fakeBin, 'fake-browser'),
    HOME: home, MCP_REMOTE_CONFIG_DIR: cfgDir };
  for (const k of ['DISPLAY', 'WAYLAND_DISPLAY', 'XDG_CURRENT_DESKTOP', 'DESKTOP_SESSION', 'DBUS_SESSION_BUS_ADDRESS']) delete e[k];
  return run(name, NODE, [PROXY, resource, ...extra], { env: e, cwd: dir });
}

// A tiny MCP client over the bridge's stdio (newline-delimited JSON-RPC); answers are
// returned whole (result or error), the test decides.
function mcpClient(p) {
  let next = 1;
  let seen = 0;
  const responses = new Map();
  p.child.stdout.on('data', () => {
    const lines = p.out.split('\n');
    for (; seen < lines.length - 1; seen++) {
      let msg;
      try {
        msg = JSON.parse(lines[seen]);
      } catch {
        continue;
      }
      if (msg.id !== undefined && (msg.result !== undefined || msg.error !== undefined)) responses.set(msg.id, msg);
    }
  });
  const send = (msg) => p.child.stdin.write(`${JSON.stringify(msg)}\n`);
  return {
    notify: (method, params) => send({ jsonrpc: '2.0', method, ...(params ? { params } : {}) }),
    /** start(method, params): sends the request; returns a function that waits for its answer. */
    start(method, params) {
      const id = next++;
      send({ jsonrpc: '2.0', id, method, ...(params ? { params } : {}) });
      return (ms = 15000) => waitFor(`the answer to ${method}`, ms, () => {
        if (!p.running()) throw new Error(`mcp-remote exited (${p.code ?? p.signal}); log: ${rel(p.logFile)}`);
        return responses.get(id);
      });
    },
  };
}

const text = (r) => (r.result?.content || []).filter((c) => c.type === 'text').map((c) => c.text).join('');

await main(async () => {
  const gw = run('scope-challenge-mcpgate', MCPGATE, ['serve', '--config', writeConfig()]);
  const issuer = (await must('mcpgate starts with scope_hierarchy, policies and access_contact', () =>
    waitOutput(gw, /^authorization server: (http:\/\/127\.0\.0\.1:\d+)$/m, 20000, 'both')))[1];
  const resource = `${issuer}/mcp/sc`;
  const bridge = startBridge('scope-challenge-mcp-remote', resource);

  const ctx = await must('chromium starts (playwright-core)', () => launchBrowser('scope-challenge'));
  const page = ctx.pages()[0] || (await ctx.newPage());
  /** authorize(u, shot): chromium follows an authorization URL mcp-remote opened, signs in if asked, allows. */
  async function authorize(u, shot) {
    const resp = await page.goto(u.toString());
    assert(resp && resp.status() === 200, `GET /oauth/authorize: ${resp && resp.status()}`);
    if (await page.locator('input[name=username]').count()) {
      await page.locator('input[name=username]').fill(USER.username);
      if (await page.locator('input[name=password]').count() === 0) await page.getByRole('button', SIGN_IN).click();
      await page.locator('input[name=password]').fill(USER.password);
      const consent = await submitAndWait(page, SIGN_IN, '/oauth/login');
      assert(consent.status() === 200, `POST /oauth/login: ${consent.status()}`);
    }
    const scopes = await page.locator('ul.scopes li').allInnerTexts();
    info(`consent page asks for: ${scopes.join(' | ')}; screenshot ${rel(await screenshot(page, shot))}`);
    const redirect = new URL(u.searchParams.get('redirect_uri'));
    await Promise.all([
      page.waitForURL((x) => x.port === redirect.port && x.pathname === redirect.pathname, { waitUntil: 'load' }),
      page.getByRole('button', ALLOW).click(),
    ]);
    return scopes;
  }

  const first = await must('connect: mcp-remote opens the authorization URL once', async () => {
    const u = await waitFor('mcp-remote to open a browser', 30000, () => {
      if (!bridge.running()) throw new Error(`mcp-remote exited (${bridge.code ?? bridge.signal}); log: ${rel(bridge.logFile)}`);
      return openedURLs()[0];
    });
    info(`scope asked: ${u.searchParams.get('scope')}`);
    return u;
  });
  await must('connect: sign in and allow; mcp-remote connects', async () => {
    await authorize(first, 'scope-challenge-consent-1.png');
    await waitOutput(bridge, /Proxy established successfully/, 30000, 'err');
  });

  const mcp = mcpClient(bridge);
  await must('initialize over stdio', async () => {
    const r = await mcp.start('initialize', { protocolVersion: '2025-06-18', capabilities: {},
      clientInfo: { name: 'mcpgate-e2e-scopes', version: '0.0.0' } })();
    assert(r.result?.protocolVersion, `initialize: ${JSON.stringify(r)}`);
    mcp.notify('notifications/initialized');
  });
  const listTools = async () => {
    const r = await mcp.start('tools/list', {})();
    assert(r.result, `tools/list: ${JSON.stringify(r.error)}`);
    return r.result.tools.map((t) => t.name);
  };
  await check('tools/list before step-up: only what mcp:base reaches (no whoami, no test_simple_text)', async () => {
    const names = await listTools();
    assert(names.includes('echo') && !names.includes('whoami') && !names.includes('test_simple_text'), `tools: ${names.join(', ')}`);
  });
  await check('an allowed call works (echo)', async () => {
    const r = await mcp.start('tools/call', { name: 'echo', arguments: { text: 'hi' } })();
    assert(r.result && !r.result.isError && text(r) === 'hi', JSON.stringify(r));
  });

  // A call step-up can fix: one more browser round trip, then the call succeeds.
  const before = openedURLs().length;
  const whoami = mcp.start('tools/call', { name: 'whoami', arguments: {} });
  const stepUp = await must('step-up: a refused call that re-consent can fix opens the authorization URL (once)', async () => {
    const u = await waitFor('mcp-remote to open the browser for step-up', 30000, () => {
      if (!bridge.running()) throw new Error(`mcp-remote exited; log: ${rel(bridge.logFile)}`);
      return openedURLs()[before];
    });
    const scope = (u.searchParams.get('scope') || '').split(' ');
    assert(scope.includes('mcp:more'), `step-up scope ${u.searchParams.get('scope')} lacks the challenged mcp:more`);
    info(`step-up scope asked: ${u.searchParams.get('scope')}`);
    return u;
  });
  await check('step-up: the consent page asks only for the new permission (mcp:base was allowed before); allow', async () => {
    const scopes = await authorize(stepUp, 'scope-challenge-consent-2.png');
    assert(scopes.some((l) => l.includes('mcp:more')), `consent lines ${JSON.stringify(scopes)}`);
    assert(!scopes.some((l) => l.includes('(mcp:base')), `asked again for mcp:base: ${JSON.stringify(scopes)}`);
  });
  await check('step-up: mcp-remote retries and the call succeeds', async () => {
    const r = await whoami(45000);
    assert(r.result && !r.result.isError, `whoami: ${JSON.stringify(r)}`);
  });
  await check('step-up cost exactly one browser round trip', async () => {
    assert(openedURLs().length === before + 1, `opened ${openedURLs().length - before} times for one refused call`);
  });
  await check('tools/list after step-up shows whoami', async () => {
    const names = await listTools();
    assert(names.includes('whoami') && !names.includes('test_simple_text'), `tools: ${names.join(', ')}`);
  });

  // Calls step-up can not fix: words, never the browser.
  const still = openedURLs().length;
  const errMark = bridge.err.length; // mcp-remote's own step-up logs an UnauthorizedError it recovers from
  for (const n of [1, 2]) {
    await check(`no step-up possible (call ${n}): a tool error names the scope, the policy that grants it and whom to ask`, async () => {
      const r = await mcp.start('tools/call', { name: 'test_simple_text', arguments: {} })(20000);
      assert(r.result && r.result.isError, `answer: ${JSON.stringify(r)}`);
      const t = text(r);
      for (const want of ['mcp:admin', 'admins', CONTACT, 'will not help']) assert(t.includes(want), `text lacks ${want}: ${t}`);
      if (n === 1) info(`the model reads: ${t}`);
    });
  }
  await check('no step-up possible: the browser was not opened (zero times for two refused calls)', async () => {
    await new Promise((r) => setTimeout(r, 1000)); // an open would have been recorded by now
    assert(openedURLs().length === still, `opened ${openedURLs().length - still} times: ${openedURLs().slice(still).join(' ')}`);
  });
  await check('mcp-remote is still connected and working after the refusals', async () => {
    const r = await mcp.start('tools/call', { name: 'echo', arguments: { text: 'still here' } })();
    assert(r.result && text(r) === 'still here', JSON.stringify(r));
    assert(!/Unauthorized|Remote server requires authorization/.test(bridge.err.slice(errMark)),
      `mcp-remote went for authorization again: ${bridge.err.slice(errMark).slice(0, 300)}`);
  });
  info(`authorization URLs opened in all: ${openedURLs().length} (connect 1, step-up 1, refusals 0)`);
  await bridge.stop();

  // A client that pins its scope (`--static-oauth-client-metadata {"scope":"mcp:base"}`): the
  // SDK registers it (DCR) with the scope of the 401 challenge, mcp:base mcp:all, which covers
  // mcp:more, so a step-up could help and whoami is challenged; but mcp-remote then authorizes for
  // its pinned mcp:base only, and comes back with a new token that still lacks mcp:more. The
  // second refusal for that token lineage is words: one browser round trip for the first call,
  // none after, where each call used to open the browser again (and again on the retry).
  const pinnedFrom = openedURLs().length;
  const pinned = startBridge('scope-challenge-mcp-remote-pinned', resource,
    ['--static-oauth-client-metadata', JSON.stringify({ scope: 'mcp:base' })], path.join(dir, 'config-pinned'));
  await must('pinned scope: connect (consent for the new client)', async () => {
    const u = await waitFor('the pinned mcp-remote to open a browser', 30000, () => {
      if (!pinned.running()) throw new Error(`mcp-remote exited; log: ${rel(pinned.logFile)}`);
      return openedURLs()[pinnedFrom];
    });
    assert(u.searchParams.get('scope') === 'mcp:base', `scope asked: ${u.searchParams.get('scope')}`);
    await authorize(u, 'scope-challenge-consent-pinned.png');
    await waitOutput(pinned, /Proxy established successfully/, 30000, 'err');
  });
  const pmcp = mcpClient(pinned);
  await must('pinned scope: initialize', async () => {
    const r = await pmcp.start('initialize', { protocolVersion: '2025-06-18', capabilities: {},
      clientInfo: { name: 'mcpgate-e2e-scopes-pinned', version: '0.0.0' } })();
    assert(r.result?.protocolVersion, JSON.stringify(r));
    pmcp.notify('notifications/initialized');
  });
  const pWhoami = pmcp.start('tools/call', { name: 'whoami', arguments: {} });
  await check('pinned scope: the challenge opens the browser once; mcp-remote re-authorizes for mcp:base only', async () => {
    const u = await waitFor('the step-up', 30000, () => openedURLs()[pinnedFrom + 1]);
    assert(u.searchParams.get('scope') === 'mcp:base', `scope asked: ${u.searchParams.get('scope')}`);
    // Consent to mcp:base is remembered: no page, straight back to mcp-remote with a code.
    const redirect = new URL(u.searchParams.get('redirect_uri'));
    await page.goto(u.toString());
    await page.waitForURL((x) => x.port === redirect.port && x.pathname === redirect.pathname, { waitUntil: 'load' });
  });
  await check('pinned scope: the retry with the new token that still lacks mcp:more is answered in words', async () => {
    const r = await pWhoami(45000);
    assert(r.result && r.result.isError, `answer: ${JSON.stringify(r)}`);
    assert(text(r).includes('mcp:more') && text(r).includes('still does not carry it'), text(r));
    info(`the model reads: ${text(r)}`);
  });
  await check('pinned scope: calling again opens no browser (zero more times for two more calls)', async () => {
    for (let i = 0; i < 2; i++) {
      const r = await pmcp.start('tools/call', { name: 'whoami', arguments: {} })(20000);
      assert(r.result && r.result.isError, `answer: ${JSON.stringify(r)}`);
    }
    await new Promise((res) => setTimeout(res, 1000));
    assert(openedURLs().length === pinnedFrom + 2, `opened ${openedURLs().length - pinnedFrom - 2} more times`);
  });
  await pinned.stop();
  await gw.stop();
});
