// The playground page: GraphiQL with the example tabs, the headers editor
// open, and a fetcher that copies the accessToken of a successful register,
// login or refresh into the Authorization header.
import { useEditorContext } from '@graphiql/react';
import { createGraphiQLFetcher } from '@graphiql/toolkit';
import { GraphiQL } from 'graphiql';
import { StrictMode, useEffect, useMemo, useRef, useState } from 'react';
import { createRoot } from 'react-dom/client';

import 'graphiql/style.css';
import './playground.css';

import { TABS } from './examples.js';
import { DEFAULT_HEADERS, tokenFrom, withAuthorization } from './token.js';

function App({ endpoint }) {
  const [auth, setAuth] = useState(null);
  const fetcher = useMemo(() => {
    // Plain JSON over POST: the server has no multipart (incremental
    // delivery) transport, and subscriptions are not wired up yet.
    const inner = createGraphiQLFetcher({ url: endpoint, enableIncrementalDelivery: false });
    return async (params, opts) => {
      const result = await inner(params, opts);
      const token = tokenFrom(result);
      if (token) {
        setAuth({ token, operation: params.operationName || 'the last operation', at: new Date() });
      }
      return result;
    };
  }, [endpoint]);
  return (
    <GraphiQL
      fetcher={fetcher}
      defaultTabs={TABS}
      defaultHeaders={DEFAULT_HEADERS}
      defaultEditorToolsVisibility="headers"
      // Tokens stay out of localStorage.
      shouldPersistHeaders={false}
    >
      <GraphiQL.Logo>authql</GraphiQL.Logo>
      <GraphiQL.Footer>
        <FirstTabVariables />
        <TokenSync auth={auth} />
      </GraphiQL.Footer>
    </GraphiQL>
  );
}

// FirstTabVariables works around GraphiQL 4 opening the first tab with an
// empty variables editor: it takes the query of defaultTabs[0] but not its
// variables (@graphiql/react 0.34, editor/context.js). Once the editor
// exists, an empty one gets the tab's own variables.
function FirstTabVariables() {
  const { variableEditor, tabs, activeTabIndex } = useEditorContext({ nonNull: true });
  const done = useRef(false);
  useEffect(() => {
    if (done.current || !variableEditor) {
      return;
    }
    done.current = true;
    const saved = tabs[activeTabIndex]?.variables;
    if (saved && variableEditor.getValue() === '') {
      variableEditor.setValue(saved);
    }
  }, [variableEditor, tabs, activeTabIndex]);
  return null;
}

// TokenSync writes the latest token into the headers editor of the active
// tab, now and whenever another tab becomes active (headers are per tab).
// It only replaces the placeholder or a token it wrote itself.
function TokenSync({ auth }) {
  const { headerEditor, activeTabIndex } = useEditorContext({ nonNull: true });
  const ours = useRef(new Set());
  useEffect(() => {
    if (!auth || !headerEditor) {
      return;
    }
    const text = headerEditor.getValue();
    const next = withAuthorization(text, auth.token, ours.current);
    ours.current.add(`Bearer ${auth.token}`);
    if (next !== text) {
      headerEditor.setValue(next);
    }
  }, [auth, headerEditor, activeTabIndex]);
  if (!auth) {
    return (
      <p className="authql-status" role="status">
        Run Register or Login: its accessToken goes into the Authorization header.
      </p>
    );
  }
  return (
    <p className="authql-status" role="status">
      <strong>Authorization</strong> set from {auth.operation} at {auth.at.toLocaleTimeString()}.
    </p>
  );
}

// GraphiQL's dialogs (Radix, via react-remove-scroll) add a <style> element
// to the page. The CSP allows it only with this response's nonce, which
// react-style-singleton reads from __webpack_nonce__ (get-nonce).
const nonce = document.querySelector('meta[property="csp-nonce"]')?.nonce;
if (nonce) {
  globalThis.__webpack_nonce__ = nonce;
}

const root = document.getElementById('root');
createRoot(root).render(
  <StrictMode>
    <App endpoint={root.dataset.endpoint || '/query'} />
  </StrictMode>,
);
