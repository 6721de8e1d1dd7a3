// A typed authql client for the browser: the operations as typed documents
// (graphql-codegen's client preset turns each graphql(`...`) call into a
// TypedDocumentString with its result and variable types), and a small
// fetch-based helper that sends them with the access token, refreshes it
// when it expires, and backs off when rate-limited.
//
//   const api = createApi({ url: '/query', tokens: memoryTokens() });
//   await api.signIn('ann@example.com', 'correct horse');
//   const { posts } = await api.request(PostsQuery, { first: 10 });

import { graphql } from './gql';
import type { TypedDocumentString } from './gql/graphql';

// ---- Documents ------------------------------------------------------------

export const UserFields = graphql(`
  fragment UserFields on User {
    id
    email
    emailVerified
    name
    role
    createdAt
  }
`);

export const AuthFields = graphql(`
  fragment AuthFields on AuthPayload {
    accessToken
    refreshToken
    tokenType
    expiresIn
    user {
      ...UserFields
    }
  }
`);

export const PostFields = graphql(`
  fragment PostFields on Post {
    id
    title
    content
    createdAt
    updatedAt
    author {
      id
      name
    }
  }
`);

export const PageFields = graphql(`
  fragment PageFields on PageInfo {
    hasNextPage
    hasPreviousPage
    startCursor
    endCursor
  }
`);

export const RegisterMutation = graphql(`
  mutation Register($input: RegisterInput!) {
    register(input: $input) {
      ...AuthFields
    }
  }
`);

export const LoginMutation = graphql(`
  mutation Login($input: LoginInput!) {
    login(input: $input) {
      ...AuthFields
    }
  }
`);

export const RefreshMutation = graphql(`
  mutation Refresh($refreshToken: String!) {
    refresh(refreshToken: $refreshToken) {
      ...AuthFields
    }
  }
`);

export const LogoutMutation = graphql(`
  mutation Logout($scope: LogoutScope) {
    logout(scope: $scope)
  }
`);

export const MeQuery = graphql(`
  query Me {
    me {
      ...UserFields
    }
  }
`);

export const UpdateMeMutation = graphql(`
  mutation UpdateMe($input: UpdateMeInput!) {
    updateMe(input: $input) {
      ...UserFields
    }
  }
`);

export const MySessionsQuery = graphql(`
  query MySessions {
    mySessions {
      id
      createdAt
      lastUsedAt
      userAgent
      ip
      current
    }
  }
`);

export const RevokeSessionMutation = graphql(`
  mutation RevokeSession($id: ID!) {
    revokeSession(id: $id)
  }
`);

export const ChangePasswordMutation = graphql(`
  mutation ChangePassword($currentPassword: String!, $newPassword: String!) {
    changePassword(currentPassword: $currentPassword, newPassword: $newPassword) {
      ...AuthFields
    }
  }
`);

// The links of mails carry a token (the `token` parameter of the page's
// URL): verifyEmail and resetPassword spend it. The other two always
// answer true, whether or not the address has an account.
export const VerifyEmailMutation = graphql(`
  mutation VerifyEmail($token: String!) {
    verifyEmail(token: $token)
  }
`);

export const ResendVerificationMutation = graphql(`
  mutation ResendVerification($email: String!) {
    resendVerification(email: $email)
  }
`);

export const RequestPasswordResetMutation = graphql(`
  mutation RequestPasswordReset($email: String!) {
    requestPasswordReset(email: $email)
  }
`);

export const ResetPasswordMutation = graphql(`
  mutation ResetPassword($token: String!, $newPassword: String!) {
    resetPassword(token: $token, newPassword: $newPassword)
  }
`);

// Two-factor sign-in. A login of an account with it on fails with
// extensions.code MFA_REQUIRED; extensions.mfaChallenge goes to VerifyMfa.
export const EnrollTotpMutation = graphql(`
  mutation EnrollTotp {
    enrollTotp {
      secret
      uri
      qrCode
    }
  }
`);

export const ConfirmTotpMutation = graphql(`
  mutation ConfirmTotp($code: String!) {
    confirmTotp(code: $code)
  }
`);

export const VerifyMfaMutation = graphql(`
  mutation VerifyMfa($challenge: String!, $code: String!) {
    verifyMfa(challenge: $challenge, code: $code) {
      ...AuthFields
    }
  }
`);

export const DisableTotpMutation = graphql(`
  mutation DisableTotp($code: String!) {
    disableTotp(code: $code)
  }
`);

export const RegenerateRecoveryCodesMutation = graphql(`
  mutation RegenerateRecoveryCodes {
    regenerateRecoveryCodes
  }
`);

export const MySecurityEventsQuery = graphql(`
  query MySecurityEvents($first: Int, $after: Cursor) {
    mySecurityEvents(first: $first, after: $after) {
      totalCount
      pageInfo {
        ...PageFields
      }
      edges {
        cursor
        node {
          id
          kind
          createdAt
          address
          device
        }
      }
    }
  }
`);

