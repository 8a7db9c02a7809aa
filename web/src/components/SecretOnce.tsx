// A secret shown once (a new API key, an account's first password): the warning, the text in a
// field that selects itself, Copy (or, where the clipboard is refused, the text selected for
// Ctrl+C), and Done.
import { type ReactNode, useState } from 'react';
import { Modal } from './Modal.tsx';

export function SecretOnce(props: {
  title: string;
  /** The field's id, label and test id. */
  field: { id: string; label: string };
  secret: string;
  warning: ReactNode;
  note?: string | undefined;
  onClose: () => void;
}) {
  const [copied, setCopied] = useState(false);
  async function copy() {
    try {
      await navigator.clipboard.writeText(props.secret);
      setCopied(true);
    } catch {
      (document.getElementById(props.field.id) as HTMLInputElement | null)?.select();
    }
  }
  return (
    <Modal title={props.title} onClose={props.onClose}>
      <p className="warning" role="note">
        {props.warning}
      </p>
      {props.note ? <p className="muted">{props.note}</p> : null}
      <div className="key-box">
        <input
          id={props.field.id}
          aria-label={props.field.label}
          data-testid={props.field.id}
          readOnly
          value={props.secret}
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
