/** The shell: sign-in, navigation by scope, the routed page, the status line. */
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { Api, ApiError, UNAUTHORIZED_EVENT, type Principal } from './api';
import { SessionContext, type Session } from './context';
import { href, parseRoute, type Route } from './route';
import { can, storeKey, storedKey } from './session';
import { SignIn } from './pages/sign-in';
import { SearchPage } from './pages/search';
import { FamilyPage } from './pages/family';
import { SubjectPage } from './pages/subject';
import { AnomaliesPage } from './pages/anomalies';
import { OverviewPage } from './pages/overview';

type Auth = { state: 'checking' } | { state: 'signed-out'; message?: string } | { state: 'signed-in'; api: Api; principal: Principal };

export function App() {
  const [auth, setAuth] = useState<Auth>(() => (storedKey() ? { state: 'checking' } : { state: 'signed-out' }));
  const [route, setRoute] = useState<Route>(() => parseRoute(location.hash));
  const [status, setStatus] = useState('');
  // The status line says what a command did, then gets out of the way.
  useEffect(() => {
    if (!status) return;
    const timer = setTimeout(() => setStatus(''), 6000);
    return () => clearTimeout(timer);
  }, [status]);

  useEffect(() => {
    const onHash = () => setRoute(parseRoute(location.hash));
    window.addEventListener('hashchange', onHash);
    return () => window.removeEventListener('hashchange', onHash);
  }, []);

  // A new page (not a new query on the same page: the slider keeps focus) moves focus to the
  // content, so keyboard and screen-reader users start there.
  const pageKey = `${route.page}/${route.id ?? ''}`;
  const firstPage = useRef(true);
  useEffect(() => {
    if (firstPage.current) {
      firstPage.current = false;
      return;
    }
    document.getElementById('main')?.focus({ preventScroll: false });
  }, [pageKey]);

  const signIn = useCallback(async (key: string): Promise<string | undefined> => {
    const api = new Api(key);
    try {
      const principal = await api.self();
      storeKey(key);
      setAuth({ state: 'signed-in', api, principal });
      return undefined;
    } catch (e) {
      storeKey(null);
      setAuth({ state: 'signed-out' });
      return e instanceof ApiError && e.status === 401 ? 'That key was not accepted (unknown, revoked or expired).' : `Could not sign in: ${(e as Error).message}`;
    }
  }, []);

  useEffect(() => {
    const key = storedKey();
    if (key) signIn(key).then((message) => message && setAuth({ state: 'signed-out', message }));
  }, [signIn]);

  const signOut = () => {
    storeKey(null);
    setAuth({ state: 'signed-out' });
  };

  // A 401 anywhere (the key was revoked or expired meanwhile) signs out.
  useEffect(() => {
    const onUnauthorized = () =>
      setAuth((a) => (a.state === 'signed-in' ? (storeKey(null), { state: 'signed-out', message: 'The key is no longer accepted; sign in again.' }) : a));
    window.addEventListener(UNAUTHORIZED_EVENT, onUnauthorized);
    return () => window.removeEventListener(UNAUTHORIZED_EVENT, onUnauthorized);
  }, []);

  if (auth.state === 'checking') return <main class="page"><p aria-live="polite">Signing in…</p></main>;
  if (auth.state === 'signed-out') return <SignIn onSignIn={signIn} message={auth.message} />;

  const session: Session = { api: auth.api, principal: auth.principal, announce: setStatus };
  const p = auth.principal;
  const nav: { page: Route['page']; label: string; to: string; scope: string }[] = [
    { page: 'overview', label: 'Overview', to: href('overview'), scope: 'audit:read' },
    { page: 'search', label: 'Search', to: href('search'), scope: 'audit:read' },
    { page: 'anomalies', label: 'Anomalies', to: href('anomalies', { status: 'open' }), scope: 'audit:read' },
  ];
  return (
    <SessionContext.Provider value={session}>
      <a class="skip" href="#main" onClick={(e) => (e.preventDefault(), document.getElementById('main')?.focus())}>
        Skip to content
      </a>
      <header class="top">
        <a class="brand" href={href('overview')}>
          token-ledger <span>console</span>
        </a>
        <nav aria-label="Main">
          <ul>
            {nav
              .filter((n) => can(p, n.scope))
              .map((n) => (
                <li key={n.page}>
                  <a href={n.to} aria-current={route.page === n.page ? 'page' : undefined}>
                    {n.label}
                  </a>
                </li>
              ))}
          </ul>
        </nav>
        <div class="who">
          <span title={`key ${p.keyId}; scopes: ${p.scopes.join(', ')}`}>
            {p.name ?? p.keyId ?? p.principal} <span class="scopes">{p.scopes.join(' · ')}</span>
          </span>
          <button type="button" class="link" onClick={signOut}>
            Sign out
          </button>
        </div>
      </header>
      <main id="main" class="page" tabIndex={-1}>
        {!can(p, 'audit:read') ? (
          <p class="problem">This key has no audit:read scope: the console's views need it (scopes: {p.scopes.join(', ')}).</p>
        ) : (
          <Page route={route} />
        )}
      </main>
      <p class="status" role="status" aria-live="polite">
        {status}
      </p>
    </SessionContext.Provider>
  );
}

function Page({ route }: { route: Route }) {
  switch (route.page) {
    case 'overview':
      return <OverviewPage params={route.params} />;
    case 'search':
      return <SearchPage params={route.params} />;
    case 'family':
      return <FamilyPage familyId={route.id!} params={route.params} />;
    case 'subject':
      return <SubjectPage subject={route.id!} />;
    case 'anomalies':
      return <AnomaliesPage params={route.params} />;
    default:
      return (
        <p>
          No such page. <a href={href('overview')}>Go to the overview</a>.
        </p>
      );
  }
}
