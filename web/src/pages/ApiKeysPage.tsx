// Developers -> API Keys: the seed page's "Create New Key", "Copy the key (shown only once!)" and
// "Revoke Key", exactly under those names; each key's limits (set at creation, changed later),
// rotation with a grace, and what needs attention: keys that expire soon, keys in a rotation's
// grace, keys nobody has used for 30 days (revoke them).
import { type FormEvent, useState } from 'react';
import { ApiFailure, type ApiKey, api } from '../api.ts';
import { DialogActions } from '../components/DialogActions.tsx';
import { ErrorNote } from '../components/ErrorNote.tsx';
import { changeOf, emptyLimits, KeyLimitsFields, type LimitsForm, limitsFormOf, limitsSummary } from '../components/KeyLimitsFields.tsx';
import { LoadStatus } from '../components/LoadStatus.tsx';
import { Modal } from '../components/Modal.tsx';
import { SecretOnce } from '../components/SecretOnce.tsx';
import { when } from '../format.ts';
import { useLoad } from '../use-load.ts';

/** A key's secret, shown once: after Create New Key, and after Rotate. */
function NewKeyModal(props: { secret: string; onClose: () => void; note?: string }) {
  return (
    <SecretOnce
      title="Your new API key"
      field={{ id: 'new-key', label: 'New API key' }}
      secret={props.secret}
      note={props.note}
      onClose={props.onClose}
      warning={
        <>
          Copy this key now. For your security it <strong>will not be shown again</strong>. Store it in an environment variable such as{' '}
          <code>BIZORA_API_KEY</code>, never in code or Git.
        </>
      }
    />
  );
}

function EditLimitsDialog(props: { apiKey: ApiKey; onClose: () => void; onSaved: () => void }) {
  const [limits, setLimits] = useState<LimitsForm>(limitsFormOf(props.apiKey));
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  async function submit(e: FormEvent) {
    e.preventDefault();
    if (busy) return;
    setBusy(true);
    try {
      await api.updateKey(props.apiKey.id, changeOf(limits));
      props.onSaved();
      props.onClose();
    } catch (err) {
      setError(err instanceof ApiFailure ? err.message : 'Could not save the limits.');
      setBusy(false);
    }
  }
  return (
    <Modal title={`Limits of “${props.apiKey.name}”`} onClose={props.onClose}>
      <form onSubmit={submit}>
        <p className="muted">Empty means no limit. Changes apply from the next request.</p>
        <KeyLimitsFields value={limits} onChange={setLimits} />
        <ErrorNote message={error} />
        <DialogActions onCancel={props.onClose} label="Save limits" busy={busy} />
      </form>
    </Modal>
  );
}

const GRACES = [
  { seconds: 0, label: 'Stop the old key at once' },
  { seconds: 3600, label: 'Keep the old key working for 1 hour' },
  { seconds: 86_400, label: 'Keep the old key working for 24 hours' },
  { seconds: 7 * 86_400, label: 'Keep the old key working for 7 days' },
];

function RotateDialog(props: { apiKey: ApiKey; onClose: () => void; onRotated: () => void }) {
  const [grace, setGrace] = useState(86_400);
  const [secret, setSecret] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  async function rotate() {
    if (busy) return;
    setBusy(true);
    try {
      setSecret((await api.rotateKey(props.apiKey.id, grace)).key);
      props.onRotated();
    } catch (err) {
      setError(err instanceof ApiFailure ? err.message : 'Could not rotate the key.');
      setBusy(false);
    }
  }
  if (secret) {
    const note = grace === 0 ? 'The old key no longer works.' : `The old key keeps working until ${when(Date.now() + grace * 1000)}.`;
    return <NewKeyModal secret={secret} note={note} onClose={props.onClose} />;
  }
  return (
    <Modal title={`Rotate “${props.apiKey.name}”?`} onClose={props.onClose}>
      <p>
        The key gets a new secret; its name, limits and usage stay. Deploy the new secret, then let the old one (
        <code>{props.apiKey.preview}</code>) lapse.
      </p>
      <label>
        The old key
        <select name="grace" value={grace} onChange={(e) => setGrace(Number(e.target.value))}>
          {GRACES.map((g) => (
            <option key={g.seconds} value={g.seconds}>
              {g.label}
            </option>
          ))}
        </select>
      </label>
      <ErrorNote message={error} />
      <DialogActions onCancel={props.onClose} label="Rotate key" onClick={rotate} busy={busy} />
    </Modal>
  );
}

