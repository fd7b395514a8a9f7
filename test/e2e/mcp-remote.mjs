// mcp-remote 0.15.1 as a stdio bridge to the protected demo server.
//
// mcp-remote discovers the authorization server, registers by DCR with a
// loopback redirect (http://localhost:<port>/oauth/callback) and opens the
// authorization URL with the `open` package. On Linux that package runs its
// own bundled xdg-open script (node_modules/open/xdg-open, by absolute path,
// not from PATH), which with no desktop falls back to $BROWSER. So the fake
// "browser" is given both ways: as $BROWSER and as an xdg-open first in PATH;
// each records the URL it was asked to open. chromium (playwright-core) then
// signs in and allows; mcp-remote gets the code on its callback server and
// connects. Then MCP goes over mcp-remote's stdin/stdout.
// Its tokens go to MCP_REMOTE_CONFIG_DIR (and HOME is a temp dir too), so
// nothing is read from or written to the real ~/.mcp-auth.
import fs from 'node:fs';
import path from 'node:path';
import {
  ALLOW, NODE, SIGN_IN, TOOLS, WORK, assert, assertPageHeaders, check, env, info, launchBrowser, main, must, rel,
  run, screenshot, submitAndWait, waitFor, waitOutput,
} from './lib.mjs';

const ISSUER = env('E2E_ISSUER');
const RESOURCE = env('E2E_RESOURCE');
const USER = env('E2E_USER');
const PASSWORD = env('E2E_PASSWORD');
const SCOPES = env('E2E_SCOPES').split(/\s+/).filter(Boolean);
const PROXY = path.join(TOOLS, 'mcp-remote/dist/proxy.js');
const CLIENT_NAME = 'MCP CLI Proxy'; // the client_name mcp-remote registers with

const dir = fs.mkdtempSync(path.join(WORK, 'mcp-remote-'));
const home = path.join(dir, 'home');
const configDir = path.join(dir, 'config');
const fakeBin = path.join(dir, 'bin');
const opened = path.join(dir, 'opened-urls.txt');
for (const d of [home, configDir, fakeBin]) fs.mkdirSync(d, { recursive: true });
// The fake browser: records "<how> <url>" and succeeds.
for (const [name, how] of [['xdg-open', 'PATH-xdg-open'], ['fake-browser', 'BROWSER']]) {
  fs.writeFileSync(path.join(fakeBin, name), `#!/bin/sh\nprintf '%s %s\\n' '${how}' "$1" >> '${opened}'\n`, { mode: 0o755 });
}
const openedURLs = () => (fs.existsSync(opened) ? fs.readFileSync(opened, 'utf8').split('\n').filter(Boolean) : []);

function startBridge(name) {
  const e = { ...process.env, PATH: `${fakeBin}:${process.env.PATH}`, BROWSER: path.join(fakeBin, 'fake-browser'),
    HOME: home, MCP_REMOTE_CONFIG_DIR: configDir };
  for (const k of ['DISPLAY', 'WAYLAND_DISPLAY', 'XDG_CURRENT_DESKTOP', 'DESKTOP_SESSION', 'DBUS_SESSION_BUS_ADDRESS']) delete e[k];
  return run(name, NODE, [PROXY, RESOURCE], { env: e, cwd: dir });
}

// A tiny MCP client over the bridge's stdio (newline-delimited JSON-RPC).
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
        continue; // not a JSON-RPC line
      }
      if (msg.id !== undefined && (msg.result !== undefined || msg.error !== undefined)) responses.set(msg.id, msg);
    }
  });
  const send = (msg) => p.child.stdin.write(`${JSON.stringify(msg)}\n`);
  return {
    notify: (method, params) => send({ jsonrpc: '2.0', method, ...(params ? { params } : {}) }),
    async request(method, params, ms = 15000) {
      const id = next++;
      send({ jsonrpc: '2.0', id, method, ...(params ? { params } : {}) });
      const r = await waitFor(`the answer to ${method}`, ms, () => {
        if (!p.running()) throw new Error(`mcp-remote exited (${p.code ?? p.signal}); log: ${rel(p.logFile)}`);
        return responses.get(id);
      });
      if (r.error) throw new Error(`${method}: error ${r.error.code} ${r.error.message}`);
      return r.result;
    },
  };
}

async function speakMCP(p, label) {
  const mcp = mcpClient(p);
  await must(`${label}: initialize over stdio`, async () => {
    const r = await mcp.request('initialize', { protocolVersion: '2025-06-18', capabilities: {},
      clientInfo: { name: 'mcpgate-e2e', version: '0.0.0' } });
    assert(r.protocolVersion && r.serverInfo, `initialize result: ${JSON.stringify(r)}`);
    info(`server: ${r.serverInfo.name} ${r.serverInfo.version || ''}, protocol ${r.protocolVersion}`);
    mcp.notify('notifications/initialized');
  });
  await check(`${label}: tools/list includes echo`, async () => {
    const r = await mcp.request('tools/list', {});
    const names = (r.tools || []).map((t) => t.name);
    assert(names.includes('echo'), `tools: ${names.join(', ')}`);
  });
  await check(`${label}: tools/call echo {"text":"hi"} returns "hi"`, async () => {
    const r = await mcp.request('tools/call', { name: 'echo', arguments: { text: 'hi' } });
    assert(!r.isError, `isError: ${JSON.stringify(r.content)}`);
    const text = (r.content || []).filter((c) => c.type === 'text').map((c) => c.text).join('');
    assert(text === 'hi', `echo returned ${JSON.stringify(r.content)}`);
  });
}

