import { type FormEvent, useEffect, useRef, useState } from 'react';
import { type Account, ApiFailure, api, type LedgerEntry } from '../api.ts';
import { LoadStatus } from '../components/LoadStatus.tsx';
import { Stat } from '../components/Stat.tsx';
import { dollars, when } from '../format.ts';
import { useLoad } from '../use-load.ts';

const KIND_LABEL: Record<LedgerEntry['kind'], string> = {
  grant: 'Credit',
  usage: 'Usage',
  release: 'Hold released',
  adjustment: 'Adjustment',
};

function describe(e: LedgerEntry): string {
  if (e.kind === 'grant') return e.reason ?? 'Credit added';
  if (e.kind === 'usage')
    return `Request ${e.request_id ?? ''} · held ${dollars(e.held_cents ?? 0)}, released ${dollars(e.released_cents ?? 0)}`;
  if (e.kind === 'release') return `Request ${e.request_id ?? ''} · ${e.reason ?? 'not billed'}, ${dollars(e.held_cents ?? 0)} released`;
  return e.reason ?? '';
}

function GrantForm(props: { onGranted: () => void }) {
  const [accounts, setAccounts] = useState<Account[]>([]);
  const [target, setTarget] = useState('');
  const [amount, setAmount] = useState('10.00');
  const [reason, setReason] = useState('');
  const [message, setMessage] = useState<{ ok: boolean; text: string } | null>(null);
  const [busy, setBusy] = useState(false);
  // One idempotency key per intended grant: a retry of the same grant (after a network error, or
  // a second click) sends the same key and cannot grant twice; a success or an edit starts anew.
  const grantKey = useRef<string | null>(null);
  const edit =
    <T,>(set: (v: T) => void) =>
    (v: T) => {
      grantKey.current = null;
      set(v);
    };
  useEffect(() => {
    api.accounts().then(
      (r) => {
        setAccounts(r.data);
        setTarget((t) => t || r.data[0]?.email || '');
      },
      () => {},
    );
  }, []);
  async function submit(e: FormEvent) {
    e.preventDefault();
    const cents = Math.round(Number(amount) * 100);
    if (!Number.isFinite(cents) || cents <= 0) {
      setMessage({ ok: false, text: 'Enter a positive amount in dollars.' });
      return;
    }
    if (busy) return;
    setBusy(true);
    grantKey.current ??= crypto.randomUUID();
    try {
      const r = await api.grant(target, cents, reason, grantKey.current);
      grantKey.current = null;
      setMessage({ ok: true, text: `Granted ${dollars(cents)} to ${target}. Their balance is now ${dollars(r.balance_cents)}.` });
      setAccounts((await api.accounts()).data);
      props.onGranted();
    } catch (err) {
      setMessage({ ok: false, text: err instanceof ApiFailure ? err.message : 'Could not grant credit.' });
    } finally {
      setBusy(false);
    }
  }
  return (
    <form className="card grant" onSubmit={submit}>
      <h2>Grant credit</h2>
      <p className="muted small">Administrators only. The grant is added to the account's ledger.</p>
      <div className="row">
        <label>
          Account
          <select value={target} onChange={(e) => edit(setTarget)(e.target.value)}>
            {accounts.map((a) => (
              <option key={a.id} value={a.email}>
                {a.email} ({dollars(a.balance_cents)})
              </option>
            ))}
          </select>
        </label>
        <label>
          Amount (USD)
          <input inputMode="decimal" value={amount} onChange={(e) => edit(setAmount)(e.target.value)} />
        </label>
        <label className="grow">
          Reason
          <input value={reason} placeholder="optional" onChange={(e) => edit(setReason)(e.target.value)} />
        </label>
        <button type="submit" className="primary" disabled={busy}>
          {busy ? 'Granting…' : 'Grant'}
        </button>
      </div>
      {message ? <p className={message.ok ? 'success' : 'error'}>{message.text}</p> : null}
    </form>
  );
}

export function BillingPage(props: { account: Account; onChange: () => Promise<void> }) {
  const [pages, setPages] = useState<string[]>([]);
  const cursor = pages.at(-1);
  const state = useLoad(() => api.billing(cursor), [cursor]);
  const { data } = state;
  const load = state.reload;
  const account = data?.account ?? props.account;

  return (
    <section>
      <div className="page-head">
        <div>
          <h1>Billing</h1>
          <p className="muted">
            Requests are paid from this prepaid balance. Each request holds its worst-case cost until it finishes, then pays what it used.
          </p>
        </div>
      </div>
      <div className="stats">
        <Stat label="Balance" value={dollars(account.balance_cents)} testId="balance" />
        <Stat label="Available" value={dollars(account.available_cents)} />
        <Stat label="Held by requests in flight" value={dollars(account.held_cents)} />
      </div>
      {props.account.role === 'admin' ? (
        <GrantForm
          onGranted={() => {
            load();
            void props.onChange();
          }}
        />
      ) : null}
      <h2>Ledger</h2>
      <LoadStatus state={state} what="the ledger" />
      {data === undefined ? null : data.entries.length === 0 ? (
        <div className="empty card">No ledger entries yet.</div>
      ) : (
        <table className="table">
          <thead>
            <tr>
              <th>Date</th>
              <th>Type</th>
              <th>Details</th>
              <th className="right">Amount</th>
              <th className="right">Balance after</th>
            </tr>
          </thead>
          <tbody>
            {data.entries.map((e) => (
              <tr key={e.id}>
                <td>{when(e.created_at)}</td>
                <td>
                  <span className={`badge ${e.kind}`}>{KIND_LABEL[e.kind]}</span>
                </td>
                <td className="details">{describe(e)}</td>
                <td className={`right mono ${e.amount_cents < 0 ? 'neg' : e.amount_cents > 0 ? 'pos' : ''}`}>{dollars(e.amount_cents)}</td>
                <td className="right mono">{dollars(e.balance_after_cents)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <div className="pager">
        <button
          type="button"
          disabled={pages.length === 0 || state.loading || !!state.error}
          onClick={() => setPages((p) => p.slice(0, -1))}
        >
          ← Newer
        </button>
        <button
          type="button"
          disabled={!data?.next_before || state.loading || !!state.error}
          onClick={() => data?.next_before && setPages((p) => [...p, data.next_before as string])}
        >
          Older →
        </button>
      </div>
    </section>
  );
}
