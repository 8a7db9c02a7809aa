// The dashboard shell: session state, hash routes, and the Developers navigation.
import type React from 'react';
import { lazy, Suspense, useCallback, useEffect, useState } from 'react';
import { type Account, api, setSignedOutHandler } from './api.ts';
import { Layout } from './components/Layout.tsx';
import { PageErrorBoundary } from './components/PageErrorBoundary.tsx';
import { AccountsPage } from './pages/AccountsPage.tsx';
import { ApiKeysPage } from './pages/ApiKeysPage.tsx';
import { AuthPage } from './pages/AuthPage.tsx';
import { BillingPage } from './pages/BillingPage.tsx';
import { GenerationPage } from './pages/GenerationPage.tsx';
import { GettingStartedPage } from './pages/GettingStartedPage.tsx';

// The usage page carries the charts library: its own chunk, loaded when the page is first opened.
const UsagePage = lazy(() => import('./pages/UsagePage.tsx').then((m) => ({ default: m.UsagePage })));

const useHash = (): string => {
  const [hash, setHash] = useState(window.location.hash.slice(1) || '/developers/api-keys');
  useEffect(() => {
    const on = () => setHash(window.location.hash.slice(1) || '/developers/api-keys');
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  return hash;
};

export function App() {
  const route = useHash();
  const [account, setAccount] = useState<Account | null | undefined>(undefined);
  const [apiBase, setApiBase] = useState(`${window.location.origin}/v1`);
  const [signupCredit, setSignupCredit] = useState(0);
  const [signupOpen, setSignupOpen] = useState(true);
  // The session could not be loaded (server down, network): said so, not shown as signed out.
  const [sessionError, setSessionError] = useState<string | null>(null);

  const refresh = useCallback(async () => {
    const s = await api.session();
    setAccount(s.account);
    setApiBase(s.api_base_url);
    setSignupCredit(s.signup_credit_cents);
    setSignupOpen(s.signup === 'open');
  }, []);

  const load = useCallback(() => {
    setSessionError(null);
    refresh().catch((err: Error) => setSessionError(err.message || 'The dashboard could not reach the server.'));
  }, [refresh]);

  useEffect(() => {
    setSignedOutHandler(() => setAccount(null));
    load();
  }, [load]);

  // The header shows the balance: refresh it whenever the developer moves to another page.
  const signedIn = !!account;
  // biome-ignore lint/correctness/useExhaustiveDependencies: the route is the trigger, not an input
  useEffect(() => {
    if (signedIn)
      api.me().then(
        (r) => setAccount(r.account),
        () => {},
      );
  }, [route, signedIn]);

  if (account === undefined && sessionError)
    return (
      <div className="load-error" role="alert">
        <p>The dashboard could not load your session: {sessionError}</p>
        <button type="button" onClick={load}>
          Try again
        </button>
      </div>
    );
  if (account === undefined) return <div className="loading">Loading…</div>;
  if (account === null) {
    return (
      <AuthPage
        mode={route === '/signup' ? 'signup' : 'signin'}
        signupOpen={signupOpen}
        signupCreditCents={signupCredit}
        onSignedIn={refresh}
      />
    );
  }

  const refreshAccount = async () => setAccount((await api.me()).account);
  let page: React.ReactElement;
  if (route.startsWith('/developers/usage/'))
    page = <GenerationPage id={decodeURIComponent(route.slice('/developers/usage/'.length))} apiBase={apiBase} />;
  else if (route === '/developers/usage') page = <UsagePage />;
  else if (route === '/developers/billing') page = <BillingPage account={account} onChange={refreshAccount} />;
  else if (route === '/developers/getting-started') page = <GettingStartedPage apiBase={apiBase} />;
  else if (route === '/admin/accounts' && account.role === 'admin') page = <AccountsPage />;
  else page = <ApiKeysPage />;

  return (
    <Layout
      route={route}
      account={account}
      onSignOut={async () => {
        await api.signOut().catch(() => {});
        window.location.hash = '/signin';
        await refresh();
      }}
    >
      <PageErrorBoundary key={route}>
        <Suspense fallback={<div className="loading">Loading…</div>}>{page}</Suspense>
      </PageErrorBoundary>
    </Layout>
  );
}
