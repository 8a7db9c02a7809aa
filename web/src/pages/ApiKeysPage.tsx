// Developers -> API Keys: the seed page's "Create New Key", "Copy the key (shown only once!)" and
// "Revoke Key", exactly under those names.
import { type FormEvent, useState } from 'react';
import { ApiFailure, type ApiKey, api } from '../api.ts';
import { ErrorNote } from '../components/ErrorNote.tsx';
import { LoadStatus } from '../components/LoadStatus.tsx';
import { Modal } from '../components/Modal.tsx';
import { when } from '../format.ts';
import { useLoad } from '../use-load.ts';

function CreateKeyDialog(props: { onClose: () => void; onCreated: () => void }) {
  const [name, setName] = useState('');
  const [mode, setMode] = useState<'live' | 'test'>('live');
  const [created, setCreated] = useState<(ApiKey & { key: string }) | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [copied, setCopied] = useState(false);
  const [busy, setBusy] = useState(false);

  async function submit(e: FormEvent) {
    e.preventDefault();
    if (busy) return;
    setBusy(true);
    setError(null);
    try {
      setCreated(await api.createKey(name, mode));
      props.onCreated();
    } catch (err) {
      setError(err instanceof ApiFailure ? err.message : 'Could not create the key.');
    } finally {
      setBusy(false);
    }
  }

  async function copy() {
    if (!created) return;
    try {
      await navigator.clipboard.writeText(created.key);
      setCopied(true);
    } catch {
      // Clipboard refused (permissions, insecure origin): select the text so Ctrl+C works.
      (document.getElementById('new-key') as HTMLInputElement | null)?.select();
    }
  }

  if (created) {
    return (
      <Modal title="Your new API key" onClose={props.onClose}>
        <p className="warning" role="note">
          Copy this key now. For your security it <strong>will not be shown again</strong>. Store it in an environment variable such as{' '}
          <code>BIZORA_API_KEY</code>, never in code or Git.
        </p>
        <div className="key-box">
          <input
            id="new-key"
            aria-label="New API key"
            data-testid="new-key"
            readOnly
            value={created.key}
            onFocus={(e) => e.target.select()}
          />
          <button type="button" className="primary" onClick={copy}>
            {copied ? 'Copied' : 'Copy'}
          </button>
        </div>
        <div className="actions">
          <button type="button" onClick={props.onClose}>
            Done
          </button>
        </div>
      </Modal>
    );
  }
  return (
    <Modal title="Create New Key" onClose={props.onClose}>
      <form onSubmit={submit}>
        <label>
          Name
          <input
            name="name"
            required
            maxLength={100}
            placeholder="e.g. production-server"
            value={name}
            onChange={(e) => setName(e.target.value)}
          />
          <span className="hint">A descriptive name, so you know later where the key is used.</span>
        </label>
        <fieldset className="mode">
          <legend>Mode</legend>
          <label className="inline">
            <input type="radio" name="mode" checked={mode === 'live'} onChange={() => setMode('live')} /> Live{' '}
            <span className="hint">billed, real model</span>
          </label>
          <label className="inline">
            <input type="radio" name="mode" checked={mode === 'test'} onChange={() => setMode('test')} /> Test{' '}
            <span className="hint">free, simulated answers</span>
          </label>
        </fieldset>
        <ErrorNote message={error} />
        <div className="actions">
          <button type="button" onClick={props.onClose}>
            Cancel
          </button>
          <button type="submit" className="primary" disabled={busy}>
            Create key
          </button>
        </div>
      </form>
    </Modal>
  );
}

function RevokeDialog(props: { apiKey: ApiKey; onClose: () => void; onRevoked: () => void }) {
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  async function revoke() {
    if (busy) return;
    setBusy(true);
    try {
      await api.revokeKey(props.apiKey.id);
      props.onRevoked();
      props.onClose();
    } catch (err) {
      setError(err instanceof ApiFailure ? err.message : 'Could not revoke the key.');
      setBusy(false);
    }
  }
  return (
    <Modal title={`Revoke “${props.apiKey.name}”?`} onClose={props.onClose}>
      <p>
        Requests with <code>{props.apiKey.preview}</code> will be refused from the very next one. This cannot be undone; create a new key to
        replace it.
      </p>
      <ErrorNote message={error} />
      <div className="actions">
        <button type="button" onClick={props.onClose}>
          Cancel
        </button>
        <button type="button" className="danger" onClick={revoke} disabled={busy}>
          Revoke Key
        </button>
      </div>
    </Modal>
  );
}

export function ApiKeysPage() {
  const state = useLoad(() => api.keys().then((r) => r.data), []);
  const keys = state.data;
  const load = state.reload;
  const [creating, setCreating] = useState(false);
  const [revoking, setRevoking] = useState<ApiKey | null>(null);

  return (
    <section>
      <div className="page-head">
        <div>
          <h1>API Keys</h1>
          <p className="muted">
            Keys authenticate your requests to the API. Send one as <code>Authorization: Bearer sk_live_…</code> or <code>X-Api-Key</code>.
          </p>
        </div>
        <button type="button" className="primary" onClick={() => setCreating(true)}>
          Create New Key
        </button>
      </div>
      <LoadStatus state={state} what="your keys" />
      {keys === undefined ? null : keys.length === 0 ? (
        <div className="empty card">
          <p>No keys yet. Create one to start calling the API.</p>
        </div>
      ) : (
        <table className="table">
          <thead>
            <tr>
              <th>Name</th>
              <th>Key</th>
              <th>Mode</th>
              <th>Created</th>
              <th>Last used</th>
              <th>Status</th>
              <th>
                <span className="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {keys.map((k) => (
              <tr key={k.id} data-key-id={k.id} className={k.status !== 'active' ? 'inactive' : ''}>
                <td className="strong">{k.name}</td>
                <td>
                  <code>{k.preview}</code>
                </td>
                <td>
                  <span className={`badge ${k.mode}`}>{k.mode}</span>
                </td>
                <td>{when(k.created_at)}</td>
                <td>{when(k.last_used_at)}</td>
                <td>
                  <span className={`status ${k.status}`}>
                    {k.status === 'active' ? 'Active' : k.status === 'revoked' ? 'Revoked' : 'Expired'}
                  </span>
                </td>
                <td className="right">
                  {k.status === 'active' ? (
                    <button type="button" className="danger small" onClick={() => setRevoking(k)}>
                      Revoke Key
                    </button>
                  ) : null}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {creating ? <CreateKeyDialog onClose={() => setCreating(false)} onCreated={load} /> : null}
      {revoking ? <RevokeDialog apiKey={revoking} onClose={() => setRevoking(null)} onRevoked={load} /> : null}
    </section>
  );
}
