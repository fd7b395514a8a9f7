// Shared helpers for the end-to-end tests (run by scripts/e2e.sh with Node 22).
//
// Every test prints one line per check, `PASS <name>` or `FAIL <name>: <why>`;
// scripts/e2e.sh counts them. Everything the tests start (child processes,
// the browser) is registered with defer() and stopped when the test ends,
// even when a check fails or a wait times out.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

/** env(NAME): a variable scripts/e2e.sh must have set. */
export function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (run this test through scripts/e2e.sh)`);
  return v;
}

export const TOOLS = env('E2E_TOOLS'); // .cache/tools/node_modules
export const OUT = env('E2E_OUT'); // .cache/e2e: logs, screenshots, results
export const WORK = env('E2E_WORK'); // a temporary directory, removed afterwards
export const NODE = process.execPath;

let failed = 0;
let passed = 0;
const cleanups = [];

/** Registers fn to run (last registered, first run) when the test ends. */
export function defer(fn) {
  cleanups.push(fn);
}

class Abort extends Error {}

function oneLine(err) {
  const s = err instanceof Error ? err.message : String(err);
  return s.replace(/\s+/g, ' ').trim().slice(0, 600);
}

/** check(name, fn): runs fn; prints PASS or FAIL; returns fn's value (undefined on failure). */
export async function check(name, fn) {
  try {
    const v = await fn();
    passed++;
    console.log(`PASS ${name}`);
    return v;
  } catch (err) {
    failed++;
    console.log(`FAIL ${name}: ${oneLine(err)}`);
    return undefined;
  }
}

/** must(name, fn): like check, but a failure ends the test (later checks depend on it). */
export async function must(name, fn) {
  try {
    const v = await fn();
    passed++;
    console.log(`PASS ${name}`);
    return v;
  } catch (err) {
    failed++;
    console.log(`FAIL ${name}: ${oneLine(err)}`);
    throw new Abort(name);
  }
}

export function info(msg) {
  console.log(`  ${msg}`);
}

/** main(fn): runs the test body, then the cleanups; exit status 1 if anything failed. */
export async function main(fn) {
  const stop = (sig) => {
    console.log(`FAIL interrupted by ${sig}`);
    runCleanups().finally(() => process.exit(1));
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  try {
    await fn();
  } catch (err) {
    if (!(err instanceof Abort)) {
      failed++;
      console.log(`FAIL unexpected error: ${oneLine(err)}`);
      if (err instanceof Error && err.stack) console.error(err.stack);
    }
  }
  await runCleanups();
  if (passed + failed === 0) {
    console.log('FAIL no check ran');
    failed++;
  }
  process.exit(failed ? 1 : 0);
}

async function runCleanups() {
  while (cleanups.length) {
    const fn = cleanups.pop();
    try {
      await withTimeout(Promise.resolve().then(fn), 15000, 'cleanup');
    } catch (err) {
      console.error(`cleanup: ${oneLine(err)}`);
    }
  }
}

export function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function withTimeout(promise, ms, what) {
  let t;
  const timeout = new Promise((_, reject) => {
    t = setTimeout(() => reject(new Error(`timed out after ${ms / 1000} s: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(t));
}