const NOTICE_TEXT = { expiring: 'Expires soon', rotating: 'Old secret still works', unused: 'Unused for 30 days' } as const;

function CreateKeyDialog(props: { onClose: () => void; onCreated: () => void }) {
  const [name, setName] = useState('');
  const [mode, setMode] = useState<'live' | 'test'>('live');
  const [created, setCreated] = useState<(ApiKey & { key: string }) | null>(null);
  const [limits, setLimits] = useState<LimitsForm>(emptyLimits);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function submit(e: FormEvent) {
    e.preventDefault();
    if (busy) return;
    setBusy(true);
    setError(null);
    try {
      setCreated(await api.createKey(name, mode, changeOf(limits)));
      props.onCreated();
    } catch (err) {
      setError(err instanceof ApiFailure ? err.message : 'Could not create the key.');
    } finally {
      setBusy(false);
    }
  }

  if (created) return <NewKeyModal secret={created.key} onClose={props.onClose} />;
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
        <details className="limits">
          <summary>Limits (optional)</summary>
          <KeyLimitsFields value={limits} onChange={setLimits} />
        </details>
        <ErrorNote message={error} />
        <DialogActions onCancel={props.onClose} label="Create key" busy={busy} />
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
      <DialogActions onCancel={props.onClose} label="Revoke Key" kind="danger" onClick={revoke} busy={busy} />
    </Modal>
  );
}

export function ApiKeysPage() {
  const state = useLoad(() => api.keys().then((r) => r.data), []);
  const keys = state.data;
  const load = state.reload;
  const [creating, setCreating] = useState(false);
  const [revoking, setRevoking] = useState<ApiKey | null>(null);
  const [editing, setEditing] = useState<ApiKey | null>(null);
  const [rotating, setRotating] = useState<ApiKey | null>(null);

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
              <th>Limits</th>
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
                <td className="limits-cell">{limitsSummary(k) || <span className="muted">None</span>}</td>
                <td>
                  <span className={`status ${k.status}`}>
                    {k.status === 'active' ? 'Active' : k.status === 'revoked' ? 'Revoked' : 'Expired'}
                  </span>
                  {k.notices.map((n) => (
                    <span
                      key={n}
                      className={`notice ${n}`}
                      title={
                        n === 'expiring' && k.expires_at !== null
                          ? `Expires ${when(k.expires_at)}`
                          : n === 'rotating' && k.previous_valid_until !== null
                            ? `The old secret works until ${when(k.previous_valid_until)}`
                            : n === 'unused'
                              ? 'Not used for 30 days: revoke it if nothing needs it'
                              : undefined
                      }
                    >
                      {NOTICE_TEXT[n]}
                    </span>
                  ))}
                </td>
                <td className="right actions-cell">
                  {k.status === 'active' ? (
                    <>
                      <button type="button" className="small" onClick={() => setEditing(k)}>
                        Limits
                      </button>
                      <button type="button" className="small" onClick={() => setRotating(k)}>
                        Rotate
                      </button>
                      <button type="button" className="danger small" onClick={() => setRevoking(k)}>
                        Revoke Key
                      </button>
                    </>
                  ) : null}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {creating ? <CreateKeyDialog onClose={() => setCreating(false)} onCreated={load} /> : null}
      {revoking ? <RevokeDialog apiKey={revoking} onClose={() => setRevoking(null)} onRevoked={load} /> : null}
      {editing ? <EditLimitsDialog apiKey={editing} onClose={() => setEditing(null)} onSaved={load} /> : null}
      {rotating ? <RotateDialog apiKey={rotating} onClose={() => setRotating(null)} onRotated={load} /> : null}
    </section>
  );
}
