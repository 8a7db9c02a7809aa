/** A form's error, announced to screen readers; nothing when there is none. */
export function ErrorNote(props: { message: string | null }) {
  return props.message ? (
    <p className="error" role="alert">
      {props.message}
    </p>
  ) : null;
}
