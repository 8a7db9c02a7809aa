// A dialog's buttons: Cancel, and the one that does it (a submit button when there is no onClick).
export function DialogActions(props: {
  onCancel: () => void;
  label: string;
  kind?: 'primary' | 'danger';
  onClick?: () => void;
  busy: boolean;
}) {
  return (
    <div className="actions">
      <button type="button" onClick={props.onCancel}>
        Cancel
      </button>
      <button type={props.onClick ? 'button' : 'submit'} className={props.kind ?? 'primary'} onClick={props.onClick} disabled={props.busy}>
        {props.label}
      </button>
    </div>
  );
}