/** waitFor(what, ms, fn): polls fn every 100 ms until it returns a truthy value. */
export async function waitFor(what, ms, fn) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms / 1000} s waiting for ${what}`);
    await sleep(100);
  }
}

/**
 * run(name, cmd, args, opts): starts a process with pipes; its stdout and stderr are
 * kept (p.out, p.err) and copied to OUT/<name>.log (through opts.redact, if given).
 * Stopped by the test's cleanup.
 */
export function run(name, cmd, args, opts = {}) {
  const { redact = (s) => s, ...spawnOpts } = opts; // redact: hides secrets in the log
  const logFile = path.join(OUT, `${name}.log`);
  const log = fs.createWriteStream(logFile);
  log.write(redact(`$ ${[cmd, ...args].join(' ')}\n`));
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], ...spawnOpts });
  const p = { name, child, out: '', err: '', logFile, code: undefined, signal: undefined };
  child.stdout.on('data', (d) => {
    p.out += d;
    log.write(redact(String(d)));
  });
  child.stderr.on('data', (d) => {
    p.err += d;
    log.write(redact(String(d)));
  });
  p.exited = new Promise((resolve) => {
    child.once('error', (err) => {
      p.err += `spawn error: ${err.message}\n`;
      p.code = -1;
      resolve(-1);
    });
    child.once('close', (code, signal) => {
      p.code = code;
      p.signal = signal;
      log.end(`\n[exit ${code ?? signal}]\n`);
      resolve(code);
    });
  });
  p.running = () => p.code === undefined;
  p.stop = async () => {
    if (!p.running()) return;
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 5000);
    await p.exited;
    clearTimeout(t);
  };
  defer(p.stop);
  return p;
}

/** waitOutput(p, re, ms, stream): waits until p's stdout (or 'err', 'both') matches re; returns the match. */
export function waitOutput(p, re, ms, stream = 'out') {
  const text = () => (stream === 'out' ? p.out : stream === 'err' ? p.err : p.out + p.err);
  return waitFor(`${p.name} to print ${re}`, ms, () => {
    const m = text().match(re);
    if (m) return m;
    if (!p.running()) {
      throw new Error(`${p.name} exited (${p.code ?? p.signal}) before printing ${re}; log: ${rel(p.logFile)}`);
    }
    return null;
  });
}

export function rel(f) {
  return path.relative(process.cwd(), f) || f;
}

// ---------------------------------------------------------------------------
// The browser: Debian's chromium driven by playwright-core.
// ---------------------------------------------------------------------------
const require = createRequire(path.join(TOOLS, 'noop.js'));

export const CHROMIUM = process.env.E2E_CHROMIUM || '/usr/bin/chromium';
// Required on this closed network (no GPU, no sandbox in containers, nothing phoning home).
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** launchBrowser(name): chromium with a fresh profile in WORK; returns a BrowserContext. */
export async function launchBrowser(name) {
  const { chromium } = require('playwright-core');
  const profile = fs.mkdtempSync(path.join(WORK, `chromium-${name}-`));
  const ctx = await withTimeout(
    chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 900, height: 700 },
      timeout: 30000,
    }),
    40000,
    'chromium to start',
  );
  ctx.setDefaultTimeout(15000);
  ctx.setDefaultNavigationTimeout(15000);
  defer(() => ctx.close());
  return ctx;
}

/** screenshot(page, file): a full-page PNG in OUT; returns its path. */
export async function screenshot(page, file) {
  const f = path.join(OUT, file);
  await page.screenshot({ path: f, fullPage: true });
  return f;
}

/** assertPageHeaders(resp, what): the protections every sign-in page must carry. */
export async function assertPageHeaders(resp, what) {
  assert(resp, `${what}: no response`);
  const h = await resp.allHeaders();
  const csp = h['content-security-policy'] || '';
  assert(csp, `${what}: no Content-Security-Policy header`);
  assert(/(^|;)\s*frame-ancestors 'none'\s*(;|$)/.test(csp), `${what}: CSP lacks frame-ancestors 'none': ${csp}`);
  return csp;
}

// The buttons a person clicks (getByRole options).
export const SIGN_IN = { name: 'Sign in', exact: true };
export const ALLOW = { name: 'Allow', exact: true };

/** submitAndWait(page, button, actionPath): clicks the button (getByRole options); returns the form POST's response. */
export async function submitAndWait(page, button, actionPath) {
  const [resp] = await Promise.all([
    page.waitForResponse((r) => r.request().isNavigationRequest() && r.request().method() === 'POST' &&
      new URL(r.url()).pathname === actionPath),
    page.getByRole('button', button).click(),
  ]);
  await page.waitForLoadState('load');
  return resp;
}

/**
 * launchChromium(): one chromium (fresh profile, removed on exit) whose newContext() is a
 * fresh browser each time: no cookies, no storage, nothing shared with other contexts.
 * Cheaper than a process per browser when a test needs several.
 */
export async function launchChromium() {
  const { chromium } = require('playwright-core');
  const browser = await withTimeout(
    chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 30000 }),
    40000,
    'chromium to start',
  );
  defer(() => browser.close());
  return {
    browser,
    /** freshContext(opts): a new browser context (playwright options, e.g. javaScriptEnabled) with the suite's timeouts. */
    async freshContext(opts = {}) {
      const ctx = await browser.newContext({ viewport: { width: 900, height: 700 }, ...opts });
      ctx.setDefaultTimeout(15000);
      ctx.setDefaultNavigationTimeout(15000);
      return ctx;
    },
  };
}
