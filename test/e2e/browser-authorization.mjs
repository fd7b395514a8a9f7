// Browser sign-in and consent, judged by the official conformance runner.
//
// The conformance alpha runner's `authorization` command tests mcpgate as an
// authorization server: it reads the metadata, prints an authorization URL
// (PKCE S256, resource = the demo server) and waits for the code on its own
// callback server (127.0.0.1:E2E_CALLBACK_PORT/callback), then exchanges it.
// Here Debian's chromium, driven by playwright-core, plays the person: a wrong
// password first (an error, no redirect), then the right one, then Allow.
import fs from 'node:fs';
import path from 'node:path';
import {
  ALLOW, NODE, OUT, SIGN_IN, TOOLS, assert, assertPageHeaders, check, env, info, launchBrowser, main, must, rel,
  run, screenshot, submitAndWait, waitOutput, withTimeout,
} from './lib.mjs';

const ISSUER = env('E2E_ISSUER');
const RESOURCE = env('E2E_RESOURCE');
const CLIENT_ID = env('E2E_BROWSER_CLIENT_ID');
const CLIENT_NAME = env('E2E_BROWSER_CLIENT_NAME');
const CALLBACK_PORT = env('E2E_CALLBACK_PORT');
const USER = env('E2E_USER');
const PASSWORD = env('E2E_PASSWORD');
const SCOPES = env('E2E_SCOPES').split(/\s+/).filter(Boolean);

const RUNNER = path.join(TOOLS, 'conformance-alpha/dist/index.js');
const RESULTS = path.join(OUT, 'conformance-authorization');
const CALLBACK_ORIGIN = `http://127.0.0.1:${CALLBACK_PORT}`;
const SCENARIOS = ['authorization-server-metadata-endpoint', 'authorization-code-grant'];

