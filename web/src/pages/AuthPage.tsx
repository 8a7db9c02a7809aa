import { type FormEvent, useState } from 'react';
import { ApiFailure, api } from '../api.ts';
import { ErrorNote } from '../components/ErrorNote.tsx';
import { dollars } from '../format.ts';

export function AuthPage(props: {
  mode: 'signin' | 'signup';
  signupOpen: boolean;
  signupCreditCents: number;
  onSignedIn: () => Promise<void>;
}) {
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  // With BIZORA_SIGNUP=closed there is no sign-up form: accounts come from an administrator.
  const signup = props.mode === 'signup' && props.signupOpen;

  async function submit(e: FormEvent) {
    e.preventDefault();
    if (busy) return;
    setBusy(true);
    setError(null);
    try {
      if (signup) await api.signUp(email, password);
      else await api.signIn(email, password);
      window.location.hash = '/developers/api-keys';
      await props.onSignedIn();
    } catch (err) {
      setError(err instanceof ApiFailure ? err.message : 'Something went wrong. Try again.');
      await api.session().catch(() => {});
    } finally {
      setBusy(false);
    }
  }

  return (
    <div className="auth">
      <form className="card auth-card" onSubmit={submit}>
        <div className="brand big">
          <span className="brand-mark">B</span> Bizora
        </div>
        <h1>{signup ? 'Create your account' : 'Sign in'}</h1>
        {signup && props.signupCreditCents > 0 ? (
          <p className="muted">New accounts start with {dollars(props.signupCreditCents)} of credit.</p>
        ) : null}
        <label>
          Email
          <input type="email" name="email" autoComplete="email" required value={email} onChange={(e) => setEmail(e.target.value)} />
        </label>
        <label>
          Password
          <input
            type="password"
            name="password"
            autoComplete={signup ? 'new-password' : 'current-password'}
            minLength={signup ? 8 : 1}
            required
            value={password}
            onChange={(e) => setPassword(e.target.value)}
          />
        </label>
        <ErrorNote message={error} />
        <button type="submit" className="primary" disabled={busy}>
          {signup ? 'Sign up' : 'Sign in'}
        </button>
        <p className="muted small">
          {signup ? (
            <>
              Have an account? <a href="#/signin">Sign in</a>
            </>
          ) : props.signupOpen ? (
            <>
              New to Bizora? <a href="#/signup">Create an account</a>
            </>
          ) : (
            <>Sign-up is closed on this server. Ask an administrator to create an account for you.</>
          )}
        </p>
      </form>
    </div>
  );
}
