// Company sign-in (home realm discovery, then the tenant's own IdP) in a real browser.
//
// Debian's chromium, driven by playwright-core, against bin/mcpgate with a tenant whose
// users sign in at bin/testidp (a zitadel-OP-based OpenID Provider). Chromium enforces
// the sign-in page's CSP form-action on the whole redirect chain of a form submission,
// which an HTTP form-filler never does; these checks are why this test exists:
//   - a work e-mail goes to the IdP (mcpgate never asks for that person's password),
//     and back through consent to the client's redirect URI with a code;
//   - signing in again from a fresh browser with remembered consent reaches the client
//     directly (federated, and with a built-in password user);
//   - Deny gives the client error=access_denied (RFC 6749 §4.1.2.1);
//   - a federated callback opened in another browser (login CSRF) signs nobody in;
//   - error pages (unknown client, unregistered redirect URI, garbled or foreign state)
//     render here and never redirect;
//   - `return` after sign-in never leaves mcpgate's origin;
//   - /connections: Connect reaches the provider (through a page: the page's form-action
//     stays 'self') and comes back connected; ?msg= text from a link is never shown.
// It starts its own testidp and mcpgate (the shared instance of scripts/e2e.sh has no
// federated tenant); the upstream is the suite's mcpfixture (E2E_FIXTURE_URL).
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import {
  ALLOW, OUT, WORK, assert, assertPageHeaders, check, defer, env, info, launchChromium, main, must, rel, run,
  screenshot, waitOutput,
} from './lib.mjs';

const FIXTURE_URL = env('E2E_FIXTURE_URL');
const BIN = path.resolve('bin');
const TENANT_DOMAIN = 'tenant-a.example';
const ALICE = { username: 'alice', password: 'alice-idp-password', email: `alice@${TENANT_DOMAIN}` };
const DEMO = { username: 'fed-demo', password: 'demo-password' }; // built-in (bcrypt below)
// shellcheck-free copy of scripts/e2e.sh's DEMO_HASH (bcrypt of "demo-password").
const DEMO_HASH = '$2a$10$xreFS6xzxJ2xCdQJOe.hz.R12v/jNPh0flsU/N0FZApStjcxzaJeu';
const CLIENT_ID = 'e2e-fed-client';
const IDP_SECRET = `idp-${crypto.randomBytes(12).toString('hex')}`;