await main(async () => {
  fs.rmSync(RESULTS, { recursive: true, force: true });
  fs.mkdirSync(RESULTS, { recursive: true });
  const runner = run('conformance-authorization', NODE, [RUNNER, 'authorization', '--url', ISSUER,
    '--client-id', CLIENT_ID, '--resource', RESOURCE, '-p', CALLBACK_PORT, '-o', RESULTS], { cwd: RESULTS });

  const authURL = await must('browser: conformance runner prints the authorization URL', async () => {
    const m = await waitOutput(runner, /^(http:\/\/\S+\/oauth\/authorize\?\S+)$/m, 30000);
    const u = new URL(m[1]);
    assert(u.origin === new URL(ISSUER).origin, `authorization endpoint ${u.origin} is not the issuer's`);
    assert(u.searchParams.get('client_id') === CLIENT_ID, `client_id ${u.searchParams.get('client_id')}`);
    assert(u.searchParams.get('code_challenge_method') === 'S256', 'no PKCE S256');
    assert(u.searchParams.get('resource') === RESOURCE, `resource ${u.searchParams.get('resource')}`);
    await waitOutput(runner, /^Callback server started: /m, 10000);
    return m[1];
  });

  const ctx = await must('browser: chromium starts (playwright-core)', () => launchBrowser('authorization'));
  const page = ctx.pages()[0] || (await ctx.newPage());
  // Every request the browser sends to the runner's callback server.
  const callbackRequests = [];
  page.on('request', (r) => {
    if (r.url().startsWith(CALLBACK_ORIGIN)) callbackRequests.push(r.url());
  });

  let loginResp;
  await must('browser: login page (GET /oauth/authorize) shows the sign-in form', async () => {
    const resp = await page.goto(authURL);
    assert(resp && resp.status() === 200, `status ${resp && resp.status()}`);
    assert((await page.locator('h1').innerText()).includes('Sign in'), 'no "Sign in" heading');
    await page.locator('input[name=username]').waitFor();
    await page.locator('input[name=password]').waitFor();
    const body = await page.locator('body').innerText();
    assert(body.includes(CLIENT_NAME), `login page does not name the client ${CLIENT_NAME}`);
    loginResp = resp;
  });
  await check("browser: login page has Content-Security-Policy frame-ancestors 'none' (and X-Frame-Options DENY)", async () => {
    await assertPageHeaders(loginResp, 'login page');
    const h = await loginResp.allHeaders();
    assert(h['x-frame-options'] === 'DENY', `X-Frame-Options: ${h['x-frame-options']}`);
  });
  await check('browser: screenshot of the login page', async () => info(`screenshot: ${rel(await screenshot(page, 'login.png'))}`));

  await check('browser: wrong password shows an error and does not redirect', async () => {
    await page.locator('input[name=username]').fill(USER);
    await page.locator('input[name=password]').fill(`${PASSWORD}-wrong`);
    const resp = await submitAndWait(page, SIGN_IN, '/oauth/login');
    const st = resp.status();
    assert(!(st >= 300 && st < 400) && !resp.headers().location, `POST /oauth/login redirected (${st} ${resp.headers().location})`);
    info(`wrong password: POST /oauth/login answered ${st}`);
    const alert = await page.locator('[role=alert]').innerText();
    assert(/wrong username or password/i.test(alert), `error shown: ${JSON.stringify(alert)}`);
    const u = new URL(page.url());
    assert(u.origin === new URL(ISSUER).origin && u.pathname === '/oauth/login', `browser is at ${page.url()}`);
    assert(callbackRequests.length === 0, `the browser went to the callback: ${callbackRequests[0]}`);
    assert(runner.running(), `the runner stopped waiting (exit ${runner.code})`);
    await assertPageHeaders(resp, 'login error page');
    info(`screenshot: ${rel(await screenshot(page, 'login-error.png'))}`);
  });

  const consent = await must('browser: right password leads to the consent page', async () => {
    await page.locator('input[name=username]').fill(USER);
    await page.locator('input[name=password]').fill(PASSWORD);
    const resp = await submitAndWait(page, SIGN_IN, '/oauth/login');
    assert(resp.status() === 200, `POST /oauth/login answered ${resp.status()}`);
    await page.getByRole('button', ALLOW).waitFor();
    return resp;
  });
  await check("browser: consent page has Content-Security-Policy frame-ancestors 'none'", () =>
    assertPageHeaders(consent, 'consent page'));
  await check('browser: consent page shows the client name, the redirect host and the scopes', async () => {
    const h1 = await page.locator('h1').innerText();
    assert(h1.includes(CLIENT_NAME), `heading does not name the client: ${JSON.stringify(h1)}`);
    const body = await page.locator('body').innerText();
    assert(body.includes(`127.0.0.1:${CALLBACK_PORT}`), `redirect host 127.0.0.1:${CALLBACK_PORT} not shown`);
    const scopes = await page.locator('ul.scopes li').allInnerTexts();
    for (const s of SCOPES) {
      assert(scopes.some((l) => l.includes(s)), `scope ${s} not listed (${JSON.stringify(scopes)})`);
    }
    assert(body.includes(RESOURCE), `resource ${RESOURCE} not shown`);
  });
  await check('browser: screenshot of the consent page', async () => info(`screenshot: ${rel(await screenshot(page, 'consent.png'))}`));

  await must('browser: Allow redirects to the runner callback with code, state and iss', async () => {
    await Promise.all([
      page.waitForURL((u) => u.origin === CALLBACK_ORIGIN, { waitUntil: 'load' }),
      page.getByRole('button', ALLOW).click(),
    ]);
    const u = new URL(page.url());
    assert(u.pathname === '/callback', `redirected to ${u.pathname}`);
    assert(u.searchParams.get('code'), 'no code');
    assert(u.searchParams.get('state'), 'no state');
    assert(u.searchParams.get('iss') === ISSUER, `iss ${u.searchParams.get('iss')}`);
    assert((await page.locator('body').innerText()).includes('OK'), 'the callback page did not answer OK');
    info(`screenshot: ${rel(await screenshot(page, 'callback.png'))}`);
  });

  await must('browser: conformance runner finishes with exit status 0', async () => {
    await withTimeout(runner.exited, 60000, 'the conformance runner to finish');
    const summary = runner.out.split('\n').filter((l) => /^(Total|Passed|Failed|=== Running)|✓|✗/.test(l.trim()));
    for (const l of summary) info(`runner: ${l.trim()}`);
    assert(runner.code === 0, `runner exit ${runner.code ?? runner.signal}; log: ${rel(runner.logFile)}`);
  });

  // The runner's own verdict: RESULTS/authorization-server-<scenario>-<time>/checks.json.
  const byScenario = new Map();
  for (const dir of fs.readdirSync(RESULTS)) {
    const f = path.join(RESULTS, dir, 'checks.json');
    if (!fs.existsSync(f)) continue;
    const scenario = dir.replace(/^authorization-server-/, '').replace(/-\d{4}-\d{2}-\d{2}T[\d-]+Z$/, '');
    byScenario.set(scenario, JSON.parse(fs.readFileSync(f, 'utf8')));
  }
  for (const s of SCENARIOS) {
    await check(`browser: conformance scenario ${s} passes`, () => {
      const cs = byScenario.get(s);
      assert(cs && cs.some((c) => c.status === 'SUCCESS'), `no passing check for ${s} in ${rel(RESULTS)}`);
      const notOk = cs.filter((c) => c.status !== 'SUCCESS' && c.status !== 'INFO');
      assert(!notOk.length, notOk.map((c) => `${c.id}: ${c.status} ${c.errorMessage || ''}`).join('; '));
      info(`${s}: ${cs.map((c) => `${c.id} ${c.status}`).join(', ')}`);
    });
  }
});
