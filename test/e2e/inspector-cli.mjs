// The MCP Inspector CLI against the protected demo server, with the access
// token of a pre-registered machine client (client_credentials grant).
// Its build/index.js is run from its own directory (it fails from elsewhere).
import path from 'node:path';
import { NODE, TOOLS, assert, check, env, info, main, must, rel, run, withTimeout } from './lib.mjs';

const ISSUER = env('E2E_ISSUER');
const RESOURCE = env('E2E_RESOURCE');
const CLIENT_ID = env('E2E_MACHINE_CLIENT_ID');
const SECRET = env('E2E_MACHINE_SECRET');
const CLI_DIR = path.join(TOOLS, '@modelcontextprotocol/inspector-cli/build');

let runs = 0;
/** inspector(args): runs the CLI to completion; returns {code, out, err, logFile}. */
async function inspector(args, redact) {
  const p = run(`inspector-cli-${++runs}`, NODE, ['index.js', RESOURCE, '--transport', 'http', ...args], {
    cwd: CLI_DIR, redact,
  });
  p.child.stdin.end();
  await withTimeout(p.exited, 30000, `inspector-cli ${args.join(' ')}`);
  return p;
}

function json(p) {
  try {
    return JSON.parse(p.out);
  } catch {
    throw new Error(`exit ${p.code}, output is not JSON: ${(p.out + p.err).slice(0, 300)}; log: ${rel(p.logFile)}`);
  }
}

await main(async () => {
  const token = await must('inspector: client_credentials grant gives the machine client a token for the demo server', async () => {
    const resp = await fetch(`${ISSUER}/oauth/token`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${CLIENT_ID}:${SECRET}`).toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource: RESOURCE }),
      signal: AbortSignal.timeout(10000),
    });
    const body = await resp.json();
    assert(resp.status === 200 && body.access_token, `POST /oauth/token: ${resp.status} ${JSON.stringify(body)}`);
    assert(body.token_type?.toLowerCase() === 'bearer', `token_type ${body.token_type}`);
    info(`token: ${body.token_type}, expires_in ${body.expires_in}, scope ${body.scope}`);
    return body.access_token;
  });
  const auth = ['--header', `Authorization: Bearer ${token}`];
  const redact = (s) => s.split(token).join('<token>');

  await check('inspector: tools/list with the bearer token lists echo', async () => {
    const p = await inspector([...auth, '--method', 'tools/list'], redact);
    assert(p.code === 0, `exit ${p.code}: ${p.err.slice(0, 300)}`);
    const names = (json(p).tools || []).map((t) => t.name);
    assert(names.includes('echo'), `tools: ${names.join(', ')}`);
  });
  await check('inspector: tools/call echo text=hi with the bearer token returns "hi"', async () => {
    const p = await inspector([...auth, '--method', 'tools/call', '--tool-name', 'echo', '--tool-arg', 'text=hi'], redact);
    assert(p.code === 0, `exit ${p.code}: ${p.err.slice(0, 300)}`);
    const r = json(p);
    const text = (r.content || []).filter((c) => c.type === 'text').map((c) => c.text).join('');
    assert(!r.isError && text === 'hi', `result ${JSON.stringify(r)}`);
  });
  await check('inspector: without the Authorization header it fails (the gateway answers 401)', async () => {
    const p = await inspector(['--method', 'tools/list']);
    assert(p.code !== 0, `exit 0 without a token: ${p.out.slice(0, 300)}`);
    // The CLI prints the gateway's 401 body ({"error":"unauthorized",...}), not the status.
    assert(/"error":"unauthorized"/.test(p.out + p.err), `no 401 body in the output: ${(p.out + p.err).slice(0, 300)}`);
    // The same request, checked for its status and challenge.
    const resp = await fetch(RESOURCE, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18',
        capabilities: {}, clientInfo: { name: 'e2e', version: '0' } } }),
      signal: AbortSignal.timeout(10000),
    });
    await resp.arrayBuffer();
    const challenge = resp.headers.get('www-authenticate') || '';
    assert(resp.status === 401, `POST ${RESOURCE} without a token: ${resp.status}`);
    assert(/^Bearer .*resource_metadata="[^"]+"/.test(challenge), `WWW-Authenticate: ${challenge}`);
  });
  await check('inspector: a bearer token that is not ours fails (invalid_token)', async () => {
    const p = await inspector(['--header', 'Authorization: Bearer not-a-valid-token', '--method', 'tools/list']);
    assert(p.code !== 0, `exit 0 with a bad token: ${p.out.slice(0, 300)}`);
    assert(/"error":"invalid_token"/.test(p.out + p.err), `no invalid_token in the output: ${(p.out + p.err).slice(0, 300)}`);
  });
});
