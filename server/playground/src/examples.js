// The tabs the playground opens with on a first visit (afterwards GraphiQL
// restores the tabs from localStorage; "Clear storage" in the settings
// brings these back). Each tab title is its operation's name.

const json = (v) => JSON.stringify(v, null, 2);

const email = 'ann@example.com';
const password = 'correct horse';

export const TABS = [
  {
    query: `# authql playground
#
# One example per tab. Run it with ▶
# (Ctrl/Cmd-Enter); variables are below.
#
# A successful register, login or refresh
# copies its accessToken into the
# Authorization header of every tab, so
# Me, CreatePost and Posts just work.
mutation Register($input: RegisterInput!) {
  register(input: $input) {
    accessToken
    refreshToken
    expiresIn
    user {
      id
      email
      name
      role
    }
  }
}
`,
    variables: json({ input: { email, password, name: 'Ann' } }),
  },
  {
    query: `# A new session (one per device) for an
# existing account.
mutation Login($input: LoginInput!) {
  login(input: $input) {
    accessToken
    refreshToken
    expiresIn
    user {
      id
      name
    }
  }
}
`,
    variables: json({ input: { email, password } }),
  },
  {
    query: `# Needs the Authorization header:
# register or log in first.
query Me {
  me {
    id
    email
    name
    role
    createdAt
  }
  mySessions {
    id
    createdAt
    lastUsedAt
    userAgent
    current
  }
}
`,
  },
  {
    query: `mutation CreatePost($input: CreatePostInput!) {
  createPost(input: $input) {
    id
    title
    createdAt
    author {
      name
    }
  }
}
`,
    variables: json({ input: { title: 'Hello', content: 'First post' } }),
  },
  {
    query: `# Newest first. Next page: set "after"
# to pageInfo.endCursor.
query Posts($first: Int, $after: Cursor) {
  posts(first: $first, after: $after) {
    totalCount
    edges {
      cursor
      node {
        id
        title
        createdAt
        author {
          name
        }
      }
    }
    pageInfo {
      hasNextPage
      endCursor
    }
  }
}
`,
    variables: json({ first: 10, after: null }),
  },
  {
    query: `# Mails a single-use reset link (30 min)
# if the address has an account; always
# true. Without APP_SMTP_URL the mail is
# in the log: \`go run ./server mails\`.
# Its link's page sets the new password,
# or call resetPassword(token,
# newPassword) with the link's token.
# register mails a verifyEmail link too.
mutation RequestPasswordReset($email: String!) {
  requestPasswordReset(email: $email)
}
`,
    variables: json({ email }),
  },
  {
    query: `# Two-factor sign-in: a secret for an
# authenticator app (or scan qrCode).
# Then confirmTotp(code: "123456") turns
# it on; login then answers MFA_REQUIRED
# with extensions.mfaChallenge, and
# verifyMfa(challenge, code) signs in.
mutation EnrollTotp {
  enrollTotp {
    secret
    uri
    qrCode
  }
}
`,
  },
  {
    query: `# Sign-ins, failures, new devices,
# password and two-factor changes.
query MySecurityEvents($first: Int, $after: Cursor) {
  mySecurityEvents(first: $first, after: $after) {
    edges {
      node {
        kind
        createdAt
        address
        device
      }
    }
    pageInfo {
      hasNextPage
      endCursor
    }
  }
}
`,
    variables: json({ first: 20, after: null }),
  },
];
