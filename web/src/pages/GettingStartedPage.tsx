// The seed page's examples, with this server's real base URL filled in.
import { CopyBlock } from '../components/CopyBlock.tsx';

export function GettingStartedPage(props: { apiBase: string }) {
  const base = props.apiBase;
  const python = `import os
from openai import OpenAI

client = OpenAI(
    api_key=os.getenv("BIZORA_API_KEY"),
    base_url="${base}"
)

response = client.chat.completions.create(
    model="bizora",
    messages=[{"role": "user", "content": "Hello!"}],
)
print(response.choices[0].message.content)`;
  const curl = `curl -X POST ${base}/chat/completions \\
  -H "Authorization: Bearer $BIZORA_API_KEY" \\
  -H "Content-Type: application/json" \\
  -d '{"model": "bizora", "messages": [{"role": "user", "content": "Hello!"}]}'`;
  const js = `import OpenAI from 'openai';

const client = new OpenAI({
  apiKey: process.env.BIZORA_API_KEY,
  baseURL: '${base}'
});

const response = await client.chat.completions.create({
  model: 'bizora',
  messages: [{ role: 'user', content: 'Hello!' }],
});
console.log(response.choices[0].message.content);`;
  const responsesApi = `from openai import OpenAI
import os

client = OpenAI(api_key=os.environ["BIZORA_API_KEY"], base_url="${base}")

response = client.responses.create(
    model="bizora",
    instructions="Be brief.",
    input="Hello!",
)
print(response.output_text)`;
  const embeddings = `embedding = client.embeddings.create(model="bizora-embed", input="Hello!")
print(len(embedding.data[0].embedding))`;
  return (
    <section className="getting-started">
      <h1>Getting started</h1>
      <ol className="steps">
        <li>
          Create a key under <a href="#/developers/api-keys">Developers → API Keys</a> and copy it (it is shown only once).
        </li>
        <li>
          Store it in an environment variable, never in code:
          <CopyBlock label=".env" code="BIZORA_API_KEY=sk_live_YOUR_API_KEY" />
        </li>
        <li>
          Point any OpenAI SDK at <code data-testid="base-url">{base}</code>:
        </li>
      </ol>
      <CopyBlock label="Python (OpenAI SDK)" code={python} />
      <CopyBlock label="cURL" code={curl} />
      <CopyBlock label="JavaScript" code={js} />
      <CopyBlock label="Python, the Responses API" code={responsesApi} />
      <CopyBlock label="Python, embeddings" code={embeddings} />
      <div className="card tips">
        <h2>Keep your API key secret</h2>
        <ul>
          <li>Store API keys in environment variables; use different keys for development and production.</li>
          <li>Rotate keys regularly and revoke unused ones.</li>
          <li>Don't commit keys to Git, share them in public forums, reuse one key across projects, or expose keys in client-side code.</li>
          <li>
            Use an <code>sk_test_</code> key while you build: it is never billed, and magic prompts such as <code>[bizora:rate_limit]</code>{' '}
            let you test your error handling.
          </li>
        </ul>
      </div>
    </section>
  );
}
