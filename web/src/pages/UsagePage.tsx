import { useState } from 'react';
import { Bar, CartesianGrid, ComposedChart, Legend, Line, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import { api, type DailyUsage, type Generation } from '../api.ts';
import { LoadStatus } from '../components/LoadStatus.tsx';
import { Stat } from '../components/Stat.tsx';
import { count, dollars } from '../format.ts';
import { useLoad } from '../use-load.ts';

function Chart(props: { daily: DailyUsage[] }) {
  const data = props.daily.map((d) => ({
    ...d,
    day: d.date.slice(5),
    tokens: d.prompt_tokens + d.completion_tokens,
    cost: d.cost_cents / 100,
  }));
  return (
    <div className="charts">
      <div className="card chart">
        <h3>Requests and cost per day</h3>
        <ResponsiveContainer width="100%" height={240}>
          <ComposedChart data={data} margin={{ top: 8, right: 8, bottom: 0, left: 0 }}>
            <CartesianGrid strokeDasharray="3 3" vertical={false} />
            <XAxis dataKey="day" tick={{ fontSize: 12 }} />
            <YAxis yAxisId="left" allowDecimals={false} tick={{ fontSize: 12 }} />
            <YAxis yAxisId="right" orientation="right" tick={{ fontSize: 12 }} tickFormatter={(v: number) => `$${v}`} />
            <Tooltip formatter={(v, name) => (name === 'Cost (USD)' ? `$${Number(v).toFixed(4)}` : count(Number(v)))} />
            <Legend />
            <Bar isAnimationActive={false} yAxisId="left" dataKey="requests" name="Requests" fill="#6366f1" radius={[3, 3, 0, 0]} />
            <Line isAnimationActive={false} yAxisId="right" dataKey="cost" name="Cost (USD)" stroke="#f59e0b" strokeWidth={2} dot={false} />
          </ComposedChart>
        </ResponsiveContainer>
      </div>
      <div className="card chart">
        <h3>Tokens per day</h3>
        <ResponsiveContainer width="100%" height={240}>
          <ComposedChart data={data} margin={{ top: 8, right: 8, bottom: 0, left: 0 }}>
            <CartesianGrid strokeDasharray="3 3" vertical={false} />
            <XAxis dataKey="day" tick={{ fontSize: 12 }} />
            <YAxis tick={{ fontSize: 12 }} />
            <Tooltip formatter={(v) => count(Number(v))} />
            <Legend />
            <Bar isAnimationActive={false} dataKey="prompt_tokens" name="Prompt" stackId="t" fill="#a5b4fc" />
            <Bar isAnimationActive={false} dataKey="completion_tokens" name="Completion" stackId="t" fill="#4f46e5" radius={[3, 3, 0, 0]} />
          </ComposedChart>
        </ResponsiveContainer>
      </div>
    </div>
  );
}

function StatusBadge(props: { g: Generation }) {
  return (
    <span className={`status ${props.g.status}`}>
      {props.g.status === 'succeeded' ? 'OK' : `${props.g.status} · ${props.g.http_status}`}
    </span>
  );
}

export function UsagePage() {
  const [days, setDays] = useState(30);
  const [keyId, setKeyId] = useState('');
  const [model, setModel] = useState('');
  const state = useLoad(() => api.usage({ days, ...(keyId ? { key_id: keyId } : {}), ...(model ? { model } : {}) }), [days, keyId, model]);
  const { data } = state;
  const totals = (data?.daily ?? []).reduce(
    (t, d) => ({
      requests: t.requests + d.requests,
      tokens: t.tokens + d.prompt_tokens + d.completion_tokens,
      cost: t.cost + d.cost_cents,
    }),
    {
      requests: 0,
      tokens: 0,
      cost: 0,
    },
  );
  const keyName = (id: string) => data?.keys.find((k) => k.id === id)?.name ?? id;

  return (
    <section>
      <div className="page-head">
        <div>
          <h1>Usage</h1>
          <p className="muted">What your keys asked for, what it cost, day by day.</p>
        </div>
        <div className="filters">
          <select aria-label="Key" value={keyId} onChange={(e) => setKeyId(e.target.value)}>
            <option value="">All keys</option>
            {data?.keys.map((k) => (
              <option key={k.id} value={k.id}>
                {k.name} ({k.preview})
              </option>
            ))}
          </select>
          <select aria-label="Model" value={model} onChange={(e) => setModel(e.target.value)}>
            <option value="">All models</option>
            {data?.models.map((m) => (
              <option key={m} value={m}>
                {m}
              </option>
            ))}
          </select>
          <select aria-label="Period" value={days} onChange={(e) => setDays(Number(e.target.value))}>
            <option value={7}>Last 7 days</option>
            <option value={30}>Last 30 days</option>
            <option value={90}>Last 90 days</option>
          </select>
        </div>
      </div>
      <div className="stats">
        <Stat label="Requests" value={count(totals.requests)} />
        <Stat label="Tokens" value={count(totals.tokens)} />
        <Stat label="Cost" value={dollars(totals.cost)} />
      </div>
      <LoadStatus state={state} what="your usage" />
      {data ? <Chart daily={data.daily} /> : null}
      <h2>Recent requests</h2>
      {data === undefined ? null : data.recent.length === 0 ? (
        <div className="empty card">No requests yet. Try the examples in Getting started.</div>
      ) : (
        <table className="table">
          <thead>
            <tr>
              <th>Time</th>
              <th>Key</th>
              <th>Model</th>
              <th>Status</th>
              <th className="right">Tokens</th>
              <th className="right">Cost</th>
              <th>Record</th>
            </tr>
          </thead>
          <tbody>
            {data.recent.map((g) => (
              <tr key={g.request_id}>
                <td>{new Date(g.created * 1000).toLocaleString()}</td>
                <td>{keyName(g.key_id)}</td>
                <td>
                  {g.model}
                  {g.stream ? <span className="badge">stream</span> : null}
                  {g.mode === 'test' ? <span className="badge test">test</span> : null}
                </td>
                <td>
                  <StatusBadge g={g} />
                </td>
                <td className="right mono">
                  {count(g.usage.prompt_tokens)} + {count(g.usage.completion_tokens)}
                </td>
                <td className="right mono">{dollars(g.usage.cost_cents)}</td>
                <td>
                  <a href={`#/developers/usage/${encodeURIComponent(g.request_id)}`} title={`/v1/generation?id=${g.request_id}`}>
                    {g.request_id.slice(0, 14)}…
                  </a>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