await main(async () => {
  const bridge = startBridge('mcp-remote');

  const authURL = await must('mcp-remote: registers and opens the authorization URL with the fake browser', async () => {
    const line = await waitFor('mcp-remote to open a browser', 30000, () => {
      if (!bridge.running()) throw new Error(`mcp-remote exited (${bridge.code ?? bridge.signal}); log: ${rel(bridge.logFile)}`);
      return openedURLs()[0];
    });
    const [how, url] = line.split(' ');
    info(`opened via ${how === 'BROWSER' ? '$BROWSER (the bundled xdg-open of the `open` package)' : 'xdg-open from PATH'}`);
    const u = new URL(url);
    assert(u.origin === new URL(ISSUER).origin && u.pathname === '/oauth/authorize', `URL ${u.origin}${u.pathname}`);
    assert(u.searchParams.get('code_challenge_method') === 'S256', 'no PKCE S256');
    assert(u.searchParams.get('resource') === RESOURCE, `resource ${u.searchParams.get('resource')}`);
    const redirect = new URL(u.searchParams.get('redirect_uri'));
    assert(['localhost', '127.0.0.1', '[::1]'].includes(redirect.hostname) && redirect.protocol === 'http:',
      `redirect_uri ${redirect} is not loopback`);
    info(`client_id ${u.searchParams.get('client_id')}, redirect_uri ${redirect}, scope ${u.searchParams.get('scope')}`);
    return u;
  });

  const ctx = await must('mcp-remote: chromium starts (playwright-core)', () => launchBrowser('mcp-remote'));
  const page = ctx.pages()[0] || (await ctx.newPage());
  await must('mcp-remote: sign in with the browser', async () => {
    const resp = await page.goto(authURL.toString());
    assert(resp && resp.status() === 200, `GET /oauth/authorize: ${resp && resp.status()}`);
    await assertPageHeaders(resp, 'login page');
    await page.locator('input[name=username]').fill(USER);
    await page.locator('input[name=password]').fill(PASSWORD);
    const consent = await submitAndWait(page, SIGN_IN, '/oauth/login');
    assert(consent.status() === 200, `POST /oauth/login: ${consent.status()}`);
    await assertPageHeaders(consent, 'consent page');
  });
  await check('mcp-remote: consent page names the DCR client (unverified), its loopback redirect host and the scopes', async () => {
    const h1 = await page.locator('h1').innerText();
    assert(h1.includes(CLIENT_NAME), `heading: ${JSON.stringify(h1)}`);
    const body = await page.locator('body').innerText();
    assert(/not verified/i.test(body), 'a self-asserted client name is not marked unverified');
    const redirect = new URL(authURL.searchParams.get('redirect_uri'));
    assert(body.includes(redirect.host), `redirect host ${redirect.host} not shown`);
    const scopes = await page.locator('ul.scopes li').allInnerTexts();
    for (const s of SCOPES) assert(scopes.some((l) => l.includes(s)), `scope ${s} not listed (${JSON.stringify(scopes)})`);
    info(`screenshot: ${rel(await screenshot(page, 'mcp-remote-consent.png'))}`);
  });
  await must('mcp-remote: Allow hands the code to mcp-remote, which connects', async () => {
    const redirect = new URL(authURL.searchParams.get('redirect_uri'));
    await Promise.all([
      page.waitForURL((u) => u.port === redirect.port && u.pathname === redirect.pathname, { waitUntil: 'load' }),
      page.getByRole('button', ALLOW).click(),
    ]);
    info(`screenshot: ${rel(await screenshot(page, 'mcp-remote-callback.png'))}`);
    await waitOutput(bridge, /Proxy established successfully/, 30000, 'err');
  });
  await ctx.close();

  await speakMCP(bridge, 'mcp-remote');

  await check('mcp-remote: tokens are stored in MCP_REMOTE_CONFIG_DIR (not ~/.mcp-auth)', () => {
    const files = fs.readdirSync(configDir, { recursive: true }).map(String);
    assert(files.some((f) => f.endsWith('_tokens.json')), `no *_tokens.json in the config dir: ${files.join(', ')}`);
    assert(!fs.existsSync(path.join(home, '.mcp-auth')), 'mcp-remote wrote to ~/.mcp-auth');
  });
  await bridge.stop();

  // A second bridge with the same config dir: uses the stored tokens, no browser.
  const again = startBridge('mcp-remote-again');
  await check('mcp-remote: a second run reuses the stored tokens without opening a browser', async () => {
    await waitOutput(again, /Proxy established successfully/, 30000, 'err');
    assert(openedURLs().length === 1, `opened a browser again: ${openedURLs().slice(1).join(' ')}`);
  });
  if (again.running()) await speakMCP(again, 'mcp-remote (stored tokens)');
  await again.stop();
});
