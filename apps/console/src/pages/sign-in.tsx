import { useState } from 'preact/hooks';

/** Sign in with an API key; the key goes to sessionStorage only (see session.ts). */
export function SignIn({ onSignIn, message }: { onSignIn(key: string): Promise<string | undefined>; message?: string }) {
  const [key, setKey] = useState('');
  const [error, setError] = useState<string | undefined>(message);
  const [busy, setBusy] = useState(false);
  document.title = 'Sign in — token-ledger console';
  return (
    <main class="signin">
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          setBusy(true);
          const problem = await onSignIn(key.trim());
          setBusy(false);
          if (problem) setError(problem);
        }}
      >
        <h1>token-ledger console</h1>
        <p>Sign in with an API key. It stays in this tab (session storage) and is sent only as a bearer token to this server.</p>
        <label for="api-key">API key</label>
        <input
          id="api-key"
          name="api-key"
          type="password"
          autocomplete="off"
          spellcheck={false}
          required
          value={key}
          onInput={(e) => setKey(e.currentTarget.value)}
          placeholder="tlk_…"
        />
        {error && (
          <p class="problem" role="alert">
            {error}
          </p>
        )}
        <button type="submit" class="primary" disabled={busy || !key.trim()}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}