export const CreatePostMutation = graphql(`
  mutation CreatePost($input: CreatePostInput!) {
    createPost(input: $input) {
      ...PostFields
    }
  }
`);

export const UpdatePostMutation = graphql(`
  mutation UpdatePost($id: ID!, $input: UpdatePostInput!) {
    updatePost(id: $id, input: $input) {
      ...PostFields
    }
  }
`);

export const DeletePostMutation = graphql(`
  mutation DeletePost($id: ID!) {
    deletePost(id: $id)
  }
`);

export const PostQuery = graphql(`
  query Post($id: ID!) {
    post(id: $id) {
      ...PostFields
    }
  }
`);

export const PostsQuery = graphql(`
  query Posts($first: Int, $after: Cursor, $orderBy: PostOrder) {
    posts(first: $first, after: $after, orderBy: $orderBy) {
      totalCount
      pageInfo {
        ...PageFields
      }
      edges {
        cursor
        node {
          ...PostFields
        }
      }
    }
  }
`);

export const UserWithPostsQuery = graphql(`
  query UserWithPosts($id: ID!, $first: Int, $after: Cursor) {
    user(id: $id) {
      ...UserFields
      posts(first: $first, after: $after) {
        totalCount
        pageInfo {
          ...PageFields
        }
        edges {
          cursor
          node {
            id
            title
            createdAt
          }
        }
      }
    }
  }
`);

export const UsersQuery = graphql(`
  query Users($first: Int, $after: Cursor) {
    users(first: $first, after: $after) {
      totalCount
      pageInfo {
        ...PageFields
      }
      edges {
        cursor
        node {
          ...UserFields
        }
      }
    }
  }
`);

export const NodeQuery = graphql(`
  query Node($id: ID!) {
    node(id: $id) {
      __typename
      id
      ... on User {
        ...UserFields
      }
      ... on Post {
        ...PostFields
      }
    }
  }
`);

// ---- Sending them -----------------------------------------------------------

/** The token pair of a session. */
export interface Tokens {
  accessToken: string;
  refreshToken: string;
}

/** Where the tokens live between requests (memory, storage, ...). */
export interface TokenStore {
  get(): Tokens | null;
  set(tokens: Tokens | null): void;
}

/** A TokenStore that forgets on reload. */
export function memoryTokens(initial: Tokens | null = null): TokenStore {
  let tokens = initial;
  return {
    get: () => tokens,
    set: (t) => {
      tokens = t;
    },
  };
}

/** One entry of a response's errors. */
export interface GraphQLErrorJSON {
  message: string;
  path?: ReadonlyArray<string | number>;
  extensions?: Record<string, unknown>;
}

/**
 * A failed operation. `code` is extensions.code of the first error
 * (UNAUTHENTICATED, FORBIDDEN, BAD_USER_INPUT, NOT_FOUND, RATE_LIMITED, ...),
 * `reason` its extensions.reason (TOKEN_EXPIRED, SESSION_ENDED, ...), and
 * `field` the argument a BAD_USER_INPUT names.
 */
export class ApiError extends Error {
  readonly code: string;
  readonly reason: string | undefined;
  readonly field: string | undefined;
  /** Seconds to wait before retrying (RATE_LIMITED), if the server said. */
  readonly retryAfter: number | undefined;
  /** The challenge for verifyMfa (completeSignIn) of an MFA_REQUIRED login. */
  readonly mfaChallenge: string | undefined;

  constructor(
    readonly errors: GraphQLErrorJSON[],
    readonly status: number,
    retryAfterHeader?: number,
  ) {
    const first = errors[0];
    super(first?.message ?? `HTTP ${status}`);
    this.name = 'ApiError';
    const ext = first?.extensions ?? {};
    this.code = typeof ext['code'] === 'string' ? ext['code'] : `HTTP_${status}`;
    this.reason = typeof ext['reason'] === 'string' ? ext['reason'] : undefined;
    this.field = typeof ext['field'] === 'string' ? ext['field'] : undefined;
    this.retryAfter = seconds(ext['retryAfter']) ?? retryAfterHeader;
    this.mfaChallenge = typeof ext['mfaChallenge'] === 'string' ? ext['mfaChallenge'] : undefined;
  }
}

export interface ApiOptions {
  /** The GraphQL endpoint, e.g. "https://api.example.com/query". */
  url: string;
  tokens: TokenStore;
  /** Retries of a RATE_LIMITED operation before giving up (default 3). */
  maxRetries?: number;
  /**
   * Send each operation as {"documentId": "sha256:<hash>"} instead of its
   * text: for a server that runs only trusted documents
   * (APP_TRUSTED_DOCUMENTS with this package's persisted-documents.json).
   */
  documentIds?: boolean;
  fetch?: typeof fetch;
  /** Injectable for tests. */
  sleep?: (ms: number) => Promise<void>;
}

/** Variables may be left out when none is required. */
type VariablesArg<V> = {} extends V ? [variables?: V] : [variables: V];

