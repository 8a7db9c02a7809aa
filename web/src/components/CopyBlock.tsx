import { useState } from 'react';

export function CopyBlock(props: { label: string; code: string }) {
  const [copied, setCopied] = useState(false);
  return (
    <div className="copy-block">
      <div className="copy-head">
        <span>{props.label}</span>
        <button
          type="button"
          className="small"
          onClick={() =>
            navigator.clipboard.writeText(props.code).then(
              () => setCopied(true),
              () => {},
            )
          }
        >
          {copied ? 'Copied' : 'Copy'}
        </button>
      </div>
      <pre className="code">{props.code}</pre>
    </div>
  );
}
