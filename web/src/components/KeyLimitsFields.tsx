// The limits a key can have, as form fields (Create New Key and Edit limits): an empty field is
// no limit. The same settings as the CLI's flags and the management API's fields.
import type { ApiKey, KeyChange } from '../api.ts';

export type LimitsForm = {
  rpm: string;
  tpm: string;
  maxConcurrency: string;
  spendLimitCents: string;
  spendPeriod: 'day' | 'month' | 'total';
  models: string;
  expiresInDays: string;
};

export const emptyLimits: LimitsForm = {
  rpm: '',
  tpm: '',
  maxConcurrency: '',
  spendLimitCents: '',
  spendPeriod: 'month',
  models: '',
  expiresInDays: '',
};

export function limitsFormOf(k: ApiKey): LimitsForm {
  const text = (n: number | null) => (n === null ? '' : String(n));
  return {
    rpm: text(k.limits.rpm),
    tpm: text(k.limits.tpm),
    maxConcurrency: text(k.limits.max_concurrency),
    spendLimitCents: text(k.limits.spend_limit_cents),
    spendPeriod: k.limits.spend_period ?? 'month',
    models: (k.limits.models ?? []).join(', '),
    expiresInDays: k.expires_at === null ? '' : String(Math.max(1, Math.ceil((k.expires_at - Date.now()) / 86_400_000))),
  };
}

/** The change the form asks for: every field (an empty one clears its limit). */
export function changeOf(f: LimitsForm): KeyChange {
  const n = (v: string) => (v.trim() === '' ? null : Number(v));
  const models = f.models
    .split(',')
    .map((m) => m.trim())
    .filter(Boolean);
  const spend = n(f.spendLimitCents);
  const days = n(f.expiresInDays);
  return {
    rpm: n(f.rpm),
    tpm: n(f.tpm),
    max_concurrency: n(f.maxConcurrency),
    spend_limit_cents: spend,
    ...(spend !== null ? { spend_period: f.spendPeriod } : {}),
    models: models.length ? models : null,
    expires_at: days === null ? null : Date.now() + days * 86_400_000,
  };
}

/** A key's limits in a few words ('' for none). */
export function limitsSummary(k: ApiKey): string {
  const l = k.limits;
  return [
    l.rpm !== null ? `${l.rpm}/min` : '',
    l.tpm !== null ? `${l.tpm.toLocaleString('en-US')} tokens/min` : '',
    l.max_concurrency !== null ? `${l.max_concurrency} at once` : '',
    l.spend_limit_cents !== null
      ? `$${(l.spend_limit_cents / 100).toFixed(2)}${l.spend_period === 'total' ? ' in total' : `/${l.spend_period}`}`
      : '',
    l.models !== null ? l.models.join(', ') : '',
  ]
    .filter(Boolean)
    .join(' · ');
}

export function KeyLimitsFields(props: { value: LimitsForm; onChange: (v: LimitsForm) => void }) {
  const v = props.value;
  const set = (k: keyof LimitsForm) => (e: { target: { value: string } }) => props.onChange({ ...v, [k]: e.target.value });
  const number = (k: keyof LimitsForm, label: string, hint: string) => (
    <label>
      {label}
      <input name={k} type="number" min={1} step={1} inputMode="numeric" placeholder="No limit" value={v[k]} onChange={set(k)} />
      <span className="hint">{hint}</span>
    </label>
  );
  return (
    <div className="limits-grid">
      {number('rpm', 'Requests per minute', 'More get a 429 with Retry-After.')}
      {number('tpm', 'Tokens per minute', 'Each request counts its prompt and max_tokens while it runs.')}
      {number('maxConcurrency', 'Requests at once', 'In progress at the same time.')}
      <label>
        Spend limit (cents)
        <span className="row">
          <input
            name="spendLimitCents"
            type="number"
            min={1}
            step={1}
            placeholder="No limit"
            value={v.spendLimitCents}
            onChange={set('spendLimitCents')}
          />
          <select name="spendPeriod" aria-label="Spend period" value={v.spendPeriod} onChange={set('spendPeriod')}>
            <option value="day">per day</option>
            <option value="month">per month</option>
            <option value="total">in total</option>
          </select>
        </span>
        <span className="hint">Past it requests get a 402; days and months are UTC.</span>
      </label>
      <label>
        Models
        <input name="models" placeholder="Every model" value={v.models} onChange={set('models')} />
        <span className="hint">Comma-separated ids; others get a 403.</span>
      </label>
      {number('expiresInDays', 'Expires in (days)', 'After it the key gets a 401.')}
    </div>
  );
}
