import { useEffect, useState } from 'react';
import { api, type Generation } from '../api.ts';
import { CopyBlock } from '../components/CopyBlock.tsx';

export function GenerationPage(props: { id: string; apiBase: string }) {
  const [g, setG] = useState<Generation | null>(null);
  const [missing, setMissing] = useState(false);
  useEffect(() => {
    api.generation(props.id).then(setG, () => setMissing(true));
  }, [props.id]);
  return (
    <section>
      <p>
        <a href="#/developers/usage">← Usage</a>
      </p>
      <h1>Request {props.id}</h1>
      {missing ? <p className="error">No request with this id in your account.</p> : null}
      {g ? (
        <>
          <p className="muted">
            The same record your code can read with <code>GET /v1/generation?id={g.request_id}</code>:
          </p>
          <pre className="code">{JSON.stringify(g, null, 2)}</pre>
          <CopyBlock label="cURL" code={`curl "${props.apiBase}/generation?id=${g.id}" \\\n  -H "Authorization: Bearer $BIZORA_API_KEY"`} />
        </>
      ) : null}
    </section>
  );
}
