// Subscribes with the graphql-sse client (distinct connections mode) and
// reports what it sees as JSON lines on stdout, for server/sse_client_e2e_test.go
// to drive and check:
//
//   {"step":"refused","status":401,"code":"UNAUTHENTICATED"}  a subscription without a token
//   {"step":"next","payload":{...}}                          each event of the one with SSE_TOKEN
//   {"step":"complete"} or {"step":"error","message":"..."}   how it ended
//
// Usage: SSE_URL=http://127.0.0.1:PORT/query SSE_TOKEN=<access token> node subscribe.mjs
import { createClient, NetworkError } from 'graphql-sse';

const url = process.env.SSE_URL;
const token = process.env.SSE_TOKEN;
const query = 'subscription { postCreated { id title author { name } } }';
const say = (v) => process.stdout.write(JSON.stringify(v) + '\n');

// The body of the last refusal: the client aborts the request once it
// has seen the status, so it is read as it arrives.
let refusalBody = null;
async function fetchFn(input, init) {
  const res = await fetch(input, init);
  if (!res.ok) refusalBody = await res.clone().json();
  return res;
}

// Streams and their refusals as the client reads them; no retries, so a
// refusal is reported rather than retried.
function subscribe(headers) {
  const client = createClient({ url, headers, fetchFn, retryAttempts: 0 });
  return new Promise((resolve) => {
    client.subscribe(
      { query },
      {
        next: (payload) => say({ step: 'next', payload }),
        error: (err) => resolve({ err }),
        complete: () => resolve({}),
      },
    );
  }).finally(() => client.dispose());
}

const refused = await subscribe({});
if (refused.err instanceof NetworkError && refused.err.response) {
  const code = refusalBody?.errors?.[0]?.extensions?.code;
  say({ step: 'refused', status: refused.err.response.status, code });
} else {
  say({ step: 'error', message: `unauthenticated subscription not refused: ${refused.err ?? 'completed'}` });
  process.exit(1);
}

const ended = await subscribe({ Authorization: `Bearer ${token}` });
if (ended.err) {
  say({ step: 'error', message: String(ended.err) });
  process.exit(1);
}
say({ step: 'complete' });