/** freePort(): a loopback port the kernel just let us bind (then released). */
function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** The client's redirect URI: a loopback server that records what reaches it. */
async function startClientCallback() {
  const hits = [];
  const srv = http.createServer((req, res) => {
    hits.push(req.url);
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('OK client callback');
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  defer(() => new Promise((r) => srv.close(r)));
  return { origin: `http://127.0.0.1:${srv.address().port}`, hits };
}

function pkce() {
  const verifier = crypto.randomBytes(32).toString('base64url');
  const challenge = crypto.createHash('sha256').update(verifier).digest('base64url');
  return { verifier, challenge };
}

await main(async () => {
  const cb = await startClientCallback();
  const redirectURI = `${cb.origin}/cb`;
  const gatePort = await freePort();
  const gate = `http://127.0.0.1:${gatePort}`;

  const idpConfig = path.join(OUT, 'fed-testidp.yaml');
  fs.writeFileSync(idpConfig, [
    'users:',
    `  - {username: ${ALICE.username}, password: ${ALICE.password}, email: ${ALICE.email}, groups: [Staff]}`,
    'clients:',
    `  - {id: mcpgate, secret: ${IDP_SECRET}, redirect_uris: ["${gate}/oauth/callback/tenant-a"]}`,
    `  - {id: conn-client, secret: ${IDP_SECRET}, redirect_uris: ["${gate}/connections/callback"]}`,
    '',
  ].join('\n'));
  // The IdP on another site than mcpgate (localhost vs 127.0.0.1), as a company's IdP is:
  // the callback is a cross-site navigation, which carries only SameSite=Lax cookies.
  const idpPort = await freePort();
  const idpIssuer = `http://localhost:${idpPort}`;
  const idp = run('fed-testidp', path.join(BIN, 'testidp'), ['-listen', `127.0.0.1:${idpPort}`, '-issuer', idpIssuer, '-config', idpConfig]);
  await must('federated: testidp starts', () => waitOutput(idp, /^testidp issuer (http:\/\/localhost:\d+)$/m, 15000));
  const idpOrigin = new URL(idpIssuer).origin;
  // Node may resolve localhost to ::1 first; the IdP listens on 127.0.0.1.
  const viaIPv4 = (u) => u.replace(/^http:\/\/localhost:/, 'http://127.0.0.1:');

  const gateConfig = path.join(OUT, 'fed-mcpgate.yaml');
  fs.mkdirSync(path.join(WORK, 'fed'), { recursive: true });
  fs.writeFileSync(gateConfig, `# Written by test/e2e/federated-signin.mjs for one run.
listen: 127.0.0.1:${gatePort}
store: {sqlite: "${path.join(WORK, 'fed', 'mcpgate.db')}"}
tenants:
  - name: tenant-a
    domains: [${TENANT_DOMAIN}]
    oidc: {issuer: "${idpIssuer}", client_id: mcpgate, client_secret: "${IDP_SECRET}"}
users:
  - {username: ${DEMO.username}, email: fed-demo@example.com, password_hash: "${DEMO_HASH}"}
oauth:
  clients:
    - id: ${CLIENT_ID}
      name: E2E Federated Client
      token_endpoint_auth_method: none
      grant_types: [authorization_code, refresh_token]
      redirect_uris: ["${redirectURI}"]
vault: {key_file: "${path.join(WORK, 'fed', 'vault.key')}"}
connections:
  # the test IdP doubles as a downstream service a user connects at /connections
  - name: idp-files
    description: files at the test IdP
    authorize_url: "${idpIssuer}/authorize"
    token_url: "${idpIssuer}/oauth/token"
    client_id: conn-client
    client_secret: "${IDP_SECRET}"
    scopes: [openid, email]
servers:
  - {name: demo, upstream: {url: "${FIXTURE_URL}"}, scopes: [mcp:tools]}
  - {name: other, upstream: {url: "${FIXTURE_URL}"}, scopes: [mcp:tools]}
`);
  const gw = run('fed-mcpgate', path.join(BIN, 'mcpgate'), ['serve', '--config', gateConfig]);
  await must('federated: mcpgate starts with a federated tenant', () =>
    waitOutput(gw, /^authorization server: (http:\/\/127\.0\.0\.1:\d+)$/m, 20000, 'both'));
  info(`mcpgate ${gate}, testidp ${idpIssuer}, client callback ${redirectURI}`);

  const { freshContext } = await must('federated: chromium starts (playwright-core)', () => launchChromium());

  /** authorizeURL(resource): a fresh authorization request; returns {url, state, verifier}. */
  const authorizeURL = (server = 'demo', extra = {}) => {
    const { verifier, challenge } = pkce();
    const state = crypto.randomBytes(12).toString('base64url');
    const q = new URLSearchParams({ response_type: 'code', client_id: CLIENT_ID, redirect_uri: redirectURI,
      code_challenge: challenge, code_challenge_method: 'S256', resource: `${gate}/mcp/${server}`, scope: 'mcp:tools',
      state, ...extra });
    return { url: `${gate}/oauth/authorize?${q}`, state, verifier, resource: `${gate}/mcp/${server}` };
  };

  /** A page that records every request it sends off loopback and to the client. */
  const newPage = async (opts = {}) => {
    const ctx = await freshContext(opts);
    defer(() => ctx.close());
    const page = await ctx.newPage();
    page.offLoopback = [];
    page.on('request', (r) => {
      const h = new URL(r.url()).hostname;
      if (r.url().startsWith('http') && h !== '127.0.0.1' && h !== 'localhost') page.offLoopback.push(r.url());
    });
    return page;
  };

  const submit = (page) => page.locator('main form button[type=submit]').first().click();

  /** At mcpgate's sign-in page: type the identifier; type a password only if asked for one. */
  const signInHere = async (page, identifier, password) => {
    await page.locator('input[name=username]').fill(identifier);
    const pw = page.locator('input[name=password]');
    if (password && await pw.isVisible()) await pw.fill(password);
    await submit(page);
    await page.waitForLoadState('load');
    if (password && new URL(page.url()).origin === gate && await pw.isVisible() && !(await pw.inputValue())) {
      await pw.fill(password); // identifier first: the password step
      await submit(page);
      await page.waitForLoadState('load');
    }
  };

  /** The IdP's own form. */
  const signInAtIdP = async (page) => {
    await page.waitForURL((u) => u.origin === idpOrigin, { waitUntil: 'load' });
    await page.locator('input[name=username]').fill(ALICE.username);
    await page.locator('input[name=password]').fill(ALICE.password);
    await page.locator('button[type=submit]').click();
  };

  const atClient = (page) => page.waitForURL((u) => u.origin === cb.origin, { waitUntil: 'load' });

  /** The client's side: exchange the code (PKCE) for tokens. */
  const redeem = async (a, code) => {
    const resp = await fetch(`${gate}/oauth/token`, { method: 'POST', body: new URLSearchParams({ grant_type: 'authorization_code',
      code, redirect_uri: redirectURI, client_id: CLIENT_ID, code_verifier: a.verifier, resource: a.resource }) });
    const body = await resp.json();
    assert(resp.status === 200 && body.access_token, `token endpoint: ${resp.status} ${JSON.stringify(body)}`);
    return body;
  };

  const codeAtClient = (page, a) => {
    const u = new URL(page.url());
    assert(u.pathname === '/cb', `client callback path ${u.pathname}`);
    assert(!u.searchParams.get('error'), `error=${u.searchParams.get('error')} ${u.searchParams.get('error_description')}`);
    assert(u.searchParams.get('state') === a.state, `state ${u.searchParams.get('state')}`);
    assert(u.searchParams.get('iss') === gate, `iss ${u.searchParams.get('iss')}`);
    const code = u.searchParams.get('code');
    assert(code, 'no code');
    return code;
  };

  // ---- 1. first federated sign-in: e-mail here, password at the IdP, consent, code ----
  const p1 = await newPage();
  const a1 = authorizeURL();
  await must('federated: the sign-in page asks for the work e-mail, not a password', async () => {
    const resp = await p1.goto(a1.url);
    assert(resp.status() === 200, `status ${resp.status()}`);
    const csp = await assertPageHeaders(resp, 'sign-in page');
    assert(!csp.includes(idpOrigin), `the sign-in page's form-action lists the IdP: ${csp}`);
    // Besides ourselves, exactly the request's registered redirect target (consent remembered).
    const fa = (csp.match(/(?:^|;)\s*form-action ([^;]*)/) || [])[1];
    assert(fa === `'self' ${cb.origin}`, `form-action ${fa}`);
    await p1.locator('input[name=username]').waitFor();
    assert(!(await p1.locator('input[type=password]').isVisible()), 'a password field is shown before the realm is known');
  });
  await must('federated: a work e-mail goes to the tenant IdP (CSP form-action lets it through)', async () => {
    await p1.locator('input[name=username]').fill(ALICE.email);
    await submit(p1);
    await p1.waitForURL((u) => u.origin === idpOrigin, { waitUntil: 'load' });
    info(`screenshot: ${rel(await screenshot(p1, 'fed-idp-login.png'))}`);
  });
  await must('federated: after the IdP, the consent page at mcpgate', async () => {
    await signInAtIdP(p1);
    await p1.getByRole('button', ALLOW).waitFor();
    assert(new URL(p1.url()).origin === gate, `consent at ${p1.url()}`);
    const body = await p1.locator('body').innerText();
    assert(body.includes(ALICE.email), 'consent page does not name the signed-in user');
    info(`screenshot: ${rel(await screenshot(p1, 'fed-consent.png'))}`);
  });
  await must('federated: Allow reaches the client with a code that redeems', async () => {
    await Promise.all([atClient(p1), p1.getByRole('button', ALLOW).click()]);
    await redeem(a1, codeAtClient(p1, a1));
  });

  // ---- 2. again from a fresh browser: consent is remembered, straight to the client ----
  await must('federated: fresh browser (JavaScript off) with remembered consent reaches the client with a code', async () => {
    const p = await newPage({ javaScriptEnabled: false });
    const a = authorizeURL();
    await p.goto(a.url);
    await p.locator('input[name=username]').fill(ALICE.email);
    await submit(p);
    await signInAtIdP(p);
    await atClient(p);
    await redeem(a, codeAtClient(p, a));
    assert(p.offLoopback.length === 0, `requests off loopback: ${p.offLoopback}`);
  });

  // ---- 3. deny: consent for demo does not cover "other"; Deny → access_denied ----
  await check('federated: consent for one server does not cover another; Deny gives error=access_denied', async () => {
    const a = authorizeURL('other');
    await p1.goto(a.url); // p1 is signed in at mcpgate
    await p1.getByRole('button', { name: 'Deny', exact: true }).waitFor();
    await Promise.all([atClient(p1), p1.getByRole('button', { name: 'Deny', exact: true }).click()]);
    const u = new URL(p1.url());
    assert(u.searchParams.get('error') === 'access_denied', `error=${u.searchParams.get('error')}`);
    assert(u.searchParams.get('state') === a.state, `state ${u.searchParams.get('state')}`);
    assert(u.searchParams.get('iss') === gate, `iss ${u.searchParams.get('iss')}`);
    assert(!u.searchParams.get('code'), 'a code came with the denial');
  });

  // ---- 3b. /connections: Connect through a page to the provider and back ----
  await check('connections: Connect goes to the provider and back; the page says so', async () => {
    const resp = await p1.goto(`${gate}/connections`);
    const csp = await assertPageHeaders(resp, 'connections page');
    assert(/form-action 'self';/.test(csp), `connections page form-action: ${csp}`);
    await p1.locator('#idp-files button[type=submit]').click();
    await signInAtIdP(p1);
    await p1.waitForURL((u) => u.origin === gate && u.pathname === '/connections', { waitUntil: 'load' });
    const status = await p1.locator('[role=status]').innerText();
    assert(status.includes('idp-files is connected'), `status ${JSON.stringify(status)}`);
    assert((await p1.locator('#idp-files').innerText()).includes('Connected since'), 'not shown as connected');
  });
  await check('connections: ?msg= text from a link is never shown', async () => {
    await p1.goto(`${gate}/connections?msg=${encodeURIComponent('Your account is locked: call +1 555 0100')}&name=idp-files`);
    const body = await p1.locator('main').innerText();
    assert(!body.includes('555'), 'the page shows text from the query');
  });

  // ---- 4. a built-in user: password here; remembered consent from a fresh browser ----
  await check('built-in user: password sign-in, consent, code', async () => {
    const p = await newPage();
    const a = authorizeURL();
    await p.goto(a.url);
    await signInHere(p, DEMO.username, DEMO.password);
    await p.getByRole('button', ALLOW).waitFor();
    await Promise.all([atClient(p), p.getByRole('button', ALLOW).click()]);
    await redeem(a, codeAtClient(p, a));
  });
  await check('built-in user: fresh browser with remembered consent reaches the client with a code', async () => {
    const p = await newPage();
    const a = authorizeURL();
    await p.goto(a.url);
    await signInHere(p, DEMO.username, DEMO.password);
    await atClient(p);
    await redeem(a, codeAtClient(p, a));
  });

  // ---- 5. login CSRF: a callback minted in the attacker's browser, opened by the victim ----
  await check("federated: a callback from another browser's sign-in signs nobody in", async () => {
    const attacker = await newPage();
    const a = authorizeURL();
    await attacker.goto(a.url);
    await attacker.locator('input[name=username]').fill(ALICE.email);
    await submit(attacker);
    await attacker.waitForURL((u) => u.origin === idpOrigin, { waitUntil: 'load' });
    // The attacker signs in at the IdP but keeps the way back to mcpgate for the victim
    // (routes see only the first request of a redirect chain, so walk it by hand).
    const action = new URL(await attacker.locator('form').getAttribute('action'), attacker.url()).href;
    const req = attacker.context().request;
    let resp = await req.post(viaIPv4(action), { maxRedirects: 0, form: { authRequestID: await attacker.locator('input[name=authRequestID]').inputValue(),
      username: ALICE.username, password: ALICE.password } });
    let stolen;
    for (let i = 0; i < 5 && resp.status() >= 300 && resp.status() < 400; i++) {
      const loc = new URL(resp.headers().location, resp.url()).href;
      if (loc.startsWith(`${gate}/oauth/callback/`)) {
        stolen = loc;
        break;
      }
      resp = await req.get(viaIPv4(loc), { maxRedirects: 0 });
    }
    assert(stolen, 'the attacker never reached the callback');
    const victim = await newPage();
    const hitsBefore = cb.hits.length;
    const vresp = await victim.goto(stolen);
    assert(new URL(victim.url()).origin === gate, `the victim was sent to ${victim.url()}`);
    assert(vresp.status() === 400, `callback answered ${vresp.status()}`);
    await assertPageHeaders(vresp, 'callback error page');
    assert(/did not start in this browser/i.test(await victim.locator('main').innerText()), 'no clear error');
    assert(cb.hits.length === hitsBefore, `the client received ${cb.hits.slice(hitsBefore)}`);
    // Not signed in: a new authorization asks who you are.
    await victim.goto(authorizeURL().url);
    await victim.locator('input[name=username]').waitFor();
    info(`screenshot: ${rel(await screenshot(victim, 'fed-login-csrf.png'))}`);
  });

  // ---- 6. error pages render here and never redirect ----
  const errorPage = async (url, wantStatus, wantText) => {
    const p = await newPage();
    const hitsBefore = cb.hits.length;
    const resp = await p.goto(url);
    assert(resp.status() === wantStatus, `status ${resp.status()}, want ${wantStatus}`);
    assert(new URL(p.url()).origin === gate, `navigated to ${p.url()}`);
    await assertPageHeaders(resp, 'error page');
    const text = await p.locator('main').innerText();
    assert(wantText.test(text), `page says ${JSON.stringify(text.slice(0, 200))}`);
    assert(cb.hits.length === hitsBefore, `the client callback was called: ${cb.hits.slice(hitsBefore)}`);
    assert(p.offLoopback.length === 0, `requests off loopback: ${p.offLoopback}`);
    return p;
  };
  await check('error page: unknown client', () =>
    errorPage(authorizeURL('demo', { client_id: 'no-such-client' }).url, 400, /not registered/i));
  await check('error page: unregistered redirect URI (same host, other path)', () =>
    errorPage(authorizeURL('demo', { redirect_uri: `${cb.origin}/evil` }).url, 400, /did not register/i));
  await check('error page: unregistered redirect URI (another host)', () =>
    errorPage(authorizeURL('demo', { redirect_uri: 'https://evil.example/cb' }).url, 400, /did not register/i));
  await check('error page: garbled federated state', () =>
    errorPage(`${gate}/oauth/callback/tenant-a?code=x&state=not-a-sealed-state`, 400, /start again/i));
  await check('error page: a state sealed for another purpose (the login form\'s request)', async () => {
    const p = await newPage();
    await p.goto(authorizeURL().url);
    const sealed = await p.locator('input[name=request]').inputValue();
    await errorPage(`${gate}/oauth/callback/tenant-a?code=x&state=${encodeURIComponent(sealed)}`, 400, /start again/i);
  });

  // ---- 7. return after sign-in stays on mcpgate's origin ----
  for (const ret of ['/%09/evil.example', '/\\evil.example', '//evil.example', 'https:evil.example', '/\t/evil.example']) {
    await check(`sign-in return ${JSON.stringify(ret)} stays on mcpgate`, async () => {
      const p = await newPage();
      await p.goto(`${gate}/oauth/signin?return=${encodeURIComponent(ret)}`);
      await signInHere(p, DEMO.username, DEMO.password);
      await p.waitForLoadState('load');
      const u = p.url();
      assert(u.startsWith(`${gate}/`), `after sign-in the browser is at ${u}`);
      assert(p.offLoopback.length === 0, `requests off loopback: ${p.offLoopback}`);
    });
  }
});
