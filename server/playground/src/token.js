// Keeping the Authorization header in step with the tokens the server hands
// out. Pure functions, so `npm test` (node --test) checks them without a
// browser.

/** The value the headers editor starts with, in every tab. */
export const PLACEHOLDER = 'Bearer <paste accessToken here>';

/** The headers editor's initial contents. */
export const DEFAULT_HEADERS = JSON.stringify({ Authorization: PLACEHOLDER }, null, 2);

/**
 * tokenFrom returns the accessToken of an AuthPayload in a successful
 * response (register, login, refresh, changePassword, or any alias of
 * them), or null. A response with errors yields nothing: a failed login
 * must not replace a working token.
 */
export function tokenFrom(result) {
  if (!result || typeof result !== 'object' || result.errors?.length || !result.data) {
    return null;
  }
  let token = null;
  for (const value of Object.values(result.data)) {
    if (value && typeof value === 'object' && typeof value.accessToken === 'string' && value.accessToken) {
      token = value.accessToken;
    }
  }
  return token;
}

/**
 * withAuthorization returns the headers editor text with Authorization set
 * to the token, or the text unchanged when it is not ours to change: it
 * replaces only a missing header, the placeholder, or a token this page
 * put there itself (`ours`), never one the user pasted, and never touches
 * text that is not a JSON object (the user is typing). Other headers are
 * kept.
 */
export function withAuthorization(text, token, ours = new Set()) {
  let headers = {};
  if (text.trim() !== '') {
    try {
      headers = JSON.parse(text);
    } catch {
      return text;
    }
    if (!headers || typeof headers !== 'object' || Array.isArray(headers)) {
      return text;
    }
  }
  const key = Object.keys(headers).find((k) => k.toLowerCase() === 'authorization') ?? 'Authorization';
  const current = headers[key];
  const want = `Bearer ${token}`;
  if (current === want) {
    return text;
  }
  const replaceable =
    current === undefined || current === PLACEHOLDER || (typeof current === 'string' && ours.has(current));
  if (!replaceable) {
    return text;
  }
  return JSON.stringify({ ...headers, [key]: want }, null, 2);
}
