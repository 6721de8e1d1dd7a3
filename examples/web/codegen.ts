// graphql-codegen configuration: typed documents for the operations in
// src/**/*.ts, checked against the schema the server executes.
// `npm run codegen` writes src/gql/ (not committed; see .gitignore).
import type { CodegenConfig } from '@graphql-codegen/cli';

const config: CodegenConfig = {
  // Printed from the running executable schema by `go generate ./...`.
  schema: '../../graph/schema.graphql',
  documents: ['src/**/*.ts', '!src/gql/**'],
  generates: {
    'src/gql/': {
      preset: 'client',
      presetConfig: {
        // Fragments are plain fields of the result types (no useFragment).
        fragmentMasking: false,
        // src/gql/persisted-documents.json: sha256 of each document as it
        // is sent -> its text; `npm run codegen` copies it to
        // persisted-documents.json (committed), which a server runs in
        // trusted-documents mode (APP_TRUSTED_DOCUMENTS). Each document
        // keeps its text and gets __meta__.hash, so src/api.ts can send
        // either the text or {"documentId": "sha256:<hash>"}.
        persistedDocuments: {
          mode: 'embedHashInDocument',
          hashAlgorithm: 'sha256',
        },
      },
      config: {
        // Documents are strings: src/api.ts sends them with fetch.
        documentMode: 'string',
        useTypeImports: true,
        enumsAsTypes: true,
        scalars: {
          ID: 'string',
          Time: 'string', // RFC 3339; new Date(value) when needed
          Cursor: 'string', // opaque
        },
      },
    },
  },
};

export default config;
