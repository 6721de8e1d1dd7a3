// Sends a query with @defer asking for multipart/mixed, as Apollo Client
// does, reads the response part by part with meros, and reports each part
// as a JSON line on stdout, for server/sse_client_e2e_test.go to check:
//
//   {"status":200,"contentType":"multipart/mixed; ..."}   the response
//   {"part":{...}}                                          each JSON part
//
// Usage: DEFER_URL=http://127.0.0.1:PORT/query DEFER_TOKEN=<access token> DEFER_QUERY='...' node defer.mjs
import http from 'node:http';
import { meros } from 'meros';

const say = (v) => process.stdout.write(JSON.stringify(v) + '\n');
const body = JSON.stringify({ query: process.env.DEFER_QUERY });

const res = await new Promise((resolve, reject) => {
  const req = http.request(process.env.DEFER_URL, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'multipart/mixed;deferSpec=20220824, application/json;q=0.9',
      authorization: `Bearer ${process.env.DEFER_TOKEN}`,
    },
  }, resolve);
  req.on('error', reject);
  req.end(body);
});
say({ status: res.statusCode, contentType: res.headers['content-type'] });
const parts = await meros(res);
if (!(Symbol.asyncIterator in parts)) {
  say({ error: 'not a multipart response' });
  process.exit(1);
}
for await (const part of parts) {
  if (!part.json) {
    say({ error: `a part that is not JSON: ${part.body}` });
    process.exit(1);
  }
  say({ part: part.body });
}
