// The GraphQL-over-HTTP audit (graphql-http's auditServer) against a
// running server: node audit.mjs http://127.0.0.1:PORT/query
// Every MUST and every SHOULD must pass; a MAY that fails is printed as a
// notice. Exits 1 if a MUST or SHOULD fails, 2 on a fatal error.
import { auditServer } from 'graphql-http';

const url = process.argv[2];
if (!url) {
  console.error('usage: node audit.mjs URL');
  process.exit(2);
}

const results = await auditServer({ url });
const mark = { ok: 'ok    ', notice: 'MAY   ', warn: 'FAIL  ', error: 'FAIL  ' };
let failed = 0;
for (const r of results) {
  let line = `${mark[r.status]} ${r.id} ${r.name}`;
  if (r.status !== 'ok') {
    const body = await r.response.text().catch(() => '');
    line += `\n         ${r.reason}: ${r.response.status} ${r.response.headers.get('content-type')} ${body.slice(0, 300)}`;
  }
  if (r.status === 'warn' || r.status === 'error') failed++;
  console.log(line);
}
const count = (s) => results.filter((r) => r.status === s).length;
console.log(
  `\n${results.length} audits: ${count('ok')} passed, ${count('error')} MUST and ${count('warn')} SHOULD failed, ${count('notice')} MAY not taken`,
);
process.exit(failed ? 1 : 0);
