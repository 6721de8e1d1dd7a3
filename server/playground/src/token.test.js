import assert from 'node:assert/strict';
import { test } from 'node:test';

import { DEFAULT_HEADERS, PLACEHOLDER, tokenFrom, withAuthorization } from './token.js';

test('tokenFrom', async (t) => {
  const cases = [
    ['register', { data: { register: { accessToken: 'a1', user: { id: 'US1' } } } }, 'a1'],
    ['login under an alias', { data: { signIn: { accessToken: 'a2' } } }, 'a2'],
    ['refresh', { data: { refresh: { accessToken: 'a3', refreshToken: 'r' } } }, 'a3'],
    ['failed login', { data: null, errors: [{ message: 'invalid credentials' }] }, null],
    ['partial data with errors', { data: { login: { accessToken: 'x' } }, errors: [{ message: 'e' }] }, null],
    ['no payload', { data: { me: { id: 'US1' } } }, null],
    ['null field', { data: { login: null } }, null],
    ['not a result', undefined, null],
  ];
  for (const [name, result, want] of cases) {
    await t.test(name, () => assert.equal(tokenFrom(result), want));
  }
});

test('withAuthorization', async (t) => {
  const bearer = (tok) => JSON.stringify({ Authorization: `Bearer ${tok}` }, null, 2);
  const cases = [
    ['replaces the placeholder', DEFAULT_HEADERS, new Set(), bearer('t')],
    ['fills an empty editor', '  ', new Set(), bearer('t')],
    ['adds a missing header, keeping others', '{"X-Request-ID": "r1"}', new Set(),
      JSON.stringify({ 'X-Request-ID': 'r1', Authorization: 'Bearer t' }, null, 2)],
    ['replaces a token it set before', bearer('old'), new Set(['Bearer old']), bearer('t')],
    ['keeps the case of the key', `{"authorization": "${PLACEHOLDER}"}`, new Set(),
      JSON.stringify({ authorization: 'Bearer t' }, null, 2)],
    ['keeps a token the user pasted', bearer('mine'), new Set(['Bearer old']), bearer('mine')],
    ['keeps text being typed', '{"Authorization": "Bea', new Set(), '{"Authorization": "Bea'],
    ['keeps a non-object', '["x"]', new Set(), '["x"]'],
    ['no change when already set', bearer('t'), new Set(), bearer('t')],
  ];
  for (const [name, text, ours, want] of cases) {
    await t.test(name, () => assert.equal(withAuthorization(text, 't', ours), want));
  }
});