export interface Api {
  request<R, V>(document: TypedDocumentString<R, V>, ...[variables]: VariablesArg<V>): Promise<R>;
  /**
   * Signs in with a password. For an account with two-factor sign-in on it
   * rejects with an ApiError of code MFA_REQUIRED: ask for a code and pass
   * the error's mfaChallenge to completeSignIn.
   */
  signIn(email: string, password: string): Promise<void>;
  /** Completes an MFA_REQUIRED sign-in with a TOTP or recovery code. */
  completeSignIn(challenge: string, code: string): Promise<void>;
  signOut(): Promise<void>;
}

export function createApi(opts: ApiOptions): Api {
  const doFetch = opts.fetch ?? globalThis.fetch.bind(globalThis);
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const maxRetries = opts.maxRetries ?? 3;
  let refreshing: Promise<void> | null = null;

  // operation is the request body: the document's id (the hash codegen
  // embedded, of the text in persisted-documents.json) or its text.
  function operation<R, V>(document: TypedDocumentString<R, V>, variables: V | undefined) {
    const hash: unknown = document.__meta__?.['hash'];
    if (opts.documentIds && typeof hash === 'string') return { documentId: `sha256:${hash}`, variables };
    return { query: document.toString(), variables };
  }

  // send posts one operation, waiting and retrying while rate-limited.
  async function send<R, V>(document: TypedDocumentString<R, V>, variables: V | undefined, token: string | undefined): Promise<R> {
    for (let attempt = 0; ; attempt++) {
      const headers: Record<string, string> = { 'Content-Type': 'application/json', Accept: 'application/json' };
      if (token) headers['Authorization'] = `Bearer ${token}`;
      const res = await doFetch(opts.url, {
        method: 'POST',
        headers,
        body: JSON.stringify(operation(document, variables)),
      });
      const body = (await res.json().catch(() => null)) as { data?: R; errors?: GraphQLErrorJSON[] } | null;
      if (res.ok && body?.data && !body.errors?.length) {
        return body.data;
      }
      const err = new ApiError(body?.errors ?? [], res.status, seconds(res.headers.get('Retry-After')));
      if (err.code !== 'RATE_LIMITED' && res.status !== 429) throw err;
      if (attempt >= maxRetries) throw err;
      await sleep(backoff(attempt, err.retryAfter));
    }
  }

  // refresh trades the refresh token for a new pair, once for all callers
  // waiting on it: the server retires a refresh token on use.
  function refresh(): Promise<void> {
    refreshing ??= (async () => {
      const current = opts.tokens.get();
      if (!current) throw new ApiError([{ message: 'not signed in', extensions: { code: 'UNAUTHENTICATED' } }], 401);
      try {
        const { refresh } = await send(RefreshMutation, { refreshToken: current.refreshToken }, undefined);
        opts.tokens.set({ accessToken: refresh.accessToken, refreshToken: refresh.refreshToken });
      } catch (e) {
        // SESSION_ENDED, REFRESH_TOKEN_REUSED, ...: sign in again.
        if (e instanceof ApiError && e.code === 'UNAUTHENTICATED') opts.tokens.set(null);
        throw e;
      }
    })().finally(() => {
      refreshing = null;
    });
    return refreshing;
  }

  async function request<R, V>(document: TypedDocumentString<R, V>, ...[variables]: VariablesArg<V>): Promise<R> {
    const vars = variables as V | undefined;
    try {
      return await send(document, vars, opts.tokens.get()?.accessToken);
    } catch (e) {
      // Only an expired access token is worth a refresh; any other
      // UNAUTHENTICATED reason means signing in again.
      if (!(e instanceof ApiError && e.code === 'UNAUTHENTICATED' && e.reason === 'TOKEN_EXPIRED')) throw e;
      await refresh();
      return send(document, vars, opts.tokens.get()?.accessToken);
    }
  }

  return {
    request,
    async signIn(email, password) {
      const { login } = await send(LoginMutation, { input: { email, password } }, undefined);
      opts.tokens.set({ accessToken: login.accessToken, refreshToken: login.refreshToken });
    },
    async completeSignIn(challenge, code) {
      const { verifyMfa } = await send(VerifyMfaMutation, { challenge, code }, undefined);
      opts.tokens.set({ accessToken: verifyMfa.accessToken, refreshToken: verifyMfa.refreshToken });
    },
    async signOut() {
      try {
        await request(LogoutMutation);
      } finally {
        opts.tokens.set(null);
      }
    },
  };
}

// backoff is how long to wait before retry number attempt+1: what the server
// asked for, else exponential with full jitter (0.5 s, 1 s, 2 s, ... capped
// at 30 s).
function backoff(attempt: number, retryAfter: number | undefined): number {
  if (retryAfter !== undefined) return retryAfter * 1000;
  return Math.random() * Math.min(30_000, 500 * 2 ** attempt);
}

// seconds reads a non-negative number of seconds from a JSON value or header.
function seconds(v: unknown): number | undefined {
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
  return Number.isFinite(n) && n >= 0 ? n : undefined;
}
