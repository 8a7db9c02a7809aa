import { api } from '../api.ts';
import { CopyBlock } from '../components/CopyBlock.tsx';
import { LoadStatus } from '../components/LoadStatus.tsx';
import { useLoad } from '../use-load.ts';

export function GenerationPage(props: { id: string; apiBase: string }) {
  const state = useLoad(() => api.generation(props.id), [props.id]);
  const g = state.data;
  return (
    <section>
      <p>
        <a href="#/developers/usage">← Usage</a>
      </p>
      <h1>Request {props.id}</h1>
      <LoadStatus state={state} what="this request" />
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
